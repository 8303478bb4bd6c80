"""Perceptual path length: per-index pairs interpolated in Z (slerp) or W (lerp), a step of epsilon, the face crop,
LPIPS / epsilon^2, the trimmed mean (formulas.paths)."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pandas as pd
import torch

from stylegan_core import ranks
from stylegan_core.errors import InputError

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.metric import Metric, MetricFamily, check_count, count_name, parse_count
from stylegan_metrics.engine.passes import RowsPart, index_batches
from stylegan_metrics.engine.runner import run_metrics
from stylegan_metrics.engine.sampling import _table_rows, latents, map_latents, noise_seeds, synthesize
from stylegan_metrics.engine.state import DEFAULT_CHUNK, Payload
from stylegan_metrics.formulas.paths import (DOWNSAMPLE_RULES, box_downsample, crop_face, downsample_factor, lerp,
                                             slerp, trimmed_mean)
from stylegan_metrics.result import MetricResult

SPACES, SAMPLINGS = ("z", "w"), ("full", "end")
STREAM_Z0, STREAM_Z1, STREAM_T = 10, 11, 12


def pair_distances(G, dist_fn, combos: list[tuple[str, str]], *, seed: int, first: int, n: int, epsilon: float,
                   crop: bool, downsample: str, device: torch.device) -> list[torch.Tensor]:
    """Distances / epsilon^2, float64 [n] each on `device`, of pairs first..first+n-1 for each (space, sampling) in
    `combos`. Pair i draws z0, z1, t and one noise seed from (seed, i) only; both endpoints share the noise."""
    with torch.inference_mode():
        z0 = latents(seed, first, n, G.z_dim, stream=STREAM_Z0).to(device)
        z1 = latents(seed, first, n, G.z_dim, stream=STREAM_Z1).to(device)
        t_full = _table_rows(seed, STREAM_T, first, n, lambda g: torch.rand(256, 1, generator=g)).to(device)
        seeds = noise_seeds(seed, first, n)
        w01 = map_latents(G, torch.cat([z0, z1])) if any(sp == "w" for sp, _ in combos) else None  # [2n, num_ws, w_dim]
        out = []
        for sp, sm in combos:
            t = t_full if sm == "full" else torch.zeros_like(t_full)
            if sp == "z":
                ws = map_latents(G, torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)]))
            else:
                w0, w1 = w01[:n], w01[n:]
                tt = t.view(n, 1, 1)
                ws = torch.cat([lerp(w0, w1, tt), lerp(w0, w1, tt + epsilon)])
            images = synthesize(G, ws, torch.cat([seeds, seeds])).float()  # both endpoints, one call
            if crop:
                images = crop_face(images)
            images = box_downsample(images, downsample_factor(images.shape[2], G.img_resolution, downsample))
            out.append(dist_fn(images[:n], images[n:]).double() / epsilon ** 2)  # stays on the device
    return out


class DistancesPart(RowsPart):
    """A chunk's distances, copied from the device once; NaN or Inf is refused before the chunk is kept."""

    def arrays(self) -> Payload:
        arrays = super().arrays()
        if not all(np.isfinite(a).all() for a in arrays.values()):
            raise InputError("the similarity network produced NaN or Inf distances")
        return arrays


class PathLength(Metric):
    """Trimmed mean of LPIPS(G(path(t)), G(path(t + epsilon))) / epsilon^2 over `num` pairs, per space/sampling."""

    source = "own"  # pairs drawn by index, not the shared generated images

    def __init__(
        self,
        name: str,                        # metric name
        keys: dict[tuple[str, str], str],  # (space, sampling) -> result name, e.g. {('w', 'end'): 'ppl_wend'}
        *,
        num: int,                         # pairs
        epsilon: float = 1e-4,            # step along the path
        crop: bool = True,                # the face crop: rows [3H/8, 7H/8), columns [H/4, 3H/4)
        downsample: str = "stylegan1",    # above 256 px: 'stylegan1' (crop // 256) or 'ada' (resolution // 256)
    ):
        if downsample not in DOWNSAMPLE_RULES:
            raise InputError(f"downsample must be one of {', '.join(DOWNSAMPLE_RULES)}, not {downsample!r}")
        if not (isinstance(epsilon, (int, float)) and epsilon > 0 and np.isfinite(epsilon)):
            raise InputError(f"epsilon must be a positive number, not {epsilon!r}")
        num = check_count(num)
        self.name, self.num, self.epsilon, self.crop, self.downsample = name, num, epsilon, crop, downsample
        self.combos, self.keys = list(keys), list(keys.values())

    @property
    def folder(self) -> str:
        return self.name

    def prepare(self, ctx: Context) -> None:
        self.G, self.seed, self.device = ctx.G, ctx.seed, ctx.device
        self.dist_fn = ctx.similarity_network()
        self.batch_size = ctx.batch_size

    def batches(self, ctx: Context):
        return index_batches(ctx.batch_size)

    def state_key(self) -> dict:
        return {"metric": "ppl", "combos": self.keys, "epsilon": self.epsilon, "crop": self.crop,
                "similarity": self.dist_fn.fingerprint, "downsample": self.downsample}

    def shapes(self, count: int) -> dict[str, tuple]:
        return {k: (count,) for k in self.keys}

    def new_part(self) -> RowsPart:
        return DistancesPart(self.distances)

    def distances(self, view) -> Payload:
        """Every pair of the view: distance / epsilon^2 per result key, [view.count] each."""
        distances = pair_distances(self.G, self.dist_fn, self.combos, seed=self.seed, first=view.start, n=view.count,
                                   epsilon=self.epsilon, crop=self.crop, downsample=self.downsample,
                                   device=self.device)
        return dict(zip(self.keys, distances))

    def finish(self, chunks: dict[int, Payload]):
        chunks = ranks.all_gather_chunks(chunks)
        distances = {k: np.concatenate([chunks[c][k] for c in sorted(chunks)]) for k in self.keys}
        results = {k: trimmed_mean(distances[k]) for k in self.keys}
        details = pd.concat([pd.DataFrame({"space": sp, "sampling": sm, "index": np.arange(self.num),
                                           "distance": distances[k]})
                             for (sp, sm), k in zip(self.combos, self.keys)], ignore_index=True)
        return results, details

    def params(self) -> dict:
        spaces = sorted({sp for sp, _ in self.combos}, key=SPACES.index)
        samplings = sorted({sm for _, sm in self.combos}, key=SAMPLINGS.index)
        return dict(space=spaces[0] if len(spaces) == 1 else "both",
                    sampling=samplings[0] if len(samplings) == 1 else "both", num_samples=self.num,
                    epsilon=self.epsilon, crop=self.crop, similarity=self.dist_fn.name,
                    similarity_fingerprint=self.dist_fn.fingerprint, downsample=self.downsample)


def _make(name: str, groups: dict, **options) -> PathLength:
    """NVIDIA's stylegan2-ada rules: 50k pairs, epsilon 1e-4, crop (ppl2_wend: none), the 'ada' downsampling."""
    if groups.get("v2"):
        return PathLength(name, {("w", "end"): name}, num=50_000, crop=False, downsample="ada")
    num = parse_count(groups["count"]) if groups["count"] else 50_000
    name = f"ppl{count_name(num) if groups['count'] else ''}_{groups['space']}{groups['sampling']}"
    return PathLength(name, {(groups["space"], groups["sampling"]): name}, num=num, crop=True, downsample="ada")


FAMILY = MetricFamily(
    "ppl", r"(?P<v2>ppl2_wend)|ppl{count}?_(?P<space>[zw])(?P<sampling>full|end)", _make,
    examples=("ppl_zfull", "ppl_wfull", "ppl_zend", "ppl_wend", "ppl2_wend"),
    description="perceptual path length in Z or W, whole paths or endpoints (LPIPS / epsilon^2, trimmed mean)")


def _choices(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    if value == "both":
        return list(allowed)
    if value not in allowed:
        raise InputError(f"{what} must be one of {', '.join(allowed)} or both, not {value!r}")
    return [value]


def path_length_metric(*, space: str, sampling: str, num_samples: int, epsilon: float = 1e-4, crop: bool = True,
                       downsample: str = "stylegan1") -> PathLength:
    """The metric `ppl()` runs: results `ppl_{space}{sampling}` for each space and sampling asked for ('both')."""
    combos = [(sp, sm) for sp in _choices(space, SPACES, "space") for sm in _choices(sampling, SAMPLINGS, "sampling")]
    num_samples = check_count(num_samples)
    keys = {(sp, sm): f"ppl_{sp}{sm}" for sp, sm in combos}
    return PathLength(next(iter(keys.values())) if len(keys) == 1 else "ppl", keys, num=num_samples,
                      epsilon=epsilon, crop=crop, downsample=downsample)


def ppl(
    G,
    *,
    space: str = "w",                     # 'z', 'w' or 'both'
    sampling: str = "end",                # 'full' (t ~ U[0, 1)), 'end' (t = 0) or 'both'
    num_samples: int = 100_000,
    epsilon: float = 1e-4,
    crop: bool = True,
    batch_size: int = 16,
    seed: int = 0,
    similarity: str | Callable = "lpips-vgg16",
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    downsample: str = "stylegan1",        # 'stylegan1' (crop // 256) or 'ada' (resolution // 256)
    state_dir: str | os.PathLike | None = None,  # save finished chunks here; a rerun resumes from them
    chunk_size: int = DEFAULT_CHUNK,      # pairs per chunk: the unit of sharding and of checkpointing
    distributed: bool = True,             # False: no sharding even in a torch.distributed group
) -> MetricResult:
    """Perceptual path length with the StyleGAN1 paper's defaults. Result keys `ppl_{space}{sampling}`; `details`
    holds every distance. Every space/sampling shares the pairs, t and noise; results do not depend on the batch
    size, the number of processes (torchrun) or a resume."""
    metric = path_length_metric(space=space, sampling=sampling, num_samples=num_samples, epsilon=epsilon, crop=crop,
                                downsample=downsample)
    return run_metrics(G, [metric], similarity=similarity, weights=weights, batch_size=batch_size, seed=seed,
                       device=device, progress=progress, state_dir=state_dir, chunk_size=chunk_size,
                       distributed=distributed)[0]
