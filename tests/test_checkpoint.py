"""Checkpoint round trip and every bad-file case."""

import pickle

import pytest
import torch

from stylegan_core import CheckpointError, Discriminator, load_checkpoint, load_generator, save_checkpoint
from stylegan_core.formats.checkpoint import FORMAT_TAG
from helpers import tiny_generator


@pytest.fixture
def ckpt(tmp_path):
    G = tiny_generator(16, seed=1)
    with torch.no_grad():
        G.mapping.w_avg.normal_()
        for layer in G.synthesis.layers:
            layer.noise.strength.fill_(0.3)
    D = Discriminator(img_resolution=16, channel_base=256, channel_max=16)
    path = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G, D=D, step=7, images_seen=112)
    return path, G


def test_round_trip_bit_identical(ckpt):
    path, G = ckpt
    loaded = load_generator(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    z = torch.randn(4, 16)
    for mode in ("const", "none"):
        assert torch.equal(loaded(z, noise_mode=mode, truncation_psi=0.7), G(z, noise_mode=mode, truncation_psi=0.7))
    data = load_checkpoint(path)
    assert data["format"] == FORMAT_TAG and data["version"] == 1
    assert data["step"] == 7 and data["images_seen"] == 112
    assert data["config"]["G"] == G.config and data["config"]["D"]["img_resolution"] == 16
    assert not list(path.parent.glob(".*tmp"))  # the temp file was renamed away


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("case", ["missing", "truncated", "foreign", "code", "raw_pickle", "version", "shape", "config", "empty"])
def test_bad_files_raise_checkpoint_error(ckpt, tmp_path, case, capsys):
    good, _ = ckpt
    bad = tmp_path / f"{case}.pt"
    data = torch.load(good, weights_only=True)
    if case == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif case == "foreign":
        torch.save({"weight": torch.zeros(3)}, bad)
    elif case == "code":
        torch.save(dict(data, extra=Evil()), bad)
    elif case == "raw_pickle":
        with open(bad, "wb") as f:
            pickle.dump({"format": FORMAT_TAG, "x": Evil()}, f)
    elif case == "version":
        torch.save(dict(data, version=99), bad)
    elif case == "shape":
        data["config"]["G"]["w_dim"] = 32
        torch.save(data, bad)
    elif case == "config":
        data["config"]["G"]["no_such_argument"] = 1
        torch.save(data, bad)
    elif case == "empty":
        bad.write_bytes(b"")
    with pytest.raises(CheckpointError, match=bad.name) as info:
        load_generator(bad)
    if case == "code":
        assert "refused to load: it references" in str(info.value) and "print" in str(info.value)
    if case == "raw_pickle":
        assert "refused to load" in str(info.value)
    assert "pwned" not in capsys.readouterr().out


def test_save_refuses_non_json_config(tmp_path):
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "x.pt", config={"G": object()})
    assert not (tmp_path / "x.pt").exists()
