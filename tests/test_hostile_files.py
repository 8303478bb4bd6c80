"""Crafted files that declare far more than they hold: storages pickled as deflated torch.save zips, pickle opcodes
claiming terabytes, deflated statistics arrays, statistics of another resolution and of overflowing size; each is
refused with one line (exit 2) before the memory is taken."""

import collections
import io
import pickle
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan_core import CheckpointError, InputError, load_generator, save_checkpoint
from stylegan_core.formats.nvidia_pickle import read_network_pickle
from stylegan_core.formats.safe_load import load_weights_only
from stylegan_core.formats.sources import detect_source
from stylegan_core.limits import PickleLengthError, check_pickle_lengths
from stylegan_metrics import ReferenceStats, fid, frechet_distance
from stylegan_metrics.formulas.frechet import FrechetOverflow
from helpers import Quadrants, invoke, one_line_error, quadrant_reference, tiny_generator, write_zip_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def write_deflated(zf: zipfile.ZipFile, name: str, head: bytes, zeros: int) -> None:
    """A member of `head` then `zeros` zero bytes, deflated as it is written (never held in memory)."""
    with zf.open(name, "w", force_zip64=True) as f:
        f.write(head)
        block = bytes(1 << 20)
        while zeros:
            f.write(block[:min(zeros, len(block))])
            zeros -= min(zeros, len(block))


# ---- storages pickled as torch.save zips --------------------------------------------------------------------------
class PickledStorage:
    """Pickles as torch does a storage: _load_from_bytes(torch.save bytes)."""

    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.data,)


class PickledTensor:
    def __init__(self, storage: PickledStorage, numel: int):
        self.storage, self.numel = storage, numel

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, (self.storage, 0, (self.numel,), (1,), False,
                                                 collections.OrderedDict())


class StorageSize:
    def __init__(self, nbytes: int):
        self.nbytes = nbytes


class _StoragePickler(pickle.Pickler):
    """Writes data.pkl of a torch.save zip: one persistent id naming a uint8 storage of `nbytes` bytes."""

    def persistent_id(self, obj):
        return ("storage", torch.ByteStorage, "0", "cpu", obj.nbytes) if isinstance(obj, StorageSize) else None


def storage_zip(nbytes: int) -> bytes:
    """torch.save's zip of a uint8 storage of `nbytes` zeros, its data member deflated (a few KB per 10 MB)."""
    small = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage deprecation
        torch.save(torch.ByteStorage(1), small)
    record = io.BytesIO()
    _StoragePickler(record, protocol=2).dump(StorageSize(nbytes))
    out = io.BytesIO()
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename.endswith("data.pkl"):
                dst.writestr(info.filename, record.getvalue())
            elif info.filename.endswith("data/0"):
                write_deflated(dst, info.filename, b"", nbytes)
            else:
                dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def storage_pickle(path: Path, data: bytes, numel: int) -> Path:
    """A network pickle whose G_ema is a tensor on that storage; more pickle follows (the zip is not at its end)."""
    path.write_bytes(pickle.dumps({"G_ema": PickledTensor(PickledStorage(data), numel), "pad": "x" * 100_000},
                                  protocol=4))
    return path


def test_deflated_storage_in_a_network_pickle_is_refused_before_torch_reads_it(tmp_path, monkeypatch):
    path = storage_pickle(tmp_path / "G.pkl", storage_zip(100 << 20), 100 << 20)  # 100 MiB of zeros in ~200 KB
    assert path.stat().st_size < 400_000
    assert detect_source(path) == "nvidia"  # a pickle holding a zip is still a pickle
    read = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: read.append(1))
    with pytest.raises(CheckpointError, match=r"refused: its tensors claim 100 MiB from a file of [\d,]+ bytes \(the "
                                              r"members of an embedded torch file declare that much\)") as e:
        load_generator(path)
    assert "truncated" not in str(e.value) and read == []  # refused from the zip's directory, nothing inflated
    monkeypatch.undo()
    one_line_error(invoke("generate", "--ckpt", path, "--seeds", "0", "--out", tmp_path / "g.png"),
                   "claim 100 MiB from a file of")


def test_embedded_storages_share_the_budget_of_their_file(tmp_path):
    one = storage_zip(40 << 20)  # each within the budget of a ~100 KB file (16 x + 64 MiB), both together not
    path = tmp_path / "G.pkl"
    path.write_bytes(pickle.dumps({"G_ema": [PickledTensor(PickledStorage(one), 40 << 20),
                                             PickledTensor(PickledStorage(one), 40 << 20)]}, protocol=4))
    with pytest.raises(CheckpointError, match="its tensors claim 80 MiB from a file of"):
        read_network_pickle(path)


def test_embedded_storage_zip_is_crc_checked_and_a_small_one_loads(tmp_path):
    data = storage_zip(1000)
    content = read_network_pickle(storage_pickle(tmp_path / "ok.pkl", data, 1000))
    assert torch.equal(content["G_ema"], torch.zeros(1000, dtype=torch.uint8))
    raw = bytearray(data)
    raw[data.index(b"little") + 5] ^= 0x01  # the stored byteorder member now reads 'littld'
    with pytest.raises(CheckpointError, match="fails its CRC-32 check"):
        read_network_pickle(storage_pickle(tmp_path / "crc.pkl", bytes(raw), 1000))


# ---- pickle opcodes that declare more than their file ------------------------------------------------------------
def terabyte_pickle(path: Path) -> Path:
    """311 bytes: PROTO 4, then BINBYTES8 declaring 2**40 bytes."""
    path.write_bytes((b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc" * 100)[:311])
    return path


def test_opcode_declaring_a_terabyte_is_one_line(tmp_path):
    path = terabyte_pickle(tmp_path / "G.pkl")
    assert detect_source(path) == "nvidia"  # sniffing reads no more than the file holds (no MemoryError)
    message = r"truncated or not a %s \(an opcode at byte 11 declares 1,099,511,627,776 bytes, more than the 300 left"
    with pytest.raises(CheckpointError, match=message % "network pickle"):
        load_generator(path)
    with pytest.raises(CheckpointError, match=message % "PyTorch file"):
        load_weights_only(path)
    one_line_error(invoke("generate", "--ckpt", path, "--seeds", "0", "--out", tmp_path / "g.png"),
                   "declares 1,099,511,627,776 bytes")
    G = save_checkpoint(tmp_path / "G.pt", G=tiny_generator(32), G_ema=tiny_generator(32))
    one_line_error(invoke("ls", "--ckpt", G, "--classifier", path, "--num", "100"), "declares 1,099,511,627,776")


@pytest.mark.parametrize("raw,message", [
    (b"\x80\x04\x95" + struct.pack("<Q", 2**50) + b"N.", "a frame at byte 2 declares"),          # FRAME
    (b"\x80\x04X" + struct.pack("<I", 2**31) + b"abc.", "declares 2,147,483,648 bytes"),       # BINUNICODE
    (pickle.dumps({"a": 1}, protocol=2)[:-3], "declares 1 bytes, more than the 0 left"),        # cut short
])
def test_pickle_lengths_are_checked_against_the_file(tmp_path, raw, message):
    path = tmp_path / "x.pkl"
    path.write_bytes(raw)
    with open(path, "rb") as f, pytest.raises(PickleLengthError, match=message):
        check_pickle_lengths(f, len(raw))
    with pytest.raises(CheckpointError, match="truncated or not a network pickle"):
        read_network_pickle(path)
    with open(path, "wb") as f:
        pickle.dump({"a": b"x" * 300}, f, protocol=4)
        pickle.dump([1, 2], f, protocol=2)
    with open(path, "rb") as f:
        check_pickle_lengths(f, path.stat().st_size, pickles=5)  # two whole pickles, then the file's end: fine


# ---- statistics files declaring more than they hold --------------------------------------------------------------
def deflated_stats(path: Path, d: int, features: str | None) -> Path:
    """An .npz with mu = zeros(d) and a deflated sigma of d x d zeros (a few KB per 10 MB declared)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        mu = io.BytesIO()
        np.save(mu, np.zeros(d))
        zf.writestr("mu.npy", mu.getvalue())
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": (d, d)})
        write_deflated(zf, "sigma.npy", head.getvalue(), 8 * d * d)
        if features is not None:
            name = io.BytesIO()
            np.save(name, np.str_(features))
            zf.writestr("features.npy", name.getvalue())
    return path


def peak_bytes(fn) -> tuple[int, str]:
    """(peak Python and numpy allocations while fn() raises an InputError, its message)."""
    tracemalloc.start()
    try:
        with pytest.raises(InputError) as e:
            fn()
        return tracemalloc.get_traced_memory()[1], str(e.value)
    finally:
        tracemalloc.stop()


def test_deflated_statistics_are_refused_from_their_headers(tmp_path):
    path = deflated_stats(tmp_path / "ref.npz", 3000, "Quadrants")  # 69 MiB declared in ~70 KB
    assert path.stat().st_size < 200_000
    peak, message = peak_bytes(lambda: ReferenceStats.load(path))
    assert "its members declare 69 MiB, far more than the file's" in message and peak < 8 << 20
    wide = deflated_stats(tmp_path / "pytorch-fid.npz", 2100, None)  # no name: inception-v3's 2048 expected
    peak, message = peak_bytes(lambda: ReferenceStats.load(wide))
    assert "mu has 2,100 features but inception-v3 features have 2,048" in message and peak < 8 << 20
    named = deflated_stats(tmp_path / "vgg.npz", 2048, "vgg16-fc2")
    with pytest.raises(InputError, match="mu has 2,048 features but vgg16-fc2 features have 4,096"):
        ReferenceStats.load(named)
    G = save_checkpoint(tmp_path / "G.pt", G=tiny_generator(16), G_ema=tiny_generator(16))
    one_line_error(invoke("fid", "--ckpt", G, "--data", path, "--features", "toyfaces", "--device", "cpu",
                          "--num", "4", "--cov", "unbiased"), "its members declare 69 MiB")


def test_statistics_fields_of_megabytes_are_refused(tmp_path):
    mu, sigma = np.zeros(3), np.eye(3)
    with zipfile.ZipFile(tmp_path / "ref.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        for name, a in (("mu", mu), ("sigma", sigma)):
            b = io.BytesIO()
            np.save(b, a)
            zf.writestr(f"{name}.npy", b.getvalue())
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<U1000000", "fortran_order": False, "shape": ()})
        write_deflated(zf, "source.npy", head.getvalue(), 4_000_000)  # one 'string' of 4 MB
    with pytest.raises(InputError, match=r"array source of shape \(\) would take 4 MiB \(limit 65,536 bytes\)"):
        ReferenceStats.load(tmp_path / "ref.npz")


# ---- statistics of another resolution ----------------------------------------------------------------------------
def test_statistics_of_another_resolution_are_refused_as_images_are(tmp_path):
    features = Quadrants()
    calls = []
    features.register_forward_hook(lambda *args: calls.append(1))
    G = tiny_generator(32)
    kwargs = dict(features=features, num_gen=16, device="cpu", progress=False, cov="unbiased")
    images = [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(4)]
    data = write_zip_dataset(tmp_path / "ref64.zip", images, labels=None)
    with pytest.raises(InputError, match="images are 64x64 but the generator makes 32x32") as from_images:
        fid(G, data, **kwargs)
    stats = quadrant_reference()
    stats.resolution = 64
    path = stats.save(tmp_path / "ref64.npz")
    with pytest.raises(InputError) as from_stats:
        fid(G, path, **kwargs)
    assert str(from_stats.value) == str(from_images.value).replace(str(data.resolve()), str(path))
    with pytest.raises(InputError, match="^reference statistics: images are 64x64 but the generator makes 32x32$"):
        fid(G, stats, **kwargs)
    assert calls == []  # refused before any image was generated
    stats.resolution = 32
    assert np.isfinite(fid(G, stats.save(tmp_path / "ref32.npz"), **kwargs).value)
    stats.resolution = 0  # a file that records no resolution (pytorch-fid's): compared as before
    assert np.isfinite(fid(G, stats.save(tmp_path / "ref0.npz"), **kwargs).value)
    x = np.random.default_rng(0).normal(0.5, 0.1, size=(50, 240))
    toy = ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=50, features="toyfaces", resolution=64)
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    one_line_error(invoke("fid", "--ckpt", ckpt, "--data", toy.save(tmp_path / "toy64.npz"), "--features",
                          "toyfaces", "--device", "cpu", "--num", "4", "--cov", "unbiased"),
                   "toy64.npz: images are 64x64 but the generator makes 32x32")


# ---- statistics too large for float64 ----------------------------------------------------------------------------
def test_statistics_that_overflow_float64_are_refused_by_name(tmp_path):
    stats = quadrant_reference()
    stats.mu = np.full(15, 1e160)
    path = tmp_path / "huge.npz"
    np.savez(path, mu=stats.mu, sigma=stats.sigma, features=np.str_("Quadrants"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning reaches the user
        with pytest.raises(InputError, match=r"huge.npz: the statistics hold values up to 1e\+160, beyond 1e\+100"):
            ReferenceStats.load(path)
        with pytest.raises(InputError, match=r"values up to 1e\+160"):
            fid(tiny_generator(16), stats, features=Quadrants(), num_gen=16, device="cpu", progress=False)
        with pytest.raises(FrechetOverflow, match="cannot be computed in float64"):
            frechet_distance(np.full(3, 1e160), np.eye(3), np.full(3, -1e160), np.eye(3))
        with pytest.raises(FrechetOverflow, match="sigma1 contains NaN or Inf"):
            frechet_distance(np.zeros(3), np.full((3, 3), np.inf), np.zeros(3), np.eye(3))
    x = np.random.default_rng(0).normal(0.5, 0.1, size=(50, 240))
    np.savez(path, mu=np.full(240, 1e160), sigma=np.cov(x, rowvar=False), features=np.str_("toyfaces"))
    G = save_checkpoint(tmp_path / "G.pt", G=tiny_generator(16), G_ema=tiny_generator(16))
    one_line_error(invoke("fid", "--ckpt", G, "--data", path, "--features", "toyfaces", "--device", "cpu",
                          "--num", "4", "--cov", "unbiased"), "huge.npz: the statistics hold values up to 1e+160")


# ---- statistics of another width ---------------------------------------------------------------------------------
def test_statistics_of_another_width_are_refused_naming_the_file(tmp_path):
    """Found when the generated side's width is known (a network of undeclared width is not probed inside a run:
    every image it sees is counted); train's check before the first step probes it (tests/test_training_safety.py)."""
    features = Quadrants()  # [N, 15]
    G = tiny_generator(32)
    x = np.random.default_rng(0).normal(size=(50, 7))
    stats = ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=50, features="Quadrants")
    with pytest.raises(InputError, match="^ReferenceStats: they have 7 features, Quadrants gives 15$"):
        fid(G, stats, features=features, num_gen=16, device="cpu", progress=False)
    with pytest.raises(InputError, match="w7.npz: they have 7 features, Quadrants gives 15$"):
        fid(G, stats.save(tmp_path / "w7.npz"), features=features, num_gen=16, device="cpu", progress=False)
