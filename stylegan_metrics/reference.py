"""Feature statistics of real images (a folder, a zip or a dataset object), computed by the engine's reference
service (engine.reference) and cached under $STYLEGAN_METRICS_HOME/stats."""

from __future__ import annotations

import numbers
import os

import torch

from stylegan_core import ranks
from stylegan_core.allocator import keep_freed_memory
from stylegan_core.errors import InputError

from .engine.context import Context
from .engine.device import resolve_device
from .engine.options import EvaluationOptions
from .engine.reference_cache import metrics_home
from .engine.reference_images import check_resolution, is_images
from .engine.state import DEFAULT_CHUNK
from .networks.registry import FeatureExtractor
from .stats import ReferenceStats

__all__ = ["compute_reference_stats", "metrics_home"]


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
    options = EvaluationOptions(data=data, weights=weights, batch_size=batch_size, device=device, progress=progress,
                                cache=cache, state_dir=state_dir, chunk_size=chunk_size, precision=precision,
                                distributed=distributed, workers=workers)
    return reference_stats_of_networks([features], options, max_items=max_items, resolution=resolution)[0]


def reference_stats_of_networks(networks: list, options: EvaluationOptions, *, max_items: int | None = None,
                                resolution: int | None = None) -> list[ReferenceStats]:
    """Statistics of `options.data`'s images (the first `max_items`) in each feature network of `networks` (names,
    modules or extractors), from one pass over the images (each through each network once), cached."""
    from .engine.reference import ReferenceRequest

    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, numbers.Integral)
                                  or max_items < 2):
        raise InputError(f"max_items must be an integer >= 2 (None: every image), not {max_items!r}")
    max_items = None if max_items is None else int(max_items)
    data = options.data
    if not is_images(data):
        what = repr(str(data)) if isinstance(data, (str, os.PathLike)) else \
            "None" if data is None else f"a {type(data).__name__}"
        raise InputError(f"statistics are computed from images: give an image folder, a zip or a dataset object "
                         f"with a fingerprint() method, not {what}")
    with ranks.alone(not options.distributed):
        dev = ranks.init_from_env(resolve_device(options.device))
        keep_freed_memory()
        ctx = Context(None, dev, options)
        images = ctx.reference.images(max_items)
        check_resolution(images.source, images.resolution, resolution)
        extractors = [ctx.feature_extractor(network, replaceable=False) for network in networks]
        ctx.check_weights_used()
        folders = [f"stats-{i}" if len(networks) > 1 else "" for i in range(len(networks))]
        ctx.reference.prefetch([ReferenceRequest("stats", e, 0, max_items, folder=f)
                                for e, f in zip(extractors, folders)])
        return [ctx.reference_stats(e, max_items, folder=f) for e, f in zip(extractors, folders)]
