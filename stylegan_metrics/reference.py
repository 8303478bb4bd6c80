"""Feature statistics of real images: a dataset (folder or zip) or any image source, computed on the engine,
cached under $STYLEGAN_METRICS_HOME/stats keyed by everything that changes them, written atomically."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from stylegan_core import ranks
from stylegan_core.allocator import keep_freed_memory
from stylegan_core.errors import InputError, OutputError
from stylegan_core.files import atomic_write, check_writable

from .engine.reference_images import ReferenceImages, dataset_batches, image_views, open_images
from .engine.device import resolve_device
from .engine.passes import open_states, run_pass
from .engine.state import DEFAULT_CHUNK, Payload
from .networks.registry import FeatureExtractor, build_feature_extractor
from .networks.resizing import resize_rule
from .stats import FeatureStats, ReferenceStats

CACHE_VERSION = 1
STATS_SHAPES = {"n": (), "sum": (-1,), "sum_outer": (-1, -1)}


def metrics_home() -> Path:
    """$STYLEGAN_METRICS_HOME, default ~/.cache/stylegan-metrics."""
    return Path(os.environ.get("STYLEGAN_METRICS_HOME") or Path.home() / ".cache" / "stylegan-metrics")


class StatsPart:
    """Float64 running sums of one chunk's features, kept on the feature network's device (read once, in `arrays`)."""

    def __init__(self, extractor: FeatureExtractor):
        self.extractor, self.acc = extractor, None

    def add(self, view) -> None:
        features = view.output(self.extractor.fingerprint, self.extractor.outputs)[0]  # [B, D]
        if self.acc is None:
            self.acc = FeatureStats(features.shape[1], device=features.device)
        self.acc.update(features)

    def arrays(self) -> Payload:
        return self.acc.to_arrays()


class FeatureStatsConsumer:
    """Reads the features of images 0..num-1 into float64 sums (one chunk's sums per payload)."""

    def __init__(self, extractor: FeatureExtractor, num: int, folder: str):
        self.extractor, self.num, self.folder = extractor, num, folder

    def state_key(self) -> dict:
        return {"features": self.extractor.fingerprint}

    def shapes(self, count: int) -> dict[str, tuple]:
        return STATS_SHAPES

    def new_part(self) -> StatsPart:
        return StatsPart(self.extractor)


def merged(payloads: Iterable[Payload]) -> FeatureStats | None:
    """Chunk sums added in the order given (None for none): the one order every path sums chunks in."""
    acc = None
    for payload in payloads:
        part = FeatureStats.from_arrays(payload)
        acc = part if acc is None else acc.merge(part)
    return acc


def sum_over_ranks(chunks: dict[int, Payload]) -> FeatureStats:
    """This rank's chunk sums merged in chunk order, then summed over the ranks (float64 all-reduce)."""
    acc = merged(chunks[c] for c in sorted(chunks))
    if ranks.world_size() == 1:
        return acc
    dims = [d for d in ranks.all_gather_chunks({ranks.rank(): acc and acc.num_features}).values() if d]
    acc = acc or FeatureStats(dims[0])  # a rank without chunks adds zeros
    counts = ranks.all_reduce_sum(torch.tensor([acc.n], dtype=torch.float64))
    ranks.all_reduce_sum(acc.sum)
    ranks.all_reduce_sum(acc.sum_outer)
    acc.n = int(counts.item())
    return acc


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
    return merged(chunk_sums(start) for start in range(0, rows.shape[0], chunk_size))


def cached_reference_stats(cache_file: Path | None, extractor: FeatureExtractor,
                           batches_of: Callable[[int, int], Iterable[torch.Tensor]], *, total: int,
                           device: torch.device, progress: bool = True, desc: str = "reference",
                           state_dir: Path | None = None, state_key: dict | None = None,
                           chunk_size: int = DEFAULT_CHUNK, description: dict | None = None,
                           features_file: Path | None = None) -> ReferenceStats:
    """The statistics in `cache_file` if it holds valid ones (on every rank); otherwise those of images 0..total-1
    (`batches_of(start, count)` yields uint8 [B, C, H, W] batches of them), saved there atomically by rank 0 (a
    damaged cache file is recomputed and replaced, never trusted). `state_dir` keeps finished chunks.
    `description`: the images' `resolution`, `source` and `resize` rule, recorded with the statistics.
    `features_file`: cached features of the same images (kept for KID) to sum instead of running the network."""
    description = description or {}
    cached = None
    if cache_file is not None and cache_file.is_file():
        try:
            cached = ReferenceStats.load(cache_file, require_digest=True)
        except InputError:
            pass
        if cached is not None and not cached.described():  # cached before statistics recorded their images
            cached = dataclasses.replace(cached, **description)
    consumer = FeatureStatsConsumer(extractor, total, folder="")

    def remove_stale_state() -> None:  # a crashed run's chunks are of no use once the statistics are known
        if state_dir is not None and state_dir.exists():
            open_states([consumer], source_key=state_key or {}, state_dir=state_dir, chunk_size=chunk_size)[0].remove()

    if ranks.all_agree(cached is not None):
        remove_stale_state()
        return cached

    if cache_file is not None and ranks.is_main():
        try:
            check_writable(cache_file)  # before the work, not after it
        except OutputError as e:
            raise OutputError(f"{e}: the statistics cache lives under $STYLEGAN_METRICS_HOME ({metrics_home()}); "
                              f"point it at a writable folder") from None
    rows = load_cached_features(features_file, total)
    if ranks.all_agree(rows is not None):  # every rank, or none, sums them
        stats = ReferenceStats.from_accumulator(stats_of_rows(rows, chunk_size, device), extractor.name,
                                                extractor.fingerprint, **description)
        if cache_file is not None and ranks.is_main():
            stats.save(cache_file)
        remove_stale_state()
        return stats
    states = open_states([consumer], source_key=state_key or {}, state_dir=state_dir, chunk_size=chunk_size)
    chunks = run_pass(image_views(batches_of, device), [consumer], states, chunk_size=chunk_size, progress=progress,
                      desc=desc)[0]
    stats = ReferenceStats.from_accumulator(sum_over_ranks(chunks), extractor.name, extractor.fingerprint,
                                            **description)
    if cache_file is not None and ranks.is_main():
        stats.save(cache_file)
    if states[0] is not None:
        states[0].remove()
    return stats


def compute_reference_stats(
    data,                                 # an image folder, a zip, or a dataset object with fingerprint()
    *,
    features: str | torch.nn.Module | FeatureExtractor = "inception-v3",
    weights: str | os.PathLike | None = None,
    max_items: int | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
    cache: bool = True,
    resolution: int | None = None,
    state_dir: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    precision: str = "fp32",
    distributed: bool = True,
    workers: int | None = None,
) -> ReferenceStats:
    """Statistics of every image of a folder or zip (or the first `max_items`), cached under
    $STYLEGAN_METRICS_HOME/stats keyed by a hash of the data, the feature network and the options.
    `data` may also be a dataset object: items uint8 [3, R, R] images (or (image, label) pairs), and a
    `fingerprint()` method returning a dict that identifies its content (the cache key), as ToyFaces has.
    Under torchrun the images are shared out to the processes (`distributed=False`: not); `state_dir` makes the
    run resumable. `workers` DataLoader processes decode images while the network runs (default
    `default_workers(device)`). `resolution`, when given, must be the images' size. The statistics record the
    images' resolution, their source, and the feature network's resize rule."""
    with ranks.alone(not distributed):
        dev = ranks.init_from_env(resolve_device(device))
        keep_freed_memory()
        images = open_images(data, max_items=max_items, resolution=resolution)
        extractor = build_feature_extractor(features, weights=weights, device=dev, precision=precision)
        key = {"data": images.fingerprint, "max_items": max_items, "features": extractor.fingerprint}
        batches_of = dataset_batches(images.dataset, batch_size=batch_size, workers=workers, device=dev)
        description = {"resolution": images.resolution, "source": images.source,
                       "resize": resize_rule(extractor.name)}
        return cached_reference_stats(stats_cache_file(images.stem, key) if cache else None, extractor,
                                      batches_of, total=len(images), device=dev, progress=progress,
                                      state_dir=Path(state_dir) if state_dir else None,
                                      state_key={"run": "reference-stats", **key}, chunk_size=chunk_size,
                                      description=description,
                                      features_file=features_cache_file(images, extractor, 0) if cache else None)
