"""NVIDIA network pickles: read as data (nothing from the file runs), mapped onto arch='stylegan2' exactly."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from stylegan_core import CheckpointError, load_generator
from stylegan_core.formats.nvidia_pickle import PersistentRecord, read_network_pickle
from stylegan_metrics_cli.main import main
from helpers import same_images, tiny_stylegan2
from nvidia_records import SQRT2, Record, nvidia_generator_record

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread of a shared CPU


def snapshot(mods, G_ema, G_other, protocol=4):
    return pickle.dumps(dict(G=nvidia_generator_record(mods, G_other), D=Record(mods, "Discriminator"),
                             G_ema=nvidia_generator_record(mods, G_ema), augment_pipe=None,
                             training_set_kwargs=dict(path="~/ffhq.zip", resolution=16, xflip=False)), protocol=protocol)


# ---- loading ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [2, 4])
def test_snapshot_layout_loads_g_ema_with_identical_images(tmp_path, nvidia_modules, protocol):
    G_ema, G = tiny_stylegan2(seed=1), tiny_stylegan2(seed=2)
    path = tmp_path / "network-snapshot-000100.pkl"
    path.write_bytes(snapshot(nvidia_modules, G_ema, G, protocol))
    loaded = load_generator(path)
    assert loaded.config == G_ema.config and not loaded.training
    same_images(loaded, G_ema, noise_seeds=True)
    same_images(loaded, G_ema, psi=0.6, noise_seeds=True)  # w_avg came along


@pytest.mark.parametrize("lr", [0.01, 1.0])
def test_mapping_follows_nvidias_formula_for_any_lr_multiplier(tmp_path, nvidia_modules, lr):
    G = tiny_stylegan2(8)
    record = nvidia_generator_record(nvidia_modules, G, lr=lr)
    (tmp_path / "g.pkl").write_bytes(pickle.dumps(record))  # a bare network pickle
    loaded = load_generator(tmp_path / "g.pkl")
    z = torch.randn(4, G.z_dim)
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()  # NVIDIA: normalize_2nd_moment, then
    for name, fc in record.state["_modules"]["mapping"].state["_modules"].items():  # sqrt2 * lrelu(x W'^T + b')
        p, s = fc.state["_parameters"], fc.state
        x = F.leaky_relu(x @ (p["weight"] * s["weight_gain"]).T + p["bias"] * s["bias_gain"], 0.2) * SQRT2
    with torch.no_grad():
        torch.testing.assert_close(loaded.mapping(z)[:, 0], x, rtol=1e-5, atol=1e-5)


def test_4px_generator_follows_nvidias_formulas(tmp_path, nvidia_modules):
    """b4 alone (conv1 + torgb) computed by hand from the NVIDIA tensors, as NVIDIA's networks.py does."""
    G = tiny_stylegan2(4, conv_clamp=0.7)
    record = nvidia_generator_record(nvidia_modules, G)
    (tmp_path / "g.pkl").write_bytes(pickle.dumps(record))
    loaded = load_generator(tmp_path / "g.pkl")
    b4 = record.state["_modules"]["synthesis"].state["_modules"]["b4"].state
    conv, rgb = b4["_modules"]["conv1"].state, b4["_modules"]["torgb"].state

    def affine(layer, w):
        a = layer["_modules"]["affine"].state
        return w @ (a["_parameters"]["weight"] * a["weight_gain"]).T + a["_parameters"]["bias"] * a["bias_gain"]

    ws = torch.randn(2, loaded.num_ws, G.w_dim)
    expected = []
    for n in range(2):
        p = conv["_parameters"]
        wt = p["weight"] * affine(conv, ws[n, 0]).view(1, -1, 1, 1)
        wt = wt * (wt.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).rsqrt()
        x = F.conv2d(b4["_parameters"]["const"][None], wt, padding=1) + conv["_buffers"]["noise_const"] * p["noise_strength"]
        x = (F.leaky_relu(x + p["bias"].view(1, -1, 1, 1), 0.2) * SQRT2).clamp(-0.7, 0.7)
        s = affine(rgb, ws[n, 1]) * rgb["weight_gain"]
        y = F.conv2d(x, rgb["_parameters"]["weight"] * s.view(1, -1, 1, 1)) + rgb["_parameters"]["bias"].view(1, -1, 1, 1)
        expected.append(y.clamp(-0.7, 0.7))
    with torch.no_grad():
        torch.testing.assert_close(loaded.synthesis(ws, noise_mode="const"), torch.cat(expected), rtol=1e-5, atol=1e-5)
    assert loaded.config["conv_clamp"] == 0.7


# ---- safety ------------------------------------------------------------------------------------------------------
class RunsCode:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


@pytest.mark.parametrize("fn", [os.system, exec])
def test_code_in_the_pickle_is_refused_and_never_runs(tmp_path, nvidia_modules, fn):
    marker = tmp_path / "pwned"
    arg = f"touch {marker}" if fn is os.system else f"open({str(marker)!r}, 'w').close()"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": RunsCode(fn, arg)}))
    with pytest.raises(CheckpointError, match=r"refused to load: it references (posix|os|builtins)\.(system|exec)"):
        load_generator(path)
    # hidden inside an otherwise valid record's state, and as NVIDIA module source that would be exec'd
    record = nvidia_generator_record(nvidia_modules, tiny_stylegan2(8), module_src=f"open({str(marker)!r}, 'w').close()")
    record.state["payload"] = RunsCode(fn, arg)
    path.write_bytes(pickle.dumps({"G_ema": record}))
    with pytest.raises(CheckpointError, match="refused to load"):
        load_generator(path)
    del record.state["payload"]
    path.write_bytes(pickle.dumps({"G_ema": record}))
    assert isinstance(load_generator(path), torch.nn.Module)  # module_src is kept as inert text
    assert isinstance(read_network_pickle(path)["G_ema"], PersistentRecord)
    assert not marker.exists()


def test_storage_bytes_go_through_weights_only(tmp_path, nvidia_modules):
    marker = tmp_path / "pwned"
    evil_storage = pickle.dumps(RunsCode(os.system, f"touch {marker}"))
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": RunsCode(torch.storage._load_from_bytes, evil_storage)}))
    with pytest.raises(CheckpointError, match="not a network pickle"):
        load_generator(path)
    assert not marker.exists()


def test_malformed_pickles_give_one_clear_error(tmp_path, nvidia_modules):
    mods = nvidia_modules
    layers = {"input": Record(mods, "SynthesisInput", buffers=dict(freqs=torch.randn(4, 2))),
              "L0_36_512": Record(mods, "SynthesisLayer", params=dict(weight=torch.randn(4, 4, 3, 3)))}
    sg3 = Record(mods, "Generator", modules=dict(synthesis=Record(mods, "SynthesisNetwork", modules=layers)),
                 z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3)
    path = tmp_path / "stylegan3-t-ffhq.pkl"
    path.write_bytes(pickle.dumps({"G_ema": sg3}))
    with pytest.raises(CheckpointError, match="layer_names do not match its layers"):
        load_generator(path)
    path.write_bytes(pickle.dumps({"G": nvidia_generator_record(mods, tiny_stylegan2(8))}))
    with pytest.raises(CheckpointError, match="no 'G_ema' network in the pickle .keys: G."):
        load_generator(path)
    path.write_bytes(pickle.dumps({"G_ema": sg3})[:-20])
    with pytest.raises(CheckpointError, match="truncated or not a network pickle"):
        load_generator(path)


# ---- numpy arrays are data ---------------------------------------------------------------------------------------
NUMPY_VALUES = dict(
    floats=np.arange(6, dtype=np.float32).reshape(2, 3) / 7, size=np.broadcast_to(np.asarray(36), [2]),
    fortran=np.asfortranarray(np.arange(6.0).reshape(2, 3)), flags=np.array([True, False]),
    big_endian=np.arange(3, dtype=">i2"), empty=np.zeros((0, 3)), gain=np.float64(0.25), count=np.int64(3),
    half=np.float16(1.5), complex=np.complex64(1 + 2j),
)


def _same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b)) and np.asarray(a).dtype.kind == np.asarray(b).dtype.kind


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numeric_numpy_arrays_in_a_pickle_load_as_data(tmp_path, protocol):
    loaded = read_network_pickle(_write(tmp_path / "a.pkl", pickle.dumps(NUMPY_VALUES, protocol=protocol)))
    assert set(loaded) == set(NUMPY_VALUES)
    for key, value in NUMPY_VALUES.items():
        assert _same(loaded[key], value), key
    assert isinstance(loaded["floats"], np.ndarray) and loaded["floats"].shape == (2, 3)


def test_numpy_1x_module_names_load_too(tmp_path):
    """Files written by numpy 1.x name numpy.core.multiarray (numpy 2.x: numpy._core.multiarray)."""
    data = pickle.dumps(NUMPY_VALUES, protocol=2)  # text GLOBAL opcodes: the names can be rewritten in place
    assert b"numpy._core.multiarray" in data or b"numpy.core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    loaded = read_network_pickle(_write(tmp_path / "old.pkl", old))
    assert all(_same(loaded[k], v) for k, v in NUMPY_VALUES.items())


def test_object_arrays_and_calls_hidden_in_array_data_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = RunsCode(os.system, f"touch {marker}")
    cases = {
        "object": (np.array([1, payload], dtype=object), r"numpy dtype 'O8'"),
        "strings": (np.array(["ab", "c"]), r"numpy dtype '<?U2'"),
        "structured": (np.zeros(2, dtype=[("a", "f4")]), r"numpy dtype 'V4'"),
    }
    for protocol in (2, 4, 5):
        for name, (value, message) in cases.items():
            path = _write(tmp_path / f"{name}.pkl", pickle.dumps({"G_ema": value}, protocol=protocol))
            with pytest.raises(CheckpointError, match=f"refused to load: {message}"):
                load_generator(path)
    # numpy's own array header with a crafted BUILD state: objects or a call instead of raw bytes, a wrong length
    states = {
        "objects": ((1, (2,), np.dtype("f8"), False, [1.0, payload]), "references posix.system|references os.system"),
        "a list": ((1, (2,), np.dtype("f8"), False, [1.0, 2.0]), "data is not raw bytes"),
        "too short": ((1, (1000,), np.dtype("f8"), False, b"\0" * 16), "data is not raw bytes"),
    }
    for name, (state, message) in states.items():
        path = _write(tmp_path / "crafted.pkl", pickle.dumps({"G_ema": CraftedArray(state)}, protocol=4))
        with pytest.raises(CheckpointError, match=f"refused to load: .*({message})"):
            load_generator(path)
    assert not marker.exists()


class CraftedArray:
    """Pickles as numpy's `_reconstruct(ndarray, (0,), b'b')` followed by a BUILD with any state."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return np.zeros(1).__reduce__()[0], (np.ndarray, (0,), b"b"), self.state


def test_numpy_arrays_in_torch_checkpoints_load_and_object_arrays_are_refused(tmp_path):
    """Our own .pt and rosinality files go through torch.load(weights_only=True) with the same numpy rules."""
    from stylegan_core import load_checkpoint, save_checkpoint

    G = tiny_stylegan2(8)
    path = save_checkpoint(tmp_path / "g.pt", G_ema=G, config={"G": G.config}, stats=NUMPY_VALUES["floats"],
                           gain=NUMPY_VALUES["gain"], flags=NUMPY_VALUES["flags"])
    data = load_checkpoint(path)
    assert _same(data["stats"], NUMPY_VALUES["floats"]) and data["gain"] == 0.25 and _same(data["flags"], [True, False])
    same_images(load_generator(path), G)
    marker = tmp_path / "pwned"
    save_checkpoint(tmp_path / "bad.pt", G_ema=G, config={"G": G.config},
                    extra=np.array([RunsCode(os.system, f"touch {marker}")], dtype=object))
    with pytest.raises(CheckpointError, match=r"refused to load: numpy dtype 'O8'"):
        load_generator(tmp_path / "bad.pt")
    assert not marker.exists()


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_convert_cli_gives_identical_images_and_exit_2_on_bad_input(tmp_path, nvidia_modules):
    G_ema = tiny_stylegan2(seed=3)
    src = tmp_path / "network-snapshot.pkl"
    src.write_bytes(snapshot(nvidia_modules, G_ema, tiny_stylegan2(seed=4)))
    out = tmp_path / "converted.pt"
    res = CliRunner().invoke(main, ["convert", str(src), str(out)])
    assert res.exit_code == 0, res.output
    assert "NVIDIA network pickle" in res.output
    converted = load_generator(out)
    same_images(converted, load_generator(src), noise_seeds=True)
    same_images(converted, G_ema, noise_seeds=True)

    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"G_ema": RunsCode(os.system, f"touch {marker}")}))
    for source in (bad, tmp_path / "missing.pkl"):
        res = CliRunner().invoke(main, ["convert", str(source), str(tmp_path / "x.pt")])
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert "Traceback" not in res.output
    assert not marker.exists() and not (tmp_path / "x.pt").exists()


# ---- conditional StyleGAN2-ADA (fixture written by scripts/make_stylegan3_fixtures.py with NVIDIA's code) -------
ADA = Path(__file__).parent / "fixtures" / "nvidia_ada_conditional"


def test_conditional_ada_pickle_draws_nvidias_images(tmp_path):
    G = load_generator(ADA.with_suffix(".pkl"))
    with np.load(f"{ADA}_expected.npz") as data:
        want = {k: torch.from_numpy(data[k]) for k in data.files}
    z, c = want["z"], want["c"]
    assert (G.c_dim, G.z_dim, G.num_ws, G.config["arch"], G.config["c_dim"]) == (4, 16, 6, "stylegan2", 4)
    tol = dict(rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(G.mapping(z, c), want["ws"], **tol)
        torch.testing.assert_close(G.mapping(z, c, truncation_psi=0.7), want["ws_psi07"], **tol)
        torch.testing.assert_close(G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2), want["ws_psi05_cutoff2"], **tol)
        torch.testing.assert_close(G.synthesis(want["ws"], noise_mode="const"), want["img"], **tol)
        torch.testing.assert_close(G(z, c, truncation_psi=0.7, noise_mode="const"), want["img_psi07"], **tol)
        assert (G.mapping(z, c.roll(1, dims=0)) - want["ws"]).abs().max() > 0.1  # the label matters
        with pytest.raises(ValueError, match=r"conditional: c must have shape \[N, 4\], got None"):
            G.mapping(z, None)

    out = tmp_path / "conditional.pt"
    res = CliRunner().invoke(main, ["convert", str(ADA.with_suffix(".pkl")), str(out)])
    assert res.exit_code == 0, res.output
    converted = load_generator(out)
    assert converted.config == G.config
    with torch.no_grad():
        torch.testing.assert_close(converted(z, c, truncation_psi=0.7, noise_mode="const"), want["img_psi07"], **tol)
