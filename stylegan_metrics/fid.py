"""FID: generated-image statistics against cached reference statistics of a dataset, Fréchet distance."""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from stylegan_core import distributed as group
from stylegan_core.datasets import ImageDataset
from stylegan_core.errors import InputError

from .features import FeatureExtractor, build_feature_extractor, module_fingerprint
from .frechet import frechet_distance
from .result import MetricResult
from .run_state import DEFAULT_CHUNK, RunState, run_chunks
from .sampling import generate_batches, metric_device
from .stats import COVARIANCE_KINDS, FeatureStats, ReferenceStats

CACHE_VERSION = 1


def metrics_home() -> Path:
    """$STYLEGAN_METRICS_HOME, default ~/.cache/stylegan-metrics."""
    return Path(os.environ.get("STYLEGAN_METRICS_HOME") or Path.home() / ".cache" / "stylegan-metrics")


def dataset_fingerprint(dataset: ImageDataset) -> dict:
    """What identifies a dataset's content cheaply: file names with sizes and mtimes (folder) or CRCs (zip)."""
    if dataset.kind == "zip":
        names = set(dataset.files)
        with zipfile.ZipFile(dataset.path) as zf:
            entries = [(i.filename, i.file_size, i.CRC) for i in zf.infolist() if i.filename in names]
    else:
        entries = []
        for name in dataset.files:
            st = (dataset.path / name).stat()
            entries.append((name, st.st_size, st.st_mtime_ns))
    return {"path": str(dataset.path.resolve()), "kind": dataset.kind,
            "entries": hashlib.sha256(json.dumps(entries).encode()).hexdigest()}


def accumulate(extractor: FeatureExtractor, batches, acc: FeatureStats | None = None,
               advance: Callable[[int], None] | None = None) -> FeatureStats:
    for images in batches:
        features = extractor(images)
        if acc is None:
            acc = FeatureStats(features.shape[1], device="cpu")
        acc.update(features)
        if advance is not None:
            advance(images.shape[0])
    return acc


def feature_stats(
    extractor: FeatureExtractor,
    batches_of: Callable[[int, int], Iterable[torch.Tensor]],  # (start, count) -> uint8 batches of those images
    num: int,                                                  # images 0..num-1
    *,
    device: torch.device,
    state: RunState | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: bool = True,
    desc: str = "",
) -> FeatureStats:
    """float64 feature statistics of images 0..num-1: chunks shared out to the ranks, merged in chunk order,
    summed across ranks; finished chunks saved in `state` and read back on a rerun."""

    def compute(start: int, count: int, advance) -> dict[str, np.ndarray]:
        return accumulate(extractor, (images.to(device) for images in batches_of(start, count)),
                          advance=advance).to_arrays()

    acc = None
    for _, arrays in run_chunks(num, compute, lambda count: STATS_SHAPES, state=state, chunk_size=chunk_size,
                                progress=progress, desc=desc):
        part = FeatureStats.from_arrays(arrays)
        acc = part if acc is None else acc.merge(part)
    if group.world_size() == 1:
        return acc
    dims = [d for d in group.all_gather_chunks({group.rank(): acc and acc.num_features}).values() if d]
    acc = acc or FeatureStats(dims[0])  # a rank without chunks adds zeros
    counts = group.all_reduce_sum(torch.tensor([acc.n], dtype=torch.float64))
    group.all_reduce_sum(acc.sum)
    group.all_reduce_sum(acc.sum_outer)
    acc.n = int(counts.item())
    return acc


STATS_SHAPES = {"n": (), "sum": (-1,), "sum_outer": (-1, -1)}


def compute_reference_stats(
    data: str | os.PathLike,
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
    Under torchrun the images are shared out to the processes (`distributed=False`: not, as in `fid`);
    `state_dir` makes the run resumable. `workers` DataLoader processes decode images while the network runs
    (default `default_workers(device)`)."""
    with group.alone(not distributed):
        dev = metric_device(device)
        dataset = ImageDataset(data, channels=3, max_items=max_items, strict=True)
        if resolution is not None and dataset.resolution != resolution:
            raise InputError(f"{data}: images are {dataset.resolution}x{dataset.resolution} but the generator "
                             f"makes {resolution}x{resolution}")
        extractor = build_feature_extractor(features, weights=weights, device=dev, precision=precision)
        key = {"data": dataset_fingerprint(dataset), "max_items": max_items, "features": extractor.fingerprint}
        cache_file = stats_cache_file(Path(data).stem, key)

        num_workers = default_workers(dev) if workers is None else workers

        def batches_of(start: int, count: int):
            subset = torch.utils.data.Subset(dataset, range(start, start + count))
            yield from (images for images, _ in torch.utils.data.DataLoader(
                subset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                pin_memory=dev.type == "cuda"))

        state = RunState(state_dir, {"run": "reference-stats", **key, "chunk_size": chunk_size}) if state_dir else None
        return cached_reference_stats(cache_file if cache else None, extractor, batches_of, total=len(dataset),
                                      device=dev, progress=progress, state=state, chunk_size=chunk_size)


def default_workers(device: torch.device) -> int:
    """Image-decoding processes for reference statistics: on a GPU up to 8 (decoding, not the network, limits
    the speed there), on the CPU none (the network already uses every core; see README "Benchmarks")."""
    return min(8, max(1, (os.cpu_count() or 1) - 1)) if device.type == "cuda" else 0


def stats_cache_file(stem: str, key: dict) -> Path:
    """$STYLEGAN_METRICS_HOME/stats/{stem}-{hash}.npz, the hash over everything in `key` (JSON)."""
    digest = hashlib.sha256(json.dumps({"version": CACHE_VERSION, **key}, sort_keys=True).encode()).hexdigest()[:32]
    return metrics_home() / "stats" / f"{stem}-{digest}.npz"


def cached_reference_stats(cache_file: Path | None, extractor: FeatureExtractor,
                           batches_of: Callable[[int, int], Iterable[torch.Tensor]], *, total: int,
                           device: torch.device, progress: bool = True, desc: str = "reference",
                           state: RunState | None = None, chunk_size: int = DEFAULT_CHUNK) -> ReferenceStats:
    """The statistics in `cache_file` if it holds valid ones (on every rank); otherwise those of images 0..total-1
    from `batches_of(start, count)`, saved there atomically by rank 0 (a damaged cache file is recomputed and
    replaced, never trusted)."""
    cached = None
    if cache_file is not None and cache_file.is_file():
        try:
            cached = ReferenceStats.load(cache_file)
        except InputError:
            pass
    if all(group.all_gather_chunks({group.rank(): cached is not None}).values()):
        if state is not None:
            state.remove()
        return cached
    acc = feature_stats(extractor, batches_of, total, device=device, state=state, chunk_size=chunk_size,
                        progress=progress, desc=desc)
    stats = ReferenceStats.from_accumulator(acc, extractor.name, extractor.fingerprint)
    if cache_file is not None and group.is_main():
        stats.save(cache_file)
    if state is not None:
        state.remove()
    return stats


def fid(
    G,
    reference: str | os.PathLike | ReferenceStats,
    *,
    num_gen: int = 50_000,
    batch_size: int = 32,
    seed: int = 0,
    truncation_psi: float = 1.0,
    features: str | torch.nn.Module | FeatureExtractor = "inception-v3",
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    cov: str = "unbiased",
    state_dir: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    precision: str = "fp32",
    distributed: bool = True,
    workers: int | None = None,
) -> MetricResult:
    """Fréchet Inception Distance of `num_gen` generated images against `reference` (a folder, a zip,
    a statistics .npz or ReferenceStats). `cov='biased'` reproduces NVIDIA stylegan2-ada's 1/N.

    Under torchrun (or `--gpus N`) the samples are shared out by index, the sums all-reduced in float64.
    With `state_dir` every finished chunk of `chunk_size` samples is saved there, and rerunning the same
    call after a crash resumes from them; the folder is removed once the result is computed. `precision`
    ('fp32', 'tf32', 'bf16') is the feature network's arithmetic; statistics of another precision are refused.
    `distributed=False` computes everything in this process even inside an initialised process group, for
    a caller that evaluates on one rank only (`if rank == 0: fid(...)` would otherwise wait for the others).
    `workers`: image-decoding processes when `reference` is a folder or zip (see `compute_reference_stats`)."""
    if cov not in COVARIANCE_KINDS:
        raise InputError(f"cov must be one of {', '.join(COVARIANCE_KINDS)}, not {cov!r}")
    start_time = time.time()
    with group.alone(not distributed):
        dev = metric_device(device)
        G = G.to(dev).eval() if isinstance(G, torch.nn.Module) else G
        extractor = build_feature_extractor(features, weights=weights, device=dev, precision=precision)
        if isinstance(reference, ReferenceStats):
            ref = reference
        elif Path(reference).suffix.lower() == ".npz":
            ref = ReferenceStats.load(reference)
        else:
            ref = compute_reference_stats(reference, features=extractor, batch_size=batch_size, device=dev,
                                          progress=progress, resolution=G.img_resolution, chunk_size=chunk_size,
                                          state_dir=Path(state_dir) / "reference" if state_dir else None,
                                          workers=workers)
        if ref.features != extractor.name:
            raise InputError(f"reference statistics are of {ref.features!r} features, not {extractor.name!r}")
        if ref.fingerprint and ref.fingerprint != extractor.fingerprint:
            raise InputError(f"reference statistics were computed with other {ref.features} weights "
                             f"({ref.fingerprint}, now {extractor.fingerprint}); recompute them with these weights")

        def batches_of(start: int, count: int):
            for batch in generate_batches(G, count, first=start, batch_size=batch_size, seed=seed, device=dev,
                                          truncation_psi=truncation_psi):
                yield batch.images

        state = None
        if state_dir:
            state = RunState(Path(state_dir) / "generated", {
                "run": "fid-generated", "generator": module_fingerprint(G), "num_gen": num_gen, "seed": seed,
                "truncation_psi": truncation_psi, "features": extractor.fingerprint, "chunk_size": chunk_size})
        gen = feature_stats(extractor, batches_of, num_gen, device=dev, state=state, chunk_size=chunk_size,
                            progress=progress, desc="fid")
        if gen.num_features != ref.mu.shape[0]:
            raise InputError(f"reference statistics have {ref.mu.shape[0]} features, the network gives {gen.num_features}")
        value = frechet_distance(gen.mean(), gen.covariance(cov), ref.mu, ref.covariance(cov))
        if state is not None:
            state.remove()
            if group.is_main() and not any(Path(state_dir).iterdir()):
                Path(state_dir).rmdir()  # held only the two parts' folders
        name = f"fid{num_gen // 1000}k" if num_gen % 1000 == 0 else f"fid{num_gen}"
        params = dict(num_gen=num_gen, batch_size=batch_size, seed=seed, truncation_psi=truncation_psi,
                      features=extractor.name, features_fingerprint=extractor.fingerprint, cov=cov,
                      precision=extractor.precision,
                      reference=str(reference) if not isinstance(reference, ReferenceStats) else "ReferenceStats",
                      reference_n=ref.n, device=str(dev), num_processes=group.world_size())
        return MetricResult(metric=name, results={name: value}, params=params, total_time=time.time() - start_time,
                            num_gpus=group.gpus_used(dev))
