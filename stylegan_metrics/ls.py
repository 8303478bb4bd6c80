"""Linear separability of a generator: one generation pass keeping z and w, classify, then the pure core."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import torch

from stylegan_core import distributed as group
from stylegan_core.errors import InputError

from .attributes import select_attributes
from .features import module_fingerprint
from .ppl import box_downsample
from .result import MetricResult
from .run_state import DEFAULT_CHUNK, RunState, run_chunks
from .sampling import batch_invariant, generate_batches, metric_device
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
    state_dir: str | os.PathLike | None = None,  # save finished chunks here; a rerun resumes from them
    chunk_size: int = DEFAULT_CHUNK,      # samples per chunk: the unit of sharding and of checkpointing
    distributed: bool = True,             # False: no sharding even in a torch.distributed group
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
    with group.alone(not distributed):
        dev = metric_device(device)
        G = G.to(dev).eval() if isinstance(G, torch.nn.Module) else G
        classifier = classifier.to(dev).eval()
        shapes = {"z": (G.z_dim,), "w": (G.w_dim,), "logits": (len(names),)}

        def compute(start: int, count: int, advance) -> dict[str, np.ndarray]:
            out = {k: np.empty((count, *shape), np.float32) for k, shape in shapes.items()}
            for batch in generate_batches(G, count, first=start, batch_size=batch_size, seed=seed, device=dev,
                                          uint8=False):
                images = batch.images
                if images.shape[2] > 256:
                    images = box_downsample(images, images.shape[2] // 256)
                with torch.inference_mode():
                    logits = batch_invariant(classifier, images)[:, columns]
                if not torch.isfinite(logits).all():
                    raise InputError("the classifier produced NaN or Inf logits")
                rows = slice(batch.start - start, batch.start - start + images.shape[0])
                out["z"][rows] = batch.z.cpu().numpy()
                out["w"][rows] = batch.ws[:, -1].cpu().numpy()
                out["logits"][rows] = logits.cpu().numpy()
                advance(images.shape[0])
            return out

        state = None
        if state_dir:
            state = RunState(state_dir, {"run": "ls", "generator": module_fingerprint(G), "classifier":
                                         module_fingerprint(classifier), "attributes": names, "num_samples": num_samples,
                                         "seed": seed, "chunk_size": chunk_size})
        mine = dict(run_chunks(num_samples, compute, lambda count: {k: (count, *s) for k, s in shapes.items()},
                               state=state, chunk_size=chunk_size, progress=progress, desc="ls"))
        chunks = group.gather_chunks_to_main(mine)
        outcome = None
        if group.is_main():  # the SVMs run once, on rank 0; every rank returns its result
            arrays = {k: np.concatenate([chunks[c][k] for c in sorted(chunks)]) for k in shapes}
            results, tables = {}, []
            for sp in spaces:
                score, table = separability_from_arrays(arrays[sp], arrays["logits"], keep=keep, svm=svm,
                                                        attributes=names, device=dev)
                results[f"ls_{sp}"] = score
                tables.append(table.assign(space=sp))
            outcome = results, pd.concat(tables, ignore_index=True)
        results, details = group.broadcast_from_main(outcome)
        if state is not None:
            state.remove()
        params = dict(num_samples=num_samples, keep=keep, attributes=names, space=space, svm=svm, batch_size=batch_size,
                      seed=seed, device=str(dev), num_processes=group.world_size())
        return MetricResult(metric="ls", results=results, params=params, total_time=time.time() - start_time,
                            num_gpus=group.gpus_used(dev), details=details)
