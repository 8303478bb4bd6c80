"""Weight-file resolution: cache lookup order, SHA-prefix checks, offline errors and mocked downloads."""

from __future__ import annotations

import collections
import io
import pickle
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from stylegan_core.errors import InputError
from stylegan_metrics.networks import weights as W
from stylegan_metrics.networks.weights import (
    STANDARD_WEIGHTS,
    WeightsError,
    WeightsSpec,
    load_state_dict,
    resolve_weights,
    search_dirs,
    sha256_of,
    weights_home,
)


def _no_network(*args, **kwargs):
    raise AssertionError("tests must never reach the network")


@pytest.fixture(autouse=True)
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Both caches under tmp_path, downloads allowed, and urlopen guarded."""
    monkeypatch.setenv("STYLEGAN_METRICS_HOME", str(tmp_path / "sm"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("STYLEGAN_METRICS_OFFLINE", raising=False)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    return tmp_path / "sm" / "weights", tmp_path / "torch" / "hub" / "checkpoints"


def _weights_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.randn(3, generator=torch.Generator().manual_seed(seed))}, buf)
    return buf.getvalue()


def _spec_for(data: bytes, tmp_path: Path, stem: str = "foo") -> WeightsSpec:
    """A spec whose file name embeds the real SHA-256 prefix of `data`."""
    scratch = tmp_path / "scratch.bin"
    scratch.write_bytes(data)
    return WeightsSpec(stem, f"{stem}-{sha256_of(scratch)[:8]}.pth", f"https://example.invalid/{stem}.pth")


def _place(folder: Path, spec: WeightsSpec, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / spec.filename
    path.write_bytes(data)
    return path


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_each_standard_spec_downloads_the_file_it_names():
    """A download is checked against the SHA-256 prefix of its file name, or the whole SHA-256 recorded for an
    upstream file whose name has none: each standard URL ends in that very file name (the upstream's, hash included)
    over https, under the spec's own registry key; docs/networks.md names the same files and recorded hashes."""
    docs = (Path(__file__).parents[1] / "docs" / "networks.md").read_text()
    assert set(STANDARD_WEIGHTS) == {"inception-v3", "vgg16", "dinov2-vit-s14", "dinov2-vit-b14", "dinov2-vit-l14",
                                     "dinov2-vit-g14"}
    for name, spec in STANDARD_WEIGHTS.items():
        assert spec.name == name
        assert spec.url.startswith("https://") and spec.url.rsplit("/", 1)[1] == spec.filename, name
        assert f"`{spec.filename}`" in docs, name
        assert spec.sha256 is None or f"`{spec.sha256}`" in docs, name
    assert issubclass(WeightsError, InputError)


def test_dirs_follow_env_at_call_time(homes, tmp_path, monkeypatch):
    assert search_dirs() == list(homes)
    monkeypatch.setenv("STYLEGAN_METRICS_HOME", str(tmp_path / "other"))
    assert weights_home() == tmp_path / "other" / "weights"


def test_sha256_of_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "x.bin"
    path.write_bytes(b"a" * (3 << 20) + b"tail")
    assert sha256_of(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_found_in_weights_home(homes, tmp_path):
    data = _weights_bytes()
    spec = _spec_for(data, tmp_path)
    path = _place(homes[0], spec, data)
    assert resolve_weights(spec) == path


def test_found_in_torch_hub_when_absent_from_home(homes, tmp_path):
    data = _weights_bytes()
    spec = _spec_for(data, tmp_path)
    path = _place(homes[1], spec, data)
    assert resolve_weights(spec) == path


def test_first_location_wins(homes, tmp_path):
    data = _weights_bytes()
    spec = _spec_for(data, tmp_path)
    first, _ = _place(homes[0], spec, data), _place(homes[1], spec, data)
    assert resolve_weights(spec) == first


def test_wrong_sha_prefix_rejected_and_kept(homes, tmp_path):
    spec = _spec_for(_weights_bytes(0), tmp_path)
    other = _weights_bytes(1)
    path = _place(homes[0], spec, other)
    actual = sha256_of(path)[:8]
    with pytest.raises(WeightsError) as info:
        resolve_weights(spec)
    msg = str(info.value)
    assert str(path) in msg and spec.sha256_prefix in msg and actual in msg
    assert path.read_bytes() == other  # never deleted


def test_offline_error_names_everything(homes, monkeypatch):
    monkeypatch.setenv("STYLEGAN_METRICS_OFFLINE", "1")
    spec = STANDARD_WEIGHTS["inception-v3"]
    with pytest.raises(WeightsError) as info:
        resolve_weights("inception-v3")
    msg = str(info.value)
    for part in (spec.filename, str(homes[0]), str(homes[1]), spec.url, "--weights", "STYLEGAN_METRICS_OFFLINE"):
        assert part in msg
    assert "\n" not in msg


def test_allow_download_false_also_stops(homes):
    with pytest.raises(WeightsError, match="allow_download=False"):
        resolve_weights("vgg16", allow_download=False)


def test_download_lands_atomically(homes, tmp_path, monkeypatch):
    data = _weights_bytes()
    spec = _spec_for(data, tmp_path)
    urls = []

    def fake_urlopen(url, timeout=None):
        urls.append(url)
        return _FakeResponse(data)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    path = resolve_weights(spec)  # with the progress bar
    assert path == homes[0] / spec.filename
    assert path.read_bytes() == data
    assert urls == [spec.url]
    assert sorted(p.name for p in homes[0].iterdir()) == [spec.filename]
    assert resolve_weights(spec) == path  # now cached: no second download
    assert len(urls) == 1


def test_download_with_wrong_sha_leaves_nothing(homes, tmp_path, monkeypatch):
    spec = _spec_for(_weights_bytes(0), tmp_path)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _FakeResponse(_weights_bytes(1)))
    with pytest.raises(WeightsError) as info:
        resolve_weights(spec, progress=False)
    assert spec.sha256_prefix in str(info.value) and spec.url in str(info.value)
    assert list(homes[0].iterdir()) == []


@pytest.mark.parametrize("error", [urllib.error.URLError("no route to host"), socket.timeout("timed out")])
def test_network_error_becomes_weights_error(homes, tmp_path, monkeypatch, error):
    spec = _spec_for(_weights_bytes(), tmp_path)

    def failing(url, timeout=None):
        raise error

    monkeypatch.setattr(urllib.request, "urlopen", failing)
    with pytest.raises(WeightsError) as info:
        resolve_weights(spec, progress=False)
    msg = str(info.value)
    assert spec.url in msg and str(homes[0]) in msg and "--weights" in msg
    assert not homes[0].exists() or list(homes[0].iterdir()) == []


def test_explicit_path_used_as_given(tmp_path):
    path = tmp_path / "anything.bin"  # no SHA suffix: explicit paths are not checked
    path.write_bytes(_weights_bytes())
    assert resolve_weights("vgg16", path) == path
    assert resolve_weights("vgg16", str(path)) == path


def test_missing_explicit_path(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError) as info:
        resolve_weights("inception-v3", missing)
    assert str(missing) in str(info.value) and STANDARD_WEIGHTS["inception-v3"].url in str(info.value)


class _SneakyDict(collections.OrderedDict):
    pass


class _Evil:
    def __reduce__(self):
        return (print, ("x",))


def test_pickled_objects_refused(tmp_path, capsys):
    subclass = tmp_path / "subclass.pth"
    torch.save({"w": _SneakyDict(a=torch.zeros(1))}, subclass)
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump(_Evil(), f, protocol=2)
    for path in (subclass, evil):
        with pytest.raises(WeightsError, match=str(path.name)):
            load_state_dict(path)
    with pytest.raises(WeightsError, match="evil.pth"):
        resolve_weights("vgg16", evil)
    assert "x" not in capsys.readouterr().out


def test_non_tensor_entries_refused(tmp_path):
    path = tmp_path / "mixed.pth"
    torch.save({"w": torch.zeros(1), "step": 3}, path)
    with pytest.raises(WeightsError, match="step"):
        load_state_dict(path)
    good = tmp_path / "good.pth"
    good.write_bytes(_weights_bytes())
    loaded = load_state_dict(good)
    assert list(loaded) == ["w"] and torch.equal(loaded["w"], torch.randn(3, generator=torch.Generator().manual_seed(0)))


def test_unknown_name_lists_known():
    with pytest.raises(WeightsError) as info:
        resolve_weights("resnet")
    assert "'resnet'" in str(info.value)
    assert "inception-v3" in str(info.value) and "vgg16" in str(info.value)


def test_spec_needs_sha_suffix():
    with pytest.raises(ValueError):
        WeightsSpec("x", "no-suffix.pth", "https://example.invalid/x")
    assert W.WeightsSpec("x", "a-b-0123abcd.pth", "u").sha256_prefix == "0123abcd"


def test_damaged_or_inflated_weights_files_refused(tmp_path):
    """An explicit weights path is not hash-checked, so its zip CRCs are: a flipped byte inside a tensor is caught
    before a wrong feature is computed; a zero-stride view claiming gigabytes from a tiny file is refused."""
    good = tmp_path / "good.pth"
    torch.save({"w": torch.arange(4096, dtype=torch.float32)}, good)
    raw = bytearray(good.read_bytes())
    at = raw.find(torch.arange(4096, dtype=torch.float32).numpy().tobytes()[4000:4016])
    assert at > 0
    raw[at] ^= 0xFF
    flipped = tmp_path / "flipped.pth"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match=r"flipped\.pth: refused: member .* fails its CRC-32 check"):
        load_state_dict(flipped)
    inflated = tmp_path / "inflated.pth"
    torch.save({"w": torch.zeros(1).expand(60000, 60000)}, inflated)
    with pytest.raises(WeightsError, match=r"inflated\.pth: refused: its tensors claim 13,733 MiB"):
        load_state_dict(inflated)
    assert torch.equal(load_state_dict(good)["w"], torch.arange(4096, dtype=torch.float32))
