"""Crafted and damaged files: sizes checked before allocating, statistics validated, edited state and caches and
flipped checkpoint bytes caught by digests and CRCs, and every bad file one line with exit 2."""

import io
import pickle
import re
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core import CheckpointError, DatasetError, ImageDataset, InputError, load_generator, save_checkpoint
from stylegan_core.errors import OutputError
from stylegan_metrics import ReferenceStats, fid
from stylegan_metrics.engine.state import payload_digest
from stylegan_metrics.networks.classifier import CLASSIFIER_KIND
from stylegan_metrics.reference import compute_reference_stats
from helpers import (CrashingQuadrants, Quadrants, invoke, one_line_error, tiny_generator, tiny_stylegan2,
                     write_disc_images, write_zip_dataset)
from nvidia_records import Record, nvidia_generator_record

pytestmark = pytest.mark.usefixtures("one_thread")


def declared_zip(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    """A zip whose members hold these bytes (deflated) but declare other uncompressed sizes, as a crafted file
    can: nothing tells the difference until the member is read to its end."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (data, _) in members.items():
            zf.writestr(name, data)
    raw = bytearray(buffer.getvalue())
    for name, (_, declared) in members.items():
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = raw.find(signature + b"", 0)
            while at >= 0:
                name_at = at + (30 if signature == b"PK\x03\x04" else 46)
                if raw[name_at:name_at + len(name)] == name.encode():
                    raw[at + offset:at + offset + 4] = struct.pack("<I", declared)
                at = raw.find(signature, at + 4)
    path.write_bytes(bytes(raw))
    return path


def npy_header(shape, dtype="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


# ---- 5. declared sizes before allocating ----------------------------------------------------------------------
def test_zero_stride_tensor_in_a_pickle_is_refused(tmp_path):
    path = tmp_path / "tiny.pkl"
    path.write_bytes(pickle.dumps({"G_ema": torch.zeros(1).expand(60000, 60000)}))  # a few hundred bytes, 14 GB
    assert path.stat().st_size < 80_000
    with pytest.raises(CheckpointError, match=r"tensors claim 13,733 MiB from a file of \d+ bytes"):
        load_generator(path)
    one_line_error(invoke("generate", "--ckpt", path, "--seeds", "0", "--out", tmp_path / "g.png"), "claim")


def test_config_beyond_the_stored_weights_is_refused_before_allocating(tmp_path):
    G = tiny_generator(16)
    path = save_checkpoint(tmp_path / "G.pt", config={"G": dict(G.config, img_resolution=65536)}, G_ema=G)
    # in a child limited to 6 GiB of address space: 65536 px would need ~45 GB of buffers
    script = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))\n"
              "from stylegan_core import CheckpointError, load_generator\n"
              "try:\n    load_generator(sys.argv[1])\nexcept CheckpointError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "generator config does not fit its stored weights: building it from its hyper-parameters would take " \
           "more than" in proc.stdout


def test_statistics_shapes_are_read_from_the_headers_first(tmp_path):
    mu = io.BytesIO()
    np.save(mu, np.zeros(2048))
    sigma = npy_header((16000, 16000)) + bytes(1 << 20)  # declares 2 GB, holds 1 MB of zeros
    path = declared_zip(tmp_path / "ref.npz", {"mu.npy": (mu.getvalue(), len(mu.getvalue())),
                                                "sigma.npy": (sigma, len(npy_header((16000, 16000))) + 16000**2 * 8)})
    assert path.stat().st_size < 2_000_000
    with pytest.raises(InputError, match=r"mu \(2048,\) and sigma \(16000, 16000\) are not \[D\] and \[D, D\]"):
        ReferenceStats.load(path)
    big = declared_zip(tmp_path / "big.npz", {"mu.npy": (npy_header((16000,)), len(npy_header((16000,))) + 128000),
                                              "sigma.npy": (sigma, len(npy_header((16000, 16000))) + 16000**2 * 8)})
    with pytest.raises(InputError, match=r"1 <= D <= 8192"):
        ReferenceStats.load(big)


def test_zip_members_that_declare_a_gigabyte_are_refused(tmp_path, metrics_home):
    png = io.BytesIO()
    Image.new("RGB", (16, 16)).save(png, format="PNG")
    data = declared_zip(tmp_path / "data.zip", {"img0.png": (png.getvalue(), 1 << 30)})
    r = invoke("stats", "--data", data, "--out", tmp_path / "s.npz", "--features", "toyfaces", "--device", "cpu")
    one_line_error(r, "img0.png declares 1,073,741,824 bytes, more than the 268,435,456 an image file may have")
    G = tiny_generator(16)
    buffer = io.BytesIO()
    torch.save({"G_ema": G.state_dict()}, buffer)
    with zipfile.ZipFile(buffer) as zf:
        members = {name: (zf.read(name), len(zf.read(name))) for name in zf.namelist()}
    first = next(iter(members))
    members[first] = (members[first][0], 1 << 30)
    ckpt = declared_zip(tmp_path / "G.pt", members)
    with pytest.raises(CheckpointError, match="members declare 1,024 MiB, far more than the file's"):
        load_generator(ckpt)


# ---- 6. reference statistics are validated ------------------------------------------------------------------
def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def valid_stats(n: int = 50, dim: int = 15):
    x = np.random.default_rng(0).normal(0.5, 0.1, size=(n, dim))
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("change,message", [
    (dict(sigma=lambda s: -s), "sigma has a negative eigenvalue"),
    (dict(sigma=lambda s: s + np.triu(np.ones_like(s))), "sigma is not symmetric"),
    (dict(mu=lambda m: m + 1j), "mu is of type complex128, not real numbers"),
    (dict(mu=lambda m: np.where(np.arange(len(m)) == 3, np.nan, m)), "NaN or Inf"),
    (dict(n=lambda n: np.int64(1)), "n = 1; the statistics of fewer than 2 images have no covariance"),
    (dict(n=lambda n: np.arange(3)), "n is an array of shape (3,), not a single value"),
    (dict(sigma=lambda s: s[:-1]), "mu (15,) and sigma (14, 15) are not [D] and [D, D]"),
])
def test_invalid_statistics_are_refused_with_the_reason(tmp_path, change, message):
    mu, sigma = valid_stats()
    arrays = dict(mu=mu, sigma=sigma, n=np.int64(50), features=np.str_("Quadrants"))
    for name, fn in change.items():
        arrays[name] = fn(arrays[name])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. no ComplexWarning: a complex mu is refused, not truncated
        with pytest.raises(InputError, match=re.escape(message)):
            ReferenceStats.load(write_npz(tmp_path / "bad.npz", **arrays))


def test_statistics_without_n_refuse_the_biased_covariance(tmp_path):
    mu, sigma = valid_stats()
    ref = write_npz(tmp_path / "pytorch-fid.npz", mu=mu, sigma=sigma, features=np.str_("Quadrants"))
    calls = []
    features = Quadrants()
    features.register_forward_hook(lambda *args: calls.append(1))
    kwargs = dict(features=features, num_gen=16, device="cpu", progress=False)
    with pytest.raises(InputError, match=r"do not record their number of images \(n\).*--cov unbiased"):
        fid(tiny_generator(16), ref, cov="biased", **kwargs)
    assert calls == []  # refused before the pass
    assert np.isfinite(fid(tiny_generator(16), ref, cov="unbiased", **kwargs).value)
    toy = write_npz(tmp_path / "toy.npz", mu=np.zeros(3), sigma=np.eye(3), features=np.str_("toyfaces"))
    G = tiny_generator(16)
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    one_line_error(invoke("fid", "--ckpt", ckpt, "--data", toy, "--cov", "biased", "--features", "toyfaces",
                          "--device", "cpu", "--num", "4"), "do not record their number of images")


# ---- 7. every bad file is one line, exit 2 ---------------------------------------------------------------------
def test_unwritable_statistics_cache_is_found_before_the_work(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("STYLEGAN_METRICS_HOME", str(tmp_path / "file" / "home"))
    calls = []
    features = Quadrants()
    features.register_forward_hook(lambda *args: calls.append(1))
    data = write_disc_images(tmp_path / "data", 4)
    with pytest.raises(OutputError, match=r"point it at a writable folder"):
        compute_reference_stats(data, features=features, device="cpu", progress=False)
    assert calls == []
    one_line_error(invoke("stats", "--data", data, "--out", tmp_path / "s.npz", "--features", "toyfaces",
                          "--device", "cpu"), "STYLEGAN_METRICS_HOME")


def test_cache_path_that_is_a_folder(tmp_path, metrics_home):
    data = write_disc_images(tmp_path / "data", 4)
    compute_reference_stats(data, features=Quadrants(), device="cpu", progress=False)
    [cache] = (metrics_home / "stats").glob("*.npz")
    cache.unlink()
    cache.mkdir()
    with pytest.raises(OutputError, match="it is a folder"):
        compute_reference_stats(data, features=Quadrants(), device="cpu", progress=False)


def test_bad_datasets_are_one_line(tmp_path, metrics_home, monkeypatch):
    stats = lambda data: invoke("stats", "--data", data, "--out", tmp_path / "s.npz", "--features",  # noqa: E731
                                "toyfaces", "--device", "cpu", "--no-progress")
    images = [np.full((16, 16, 3), i * 40, np.uint8) for i in range(4)]
    good = write_zip_dataset(tmp_path / "good.zip", images, labels=None)
    raw = bytearray(good.read_bytes())
    at = raw.find(b"IDAT")
    raw[at + 8] ^= 0xFF  # inside the first PNG: the zip's CRC no longer matches
    (tmp_path / "crc.zip").write_bytes(bytes(raw))
    one_line_error(stats(tmp_path / "crc.zip"), "Bad CRC-32")
    (tmp_path / "cut.zip").write_bytes(good.read_bytes()[:-30])  # the central directory cut short
    one_line_error(stats(tmp_path / "cut.zip"))
    labelled = write_zip_dataset(tmp_path / "labels.zip", images, labels=[[1, 2], [3], "x", None])
    assert stats(labelled).exit_code == 0  # statistics never read the labels
    with pytest.raises(DatasetError, match="labels are not numbers of one shape"):
        ImageDataset(labelled)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 16 x 16 > 2 x 50: a decompression bomb to PIL
    one_line_error(stats(good), "decompression bomb")
    one_line_error(invoke("ppl", "--ckpt", tmp_path / "G.pt", "--seed", "-1"), "-1 is not in the range", last_line=True)


@pytest.mark.parametrize("content,kind", [
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "a PNG image"), (b'{"G": 1}', "JSON"), (b"G:\n  z_dim: 512\n", "text"),
])
def test_files_that_are_not_checkpoints_are_named(tmp_path, content, kind):
    path = tmp_path / "G.pt"
    path.write_bytes(content)
    r = invoke("generate", "--ckpt", path, "--seeds", "0", "--out", tmp_path / "g.png")
    one_line_error(r, f"not a checkpoint ({kind})")
    assert "refused" not in r.output


def test_crafted_nvidia_records_are_one_line(tmp_path, nvidia_modules):
    mods = nvidia_modules
    path = tmp_path / "G.pkl"
    for name, value, message in (("z_dim", "abc", "ValueError"), ("z_dim", -5, "malformed NVIDIA network pickle"),
                                 ("img_channels", [3], "TypeError"),
                                 ("z_dim", 10**9, "hyper-parameters would take more than")):
        record = nvidia_generator_record(mods, tiny_stylegan2(8))
        record.state[name] = value
        record.state["_init_kwargs"] = mods.EasyDict()
        path.write_bytes(pickle.dumps({"G_ema": record}))
        one_line_error(invoke("generate", "--ckpt", path, "--seeds", "0", "--out", tmp_path / "g.png"), message)
    chain = Record(mods, "Generator")
    for _ in range(1500):  # modules nested deeper than Python's recursion limit
        chain = Record(mods, "Generator", modules=dict(synthesis=chain))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        path.write_bytes(pickle.dumps({"G_ema": chain}))
    finally:
        sys.setrecursionlimit(limit)
    one_line_error(invoke("generate", "--ckpt", path, "--seeds", "0", "--out", tmp_path / "g.png"), "RecursionError")


@pytest.mark.parametrize("config", ["text", {"classifier": [1, 2]}, {"classifier": {"attributes": 5}},
                                    {"classifier": {"attributes": ["a"], "input_resolution": "64"}}])
def test_malformed_classifier_configs_are_one_line(tmp_path, config):
    G = tiny_generator(32)
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    path = save_checkpoint(tmp_path / "C.pt", kind=CLASSIFIER_KIND, config=config, classifier={})
    one_line_error(invoke("ls", "--ckpt", ckpt, "--classifier", path, "--num", "100"), f"{path}:")


def test_deeply_nested_json_in_report(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    one_line_error(invoke("report", path), "nested too deeply")


# ---- 8. edited files are caught -----------------------------------------------------------------------------
def test_edited_or_nan_state_chunks_are_recomputed(tmp_path):
    G, state, features = tiny_generator(16), tmp_path / "state", CrashingQuadrants(error=KeyboardInterrupt)
    ref = ReferenceStats(*valid_stats(100), n=100, features="CrashingQuadrants")
    run = lambda: fid(G, ref, features=features, num_gen=32, batch_size=8, chunk_size=16,  # noqa: E731
                      device="cpu", progress=False, state_dir=state)
    plain = fid(G, ref, features=features, num_gen=32, batch_size=8, chunk_size=16, device="cpu", progress=False)
    chunk = state / "fid32_full_unbiased" / "chunk-000000.npz"
    for edit, message in ((lambda a: dict(a, n=a["n"] * 10), "do not match their digest"),
                          (lambda a: dict(a, sum=a["sum"] * np.nan), "sum holds NaN or Inf")):
        features.calls, features.fail_at = 0, 3  # chunk 0 (2 batches) saved, then a crash
        with pytest.raises(KeyboardInterrupt):
            run()
        with np.load(chunk) as data:
            arrays = edit({k: data[k] for k in data.files})
        if "NaN" in message:  # an edit that also fixes the digest: the values themselves are checked
            arrays["_digest"] = np.str_(payload_digest({k: v for k, v in arrays.items() if k != "_digest"}))
        np.savez(chunk, **arrays)
        features.calls, features.fail_at = 0, None
        with pytest.warns(UserWarning, match=rf"chunk-000000.npz is damaged \(.*{message}"):
            assert run().value == plain.value
        assert features.calls == 4 and not state.exists()  # both chunks computed; the state went


def test_edited_statistics_cache_is_not_used(tmp_path, metrics_home):
    data = write_disc_images(tmp_path / "data", 6)
    features = CrashingQuadrants()
    first = compute_reference_stats(data, features=features, device="cpu", progress=False)
    [cache] = (metrics_home / "stats").glob("*.npz")
    with np.load(cache) as f:
        arrays = {k: f[k] for k in f.files}
    for edited in (dict(arrays, mu=arrays["mu"] + 5), {k: v for k, v in arrays.items() if k != "digest"}):
        np.savez(cache, **dict(edited, mu=edited["mu"] + 5) if "digest" not in edited else edited)
        features.calls = 0
        again = compute_reference_stats(data, features=features, device="cpu", progress=False)
        assert features.calls > 0 and np.array_equal(again.mu, first.mu)  # recomputed, not trusted
    features.calls = 0
    compute_reference_stats(data, features=features, device="cpu", progress=False)
    assert features.calls == 0  # the rewritten cache is ours again


def test_flipped_byte_in_a_checkpoint_fails_its_crc(tmp_path):
    G = tiny_generator(16)
    path = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)  # the largest tensor's bytes
    raw = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length  # the local header's own lengths (torch pads)
    raw[start + info.file_size // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=f"{info.filename} fails its CRC-32 check"):
        load_generator(path)
