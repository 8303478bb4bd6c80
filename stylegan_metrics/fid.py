"""FID: generated-image statistics against cached reference statistics of a dataset, Fréchet distance."""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from pathlib import Path

import torch
from tqdm.auto import tqdm

from stylegan_core.datasets import ImageDataset
from stylegan_core.errors import InputError

from .features import FeatureExtractor, build_feature_extractor
from .frechet import frechet_distance
from .result import MetricResult
from .sampling import generate_batches, resolve_device
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


def accumulate(extractor: FeatureExtractor, batches, acc: FeatureStats | None = None) -> FeatureStats:
    for images in batches:
        features = extractor(images)
        if acc is None:
            acc = FeatureStats(features.shape[1], device="cpu")
        acc.update(features)
    return acc


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
) -> ReferenceStats:
    """Statistics of every image of a folder or zip (or the first `max_items`), cached under
    $STYLEGAN_METRICS_HOME/stats keyed by a hash of the data, the feature network and the options."""
    dev = resolve_device(device)
    dataset = ImageDataset(data, channels=3, max_items=max_items, strict=True)
    if resolution is not None and dataset.resolution != resolution:
        raise InputError(f"{data}: images are {dataset.resolution}x{dataset.resolution} but the generator "
                         f"makes {resolution}x{resolution}")
    extractor = build_feature_extractor(features, weights=weights, device=dev)
    cache_file = stats_cache_file(Path(data).stem, {"data": dataset_fingerprint(dataset), "max_items": max_items,
                                                    "features": extractor.fingerprint})
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return cached_reference_stats(cache_file if cache else None, extractor, (images for images, _ in loader),
                                  total=len(dataset), device=dev, progress=progress)


def stats_cache_file(stem: str, key: dict) -> Path:
    """$STYLEGAN_METRICS_HOME/stats/{stem}-{hash}.npz, the hash over everything in `key` (JSON)."""
    digest = hashlib.sha256(json.dumps({"version": CACHE_VERSION, **key}, sort_keys=True).encode()).hexdigest()[:32]
    return metrics_home() / "stats" / f"{stem}-{digest}.npz"


def cached_reference_stats(cache_file: Path | None, extractor: FeatureExtractor, batches, *, total: int,
                           device: torch.device, progress: bool = True, desc: str = "reference") -> ReferenceStats:
    """The statistics in `cache_file` if it holds valid ones; otherwise those of the uint8 image `batches`,
    saved there atomically (a damaged cache file is recomputed and replaced, never trusted)."""
    if cache_file is not None and cache_file.is_file():
        try:
            return ReferenceStats.load(cache_file)
        except InputError:
            pass
    bar = tqdm(total=total, unit="img", desc=desc, disable=None if progress else True)

    def on_device():
        for images in batches:
            yield images.to(device)
            bar.update(images.shape[0])

    try:
        acc = accumulate(extractor, on_device())
    finally:
        bar.close()
    stats = ReferenceStats.from_accumulator(acc, extractor.name, extractor.fingerprint)
    if cache_file is not None:
        stats.save(cache_file)
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
) -> MetricResult:
    """Fréchet Inception Distance of `num_gen` generated images against `reference` (a folder, a zip,
    a statistics .npz or ReferenceStats). `cov='biased'` reproduces NVIDIA stylegan2-ada's 1/N."""
    if cov not in COVARIANCE_KINDS:
        raise InputError(f"cov must be one of {', '.join(COVARIANCE_KINDS)}, not {cov!r}")
    start_time = time.time()
    dev = resolve_device(device)
    G = G.to(dev).eval() if isinstance(G, torch.nn.Module) else G
    extractor = build_feature_extractor(features, weights=weights, device=dev)
    if isinstance(reference, ReferenceStats):
        ref = reference
    elif Path(reference).suffix.lower() == ".npz":
        ref = ReferenceStats.load(reference)
    else:
        ref = compute_reference_stats(reference, features=extractor, batch_size=batch_size,
                                      device=dev, progress=progress, resolution=G.img_resolution)
    if ref.features != extractor.name:
        raise InputError(f"reference statistics are of {ref.features!r} features, not {extractor.name!r}")
    if ref.fingerprint and ref.fingerprint != extractor.fingerprint:
        raise InputError(f"reference statistics were computed with other {ref.features} weights "
                         f"({ref.fingerprint}, now {extractor.fingerprint}); recompute them with these weights")
    batches = (b.images for b in generate_batches(G, num_gen, batch_size=batch_size, seed=seed, device=dev,
                                                  truncation_psi=truncation_psi, progress=progress, desc="fid"))
    gen = accumulate(extractor, batches)
    if gen.num_features != ref.mu.shape[0]:
        raise InputError(f"reference statistics have {ref.mu.shape[0]} features, the network gives {gen.num_features}")
    value = frechet_distance(gen.mean(), gen.covariance(cov), ref.mu, ref.covariance(cov))
    name = f"fid{num_gen // 1000}k" if num_gen % 1000 == 0 else f"fid{num_gen}"
    params = dict(num_gen=num_gen, batch_size=batch_size, seed=seed, truncation_psi=truncation_psi,
                  features=extractor.name, features_fingerprint=extractor.fingerprint, cov=cov,
                  reference=str(reference) if not isinstance(reference, ReferenceStats) else "ReferenceStats",
                  reference_n=ref.n, device=str(dev))
    return MetricResult(metric=name, results={name: value}, params=params, total_time=time.time() - start_time,
                        num_gpus=int(dev.type == "cuda"))
