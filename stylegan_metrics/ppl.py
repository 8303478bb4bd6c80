"""Perceptual path length (StyleGAN1 rules): slerp in Z / lerp in W, crop, LPIPS / epsilon^2, trimmed mean."""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np
import pandas as pd
import torch

from stylegan_core import distributed as group
from stylegan_core.errors import InputError

from .features import build_similarity, module_fingerprint
from .result import MetricResult
from .run_state import DEFAULT_CHUNK, RunState, run_chunks
from .sampling import _table_rows, check_generator, latents, map_latents, noise_seeds, metric_device, synthesize

SPACES, SAMPLINGS, DOWNSAMPLES = ("z", "w"), ("full", "end"), ("stylegan1", "ada")
STREAM_Z0, STREAM_Z1, STREAM_T = 10, 11, 12


def normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the normalized a, b [N, D] at t [N, 1]; the result has unit norm."""
    a, b = normalize(a), normalize(b)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = normalize(b - d * a)
    return normalize(a * torch.cos(p) + c * torch.sin(p))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def crop_face(images: torch.Tensor) -> torch.Tensor:
    """Rows [3H/8, 7H/8), columns [H/4, 3H/4): the face region of FFHQ-aligned images."""
    c = images.shape[2] // 8
    return images[:, :, c * 3:c * 7, c * 2:c * 6]


def box_downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over factor x factor boxes."""
    if factor <= 1:
        return images
    n, ch, h, w = images.shape
    return images.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


def downsample_factor(cropped_size: int, resolution: int, rule: str) -> int:
    """StyleGAN1: cropped_H // 256 when the crop exceeds 256; 'ada': img_resolution // 256."""
    if rule == "stylegan1":
        return cropped_size // 256 if cropped_size > 256 else 1
    return max(resolution // 256, 1)


def trimmed_mean(distances: np.ndarray) -> float:
    """Mean of the distances between the 1st (lower) and 99th (higher) percentiles, inclusive."""
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    return float(distances[(distances >= lo) & (distances <= hi)].mean())


def _choices(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    if value == "both":
        return list(allowed)
    if value not in allowed:
        raise InputError(f"{what} must be one of {', '.join(allowed)} or both, not {value!r}")
    return [value]


def _pair_distances(G, dist_fn, combos: list[tuple[str, str]], *, seed: int, first: int, n: int, epsilon: float,
                    crop: bool, downsample: str, dev: torch.device) -> list[np.ndarray]:
    """Distances / epsilon^2, [n] each, of pairs first..first+n-1 for each (space, sampling) in `combos`."""
    with torch.inference_mode():
        z0 = latents(seed, first, n, G.z_dim, stream=STREAM_Z0).to(dev)
        z1 = latents(seed, first, n, G.z_dim, stream=STREAM_Z1).to(dev)
        t_full = _table_rows(seed, STREAM_T, first, n, lambda g: torch.rand(256, 1, generator=g)).to(dev)
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
            d = dist_fn(images[:n], images[n:]).double() / epsilon ** 2
            if not torch.isfinite(d).all():
                raise InputError("the similarity network produced NaN or Inf distances")
            out.append(d.cpu().numpy())
    return out


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
    """Perceptual path length. Result keys `ppl_{space}{sampling}`; `details` holds every distance.

    Pair i draws z0, z1, t and one noise seed from (seed, i) only, so every space/sampling shares
    them, and results do not depend on the batch size, the number of processes (torchrun) or a resume."""
    spaces, samplings = _choices(space, SPACES, "space"), _choices(sampling, SAMPLINGS, "sampling")
    if downsample not in DOWNSAMPLES:
        raise InputError(f"downsample must be one of {', '.join(DOWNSAMPLES)}, not {downsample!r}")
    if num_samples < 1 or batch_size < 1 or not epsilon > 0:
        raise InputError("num_samples and batch_size must be >= 1 and epsilon > 0")
    check_generator(G)
    start_time = time.time()
    with group.alone(not distributed):
        dev = metric_device(device)
        G = G.to(dev).eval() if isinstance(G, torch.nn.Module) else G
        dist_fn = build_similarity(similarity, weights=weights, device=dev)
        combos = [(s, m) for s in spaces for m in samplings]
        keys = [f"ppl_{sp}{sm}" for sp, sm in combos]

        def compute(start: int, count: int, advance) -> dict[str, np.ndarray]:
            out = {k: np.empty(count, np.float64) for k in keys}
            for first in range(start, start + count, batch_size):
                n = min(batch_size, start + count - first)
                distances = _pair_distances(G, dist_fn, combos, seed=seed, first=first, n=n, epsilon=epsilon, crop=crop,
                                            downsample=downsample, dev=dev)
                for key, d in zip(keys, distances):
                    out[key][first - start:first - start + n] = d
                advance(n)
            return out

        state = None
        if state_dir:
            state = RunState(state_dir, {
                "run": "ppl", "generator": module_fingerprint(G), "combos": keys, "num_samples": num_samples,
                "epsilon": epsilon, "crop": crop, "seed": seed, "similarity": dist_fn.fingerprint,
                "downsample": downsample, "chunk_size": chunk_size})
        mine = dict(run_chunks(num_samples, compute, lambda count: {k: (count,) for k in keys}, state=state,
                               chunk_size=chunk_size, progress=progress, desc="ppl"))
        chunks = group.all_gather_chunks(mine)
        distances = {c: np.concatenate([chunks[i][f"ppl_{c[0]}{c[1]}"] for i in sorted(chunks)]) for c in combos}
        if state is not None:
            state.remove()

        results = {f"ppl_{sp}{sm}": trimmed_mean(distances[(sp, sm)]) for sp, sm in combos}
        details = pd.concat([pd.DataFrame({"space": sp, "sampling": sm, "index": np.arange(num_samples),
                                           "distance": distances[(sp, sm)]}) for sp, sm in combos], ignore_index=True)
        params = dict(space=space, sampling=sampling, num_samples=num_samples, epsilon=epsilon, crop=crop,
                      batch_size=batch_size, seed=seed, similarity=dist_fn.name, similarity_fingerprint=dist_fn.fingerprint,
                      downsample=downsample, device=str(dev), num_processes=group.world_size())
        metric = next(iter(results)) if len(results) == 1 else "ppl"
        return MetricResult(metric=metric, results=results, params=params, total_time=time.time() - start_time,
                            num_gpus=group.gpus_used(dev), details=details)
