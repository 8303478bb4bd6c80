"""Perceptual path length: per-index pairs interpolated in Z (slerp) or W (lerp), a step of epsilon, the face crop,
LPIPS / epsilon^2, the trimmed mean (formulas.paths)."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pandas as pd
import torch

from stylegan_core.errors import InputError

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.metric import Metric, MetricFamily, check_count, count_name, parse_count
from stylegan_metrics.engine.passes import RowsPart, index_batches
from stylegan_metrics.engine.options import EvaluationOptions
from stylegan_metrics.engine.runner import run_metrics
from stylegan_metrics.engine.sampling import (BLOCK, STREAMS, latents, map_latents, noise_seeds, synthesize,
                                              table_rows)
from stylegan_metrics.engine.state import DEFAULT_CHUNK, Payload
from stylegan_metrics.formulas.paths import (DOWNSAMPLE_RULES, box_downsample, crop_face, downsample_factor,
                                             downsample_rules_agree, lerp,
                                             slerp, trimmed_mean)
from stylegan_metrics.result import MetricResult

SPACES, SAMPLINGS = ("z", "w"), ("full", "end")
# The smallest step: t + epsilon (t in [0, 1)) is a float32, rounded by up to 2^-25 where t >= 0.5, and the
# interpolated latents are rounded to 2^-24 of their size; a step of at least 100 * 2^-24 (about 6e-6) keeps both
# roundings within 1% of it. Below that the step is noise, and under about 3e-8 it vanishes (PPL 0).
MIN_EPSILON = 100 * 2.0 ** -24


def check_epsilon(epsilon) -> float:
    """A PPL step: a finite number >= MIN_EPSILON, else an InputError with the reason."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) \
            or not (np.isfinite(epsilon) and epsilon > 0):
        raise InputError(f"epsilon must be a positive number, not {epsilon!r}")
    if epsilon < MIN_EPSILON:
        raise InputError(f"epsilon {epsilon!r} is below float32 resolution: t + epsilon and the interpolated latents "
                         f"are float32, rounded by up to 2^-24 of their size, so the step must be at least "
                         f"{MIN_EPSILON:.2g} (100 x 2^-24) to be measured within 1%; NVIDIA's is 1e-4")
    return float(epsilon)


def pair_distances(G, dist_fn, combos: list[tuple[str, str]], *, seed: int, first: int, n: int, epsilon: float,
                   crop: bool, downsample: str, device: torch.device,
                   labels: Callable[[int, int], torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Distances / epsilon^2, float64 [n] each on `device`, of pairs first..first+n-1 for each (space, sampling) in
    `combos`. Pair i draws z0, z1, t and one noise seed from (seed, i) only; both endpoints share the noise, and for
    a conditional G the label `labels(first, n)` gives sample index i (engine.labels, as every metric's sample i)."""
    with torch.inference_mode():
        z0 = latents(seed, first, n, G.z_dim, stream=STREAMS["ppl_z0"]).to(device)
        z1 = latents(seed, first, n, G.z_dim, stream=STREAMS["ppl_z1"]).to(device)
        t_full = table_rows(seed, STREAMS["ppl_t"], first, n,
                            lambda g: torch.rand(BLOCK, 1, generator=g)).to(device)  # [n, 1]
        seeds = noise_seeds(seed, first, n)
        c = labels(first, n).to(device).repeat(2, 1) if labels is not None else None  # [2n, c_dim]: both endpoints
        w01 = map_latents(G, torch.cat([z0, z1]), c=c) if any(sp == "w" for sp, _ in combos) else None  # [2n, num_ws, w_dim]
        out = []
        for sp, sm in combos:
            t = t_full if sm == "full" else torch.zeros_like(t_full)
            if sp == "z":
                ws = map_latents(G, torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)]), c=c)
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

    samples = "own"  # pairs drawn by index, not the shared generated images

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
        epsilon = check_epsilon(epsilon)
        num = check_count(num)
        self.name, self.num, self.epsilon, self.crop, self.downsample = name, num, epsilon, crop, downsample
        self.combos, self.keys = list(keys), list(keys.values())

    def prepare(self, ctx: Context) -> None:
        self.G, self.seed, self.device = ctx.G, ctx.options.seed, ctx.device
        if self.crop and self.downsample == "stylegan1" and downsample_rules_agree(ctx.G.img_resolution):
            self._same_as_nvidias_downsampling()
        self.labels, self.label_key = ctx.conditioning()  # before any network loads
        self.dist_fn = ctx.similarity_network()

    def _same_as_nvidias_downsampling(self) -> None:
        """Below 512 px neither rule downsamples the crop: one computation, named without '_sg1down'."""
        self.downsample = "ada"
        self.name = self.name.replace("_sg1down", "")
        self.keys = [k.replace("_sg1down", "") for k in self.keys]

    def batches(self, ctx: Context):
        return index_batches(ctx.options.batch_size)

    def state_key(self) -> dict:
        return {"metric": "ppl", "combos": self.keys, "epsilon": self.epsilon, "crop": self.crop,
                "similarity": self.dist_fn.fingerprint, "downsample": self.downsample, **self.label_key}

    def shapes(self, count: int) -> dict[str, tuple]:
        return {k: (count,) for k in self.keys}

    def new_part(self) -> RowsPart:
        return DistancesPart(self.distances)

    def distances(self, view) -> Payload:
        """Every pair of the view: distance / epsilon^2 per result key, [view.count] each."""
        distances = pair_distances(self.G, self.dist_fn, self.combos, seed=self.seed, first=view.start, n=view.count,
                                   epsilon=self.epsilon, crop=self.crop, downsample=self.downsample,
                                   device=self.device, labels=self.labels)
        return dict(zip(self.keys, distances))

    def finish(self, chunks: dict[int, Payload]):
        distances = {k: np.concatenate([payload[k] for payload in chunks.values()]) for k in self.keys}
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
                    similarity_fingerprint=self.dist_fn.fingerprint, downsample=self.downsample, **self.label_key)


NVIDIA_PAIRS, NVIDIA_EPSILON = 50_000, 1e-4


def _parts(num: int, epsilon: float, crop: bool, downsample: str) -> tuple[str, str]:
    """(count, suffix) of a PPL name: no count for NVIDIA's 50,000 pairs; '_nocrop', '_sg1down' (StyleGAN1's
    downsampling rule) and '_eps<epsilon>' for each option that differs from NVIDIA's definition."""
    check_epsilon(epsilon)
    if downsample not in DOWNSAMPLE_RULES:
        raise InputError(f"downsample must be one of {', '.join(DOWNSAMPLE_RULES)}, not {downsample!r}")
    count = "" if check_count(num) == NVIDIA_PAIRS else count_name(num)
    suffix = ("" if crop else "_nocrop") + ("_sg1down" if crop and downsample == "stylegan1" else "") \
        + ("" if float(epsilon) == NVIDIA_EPSILON else f"_eps{float(epsilon)!r}")
    return count, suffix


def ppl_name(space: str, sampling: str, *, num: int = NVIDIA_PAIRS, epsilon: float = NVIDIA_EPSILON,
             crop: bool = True, downsample: str = "ada") -> str:
    """The one name of a PPL computation: NVIDIA's 'ppl_wend' (50,000 pairs, epsilon 1e-4, face crop, crops
    downsampled by resolution // 256) and 'ppl2_wend' (the same uncropped); any other count takes the count pattern
    (ppl500_wend) and any other option a suffix (_nocrop, _sg1down, _eps1e-05). Without the crop both downsampling
    rules are the same computation, named without '_sg1down'."""
    if space not in SPACES or sampling not in SAMPLINGS:
        raise InputError(f"space must be z or w and sampling full or end, not {space!r}, {sampling!r}")
    count, suffix = _parts(num, epsilon, crop, downsample)
    if (space, sampling, count, suffix) == ("w", "end", "", "_nocrop"):
        return "ppl2_wend"
    name = f"ppl{count}_{space}{sampling}{suffix}"
    if name == "ppl2_wend":
        raise InputError("2 cropped pairs would be named ppl2_wend, NVIDIA's uncropped 50,000-pair metric: "
                         "measure at least 3 pairs")
    return name


def _make(name: str, groups: dict, **_) -> PathLength:
    """A name's PPL (ppl_name's inverse): NVIDIA's 'ada' downsampling unless '_sg1down', the crop unless '_nocrop'
    (ppl2_wend: W, endpoints, 50,000 pairs, no crop), epsilon 1e-4 unless '_eps<value>'."""
    if groups.get("v2"):
        space, sampling, num, crop, downsample, epsilon = "w", "end", NVIDIA_PAIRS, False, "ada", NVIDIA_EPSILON
    else:
        space, sampling = groups["space"], groups["sampling"]
        num = parse_count(groups["count"]) if groups["count"] else NVIDIA_PAIRS
        crop, downsample = not groups["nocrop"], "stylegan1" if groups["sg1"] else "ada"
        if groups["sg1"] and not crop:
            raise InputError(f"{name}: without the crop both downsampling rules agree; drop '_sg1down'")
        try:
            epsilon = float(groups["eps"]) if groups["eps"] else NVIDIA_EPSILON
        except ValueError:
            raise InputError(f"{name}: {groups['eps']!r} is not a number (write e.g. ppl_wend_eps0.001)") from None
    canonical = ppl_name(space, sampling, num=num, epsilon=epsilon, crop=crop, downsample=downsample)
    return PathLength(canonical, {(space, sampling): canonical}, num=num, epsilon=epsilon, crop=crop,
                      downsample=downsample)


FAMILY = MetricFamily(
    "ppl", r"(?P<v2>ppl2_wend)|ppl{count}?_(?P<space>[zw])(?P<sampling>full|end)(?P<nocrop>_nocrop)?"
           r"(?P<sg1>_sg1down)?(?:_eps(?P<eps>[0-9][0-9.e+-]*))?", _make,
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
    """The metric `ppl()` and `stylegan-metrics ppl` run, built from registry names (`ppl_name`), so that each
    result key is what `evaluate` names the same computation: e.g. 'ppl100k_wend_sg1down' for the defaults
    ('ppl100k_wend' once `prepare` sees a generator below 512 px, where both downsampling rules agree).
    Several spaces or samplings ('both') share one pass; the metric is then named without the space and
    sampling ('ppl100k_sg1down')."""
    from stylegan_metrics.metrics import build_metric  # the registry

    combos = [(sp, sm) for sp in _choices(space, SPACES, "space") for sm in _choices(sampling, SAMPLINGS, "sampling")]
    built = [build_metric(ppl_name(sp, sm, num=num_samples, epsilon=epsilon, crop=crop, downsample=downsample))
             for sp, sm in combos]
    if len(built) == 1:
        return built[0]
    first = built[0]
    count, suffix = _parts(first.num, first.epsilon, first.crop, first.downsample)
    return PathLength(f"ppl{count}{suffix}", {c: m.name for c, m in zip(combos, built)}, num=first.num,
                      epsilon=first.epsilon, crop=first.crop, downsample=first.downsample)


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
    data: str | os.PathLike | None = None,  # a conditional G: labels drawn from this dataset's dataset.json
    class_index: int | None = None,       # a conditional G: this class for every pair (instead of `data`)
) -> MetricResult:
    """Perceptual path length with the StyleGAN1 paper's defaults (100,000 pairs, StyleGAN1's downsampling).
    Result keys are the registry's names of the computation (`ppl_name`): 'ppl100k_wend_sg1down' by default
    ('ppl100k_wend' below 512 px, where both downsampling rules agree),
    NVIDIA's 'ppl_wend' only for its definition (num_samples=50_000, downsample='ada'). `details` holds every
    distance. Every space/sampling shares the pairs, t and noise; results do not depend on the batch size, the
    number of processes (torchrun) or a resume. A conditional G gives pair i the label of sample i, as every metric
    does: from `data`'s labels or `class_index`."""
    metric = path_length_metric(space=space, sampling=sampling, num_samples=num_samples, epsilon=epsilon, crop=crop,
                                downsample=downsample)
    options = EvaluationOptions(similarity=similarity, weights=weights, batch_size=batch_size, seed=seed,
                                device=device, progress=progress, state_dir=state_dir, chunk_size=chunk_size,
                                distributed=distributed, data=data, class_index=class_index)
    return run_metrics(G, [metric], options)[0]
