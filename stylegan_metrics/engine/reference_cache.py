"""Caches of reference data under $STYLEGAN_METRICS_HOME/stats: statistics (.npz) and kept features (.npy with
a SHA-256 beside them), named by a hash of everything that changes them, written atomically."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from stylegan_core.files import atomic_write

from stylegan_metrics.networks.registry import FeatureExtractor
from stylegan_metrics.stats import FeatureStats

from .reductions import summed
from .reference_images import ReferenceImages
from .state import Payload

CACHE_VERSION = 1


def metrics_home() -> Path:
    """$STYLEGAN_METRICS_HOME, default ~/.cache/stylegan-metrics."""
    return Path(os.environ.get("STYLEGAN_METRICS_HOME") or Path.home() / ".cache" / "stylegan-metrics")


def stats_cache_file(stem: str, key: dict) -> Path:
    """$STYLEGAN_METRICS_HOME/stats/{stem}-{hash}.npz, the hash over everything in `key` (JSON)."""
    digest = hashlib.sha256(json.dumps({"version": CACHE_VERSION, **key}, sort_keys=True).encode()).hexdigest()[:32]
    return metrics_home() / "stats" / f"{stem}-{digest}.npz"


def features_cache_file(images: ReferenceImages, extractor: FeatureExtractor, output: int) -> Path:
    """Where output `output` of `extractor` on every image of `images` is cached, [N, D] float32 .npy."""
    key = {"data": images.fingerprint, "num": len(images), "features": extractor.fingerprint, "output": output,
           "kind": "features"}
    return stats_cache_file(f"{images.stem}-features", key).with_suffix(".npy")


def load_cached_features(path: Path | None, num: int) -> np.ndarray | None:
    """The cached features in `path`, memory-mapped, if they are a [num, D] float32 array whose SHA-256 matches the
    digest written beside them (`save_features`); else None (missing, damaged or edited: computed again)."""
    if path is None or not path.is_file():
        return None
    try:
        rows = np.load(path, mmap_mode="r", allow_pickle=False)
        digest = path.with_name(path.name + ".sha256").read_text().strip()
    except Exception:  # any damage (empty, truncated, another format, no digest) means: compute again
        return None
    if not (isinstance(rows, np.ndarray) and rows.ndim == 2 and rows.shape[0] == num and rows.dtype == np.float32):
        return None
    st = path.stat()
    return rows if _digest_matches(str(path.resolve()), st.st_size, st.st_mtime_ns, digest) else None


@functools.lru_cache(maxsize=16)
def _digest_matches(path: str, size: int, mtime_ns: int, digest: str) -> bool:
    """Whether the .npy at `path` hashes to `digest`, remembered per file version: KID and then FID of the same
    reference read the file once (another size, mtime or digest is checked again)."""
    return _sha256_of_rows(np.load(path, mmap_mode="r", allow_pickle=False)) == digest


def save_features(path: Path, rows: np.ndarray) -> None:
    """Write features as .npy, then their SHA-256 beside them (`path.sha256`), each atomically."""
    rows = np.ascontiguousarray(rows, np.float32)
    buffer = io.BytesIO()
    np.save(buffer, rows)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
    with atomic_write(path.with_name(path.name + ".sha256")) as f:
        f.write(_sha256_of_rows(rows).encode())


def _sha256_of_rows(rows: np.ndarray, block: int = 4096) -> str:
    h = hashlib.sha256(json.dumps([rows.dtype.str, list(rows.shape)]).encode())
    for start in range(0, rows.shape[0], block):  # a memory-mapped file is read block by block
        h.update(np.ascontiguousarray(rows[start:start + block]).tobytes())
    return h.hexdigest()


def stats_of_rows(rows: np.ndarray, chunk_size: int, device: torch.device) -> FeatureStats:
    """The statistics a one-process pass with `chunk_size` on `device` would sum from these feature rows (the same
    chunks, summed on the same device and merged in the same order), read chunk by chunk from a memory-mapped
    array."""
    def chunk_sums(start: int) -> Payload:
        part = FeatureStats(rows.shape[1], device=device)
        part.update(torch.from_numpy(np.array(rows[start:start + chunk_size])).to(device))
        return part.to_arrays()
    return FeatureStats.from_arrays(summed(chunk_sums(start) for start in range(0, rows.shape[0], chunk_size)))
