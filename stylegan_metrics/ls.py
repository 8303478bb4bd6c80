"""Linear separability of a generator: one generation pass keeping z and w, classify, then the pure core."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from stylegan_core.errors import InputError

from .attributes import select_attributes
from .ppl import box_downsample
from .result import MetricResult
from .sampling import batch_invariant, generate_batches, resolve_device
from .separability import separability_from_arrays


def linear_separability(
    G,
    classifier: torch.nn.Module,
    *,
    num_samples: int = 200_000,
    keep: float = 0.5,
    attributes: int | str | list[str] = 40,
    space: str = "both",
    svm: str = "sklearn",
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> MetricResult:
    """Results `ls_z` and/or `ls_w` (2 ** sum of H(Y|X) bits); `details` has one row per attribute and space.

    z ~ N(0, I), no truncation, random noise; w = ws[:, -1]; images above 256 px are box-downsampled by H // 256
    before the classifier; only z, w and the logits are kept (never the images)."""
    spaces = {"both": ["z", "w"], "z": ["z"], "w": ["w"]}.get(space)
    if spaces is None:
        raise InputError(f"space must be z, w or both, not {space!r}")
    available = list(getattr(classifier, "attributes", []))
    if not available:
        raise InputError("the classifier has no `.attributes` list")
    names = select_attributes(attributes, available=available)
    columns = [available.index(n) for n in names]
    start_time = time.time()
    dev = resolve_device(device)
    G = G.to(dev).eval() if isinstance(G, torch.nn.Module) else G
    classifier = classifier.to(dev).eval()
    z_all = np.empty((num_samples, G.z_dim), np.float32)
    w_all = np.empty((num_samples, G.w_dim), np.float32)
    logits = np.empty((num_samples, len(names)), np.float32)
    for batch in generate_batches(G, num_samples, batch_size=batch_size, seed=seed, device=dev, progress=progress,
                                  desc="ls", uint8=False):
        images = batch.images
        if images.shape[2] > 256:
            images = box_downsample(images, images.shape[2] // 256)
        with torch.inference_mode():
            out = batch_invariant(classifier, images)[:, columns]
        if not torch.isfinite(out).all():
            raise InputError("the classifier produced NaN or Inf logits")
        rows = slice(batch.start, batch.start + images.shape[0])
        z_all[rows] = batch.z.cpu().numpy()
        w_all[rows] = batch.ws[:, -1].cpu().numpy()
        logits[rows] = out.cpu().numpy()
    results, tables = {}, []
    for sp in spaces:
        score, table = separability_from_arrays(z_all if sp == "z" else w_all, logits, keep=keep, svm=svm,
                                                attributes=names, device=dev)
        results[f"ls_{sp}"] = score
        tables.append(table.assign(space=sp))
    params = dict(num_samples=num_samples, keep=keep, attributes=names, space=space, svm=svm, batch_size=batch_size,
                  seed=seed, device=str(dev))
    return MetricResult(metric="ls", results=results, params=params, total_time=time.time() - start_time,
                        num_gpus=int(dev.type == "cuda"), details=pd.concat(tables, ignore_index=True))
