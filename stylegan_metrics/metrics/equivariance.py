"""Equivariance (StyleGAN3): PSNR between the image of a transformed input and the transformed image, for integer
and fractional translations (EQ-T) and rotations (EQ-R); this file drives the generator, formulas.equivariance
holds the arithmetic."""

from __future__ import annotations

import math

import numpy as np
import torch

from stylegan_core.errors import InputError

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.metric import Metric, MetricFamily, parse_count
from stylegan_metrics.engine.passes import RowsPart, index_batches
from stylegan_metrics.engine.sampling import BLOCK, STREAMS, latents, map_latents, table_rows
from stylegan_metrics.engine.state import Payload
from stylegan_metrics.formulas.equivariance import (
    KINDS, apply_fractional_pseudo_rotation, apply_fractional_rotation, apply_fractional_translation,
    apply_integer_translation, psnr_from_sums, rotation_matrix, translation_matrix,
)

GROUP = 4            # samples sharing one transform: NVIDIA's batch of 4 in metric_main


def input_transform(G, what: str = "equivariance") -> torch.Tensor:
    """G.synthesis.input.transform, the [3, 3] buffer through which StyleGAN3's input is transformed; an InputError
    naming `what` needs it where G has none."""
    transform = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None)
    if not isinstance(transform, torch.Tensor) or transform.shape != (3, 3):
        raise InputError(f"{what} needs a generator whose input can be transformed "
                         f"(G.synthesis.input.transform, [3, 3], as StyleGAN3's); this one has none")
    return transform


def group_uniforms(seed: int, group: int) -> torch.Tensor:
    """The two uniform numbers in [0, 1) of group `group` (samples GROUP * group ...), [2]: row `group` of the
    STREAMS['eq_transform'] table."""
    return table_rows(seed, STREAMS["eq_transform"], group, 1, lambda g: torch.rand(BLOCK, 2, generator=g))[0]


def transform_params(kind: str, u: torch.Tensor, img_resolution: int, *, translate_max: float = 0.125,
                     rotate_max: float = 1.0) -> torch.Tensor:
    """One group's transform from its uniform numbers u [2] in [0, 1) (eqr reads u[0] only), as NVIDIA scales its
    torch.rand draws: a shift in [-translate_max, translate_max]^2 (image widths; eqt_int rounded to whole pixels)
    or an angle in [-rotate_max, rotate_max] * pi."""
    if kind == "eqr":
        return (u[0] * 2 - 1) * (rotate_max * math.pi)
    t = (u * 2 - 1) * translate_max
    return (t * img_resolution).round() / img_resolution if kind == "eqt_int" else t


def random_transform_params(
    kind: str,                          # 'eqt_int', 'eqt_frac' or 'eqr'
    *,
    img_resolution: int,                # eqt_int rounds the shift to whole pixels of this image size
    translate_max: float = 0.125,       # Shifts uniform in [-max, max] (units of the image size) per axis.
    rotate_max: float = 1.0,            # Angles uniform in [-max, max] * pi.
    generator: torch.Generator | None = None,  # None: torch's global generator (NVIDIA's draws, in its order).
    device: torch.device | str | None = None,
) -> torch.Tensor:                      # [2] shift (tx, ty) or [] angle in radians
    """One transform per batch, drawn as NVIDIA's metric draws it (one torch.rand call per batch and kind: [] for
    eqr, [2] for a shift), scaled by `transform_params`."""
    if kind == "eqr":
        u = torch.rand([], generator=generator, device=device).reshape(1)
    elif kind in KINDS:
        u = torch.rand(2, generator=generator, device=device)
    else:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return transform_params(kind, u, img_resolution, translate_max=translate_max, rotate_max=rotate_max)


@torch.no_grad()
def equivariance_batch(
    G,                                  # generator whose synthesis has `input.transform` [3, 3] (StyleGAN3)
    ws: torch.Tensor,                   # [N, num_ws, w_dim]
    kind: str,                          # 'eqt_int', 'eqt_frac' or 'eqr'
    params: torch.Tensor,               # (random_)transform_params(kind, ...): [2] shift or [] angle
    **synthesis_kwargs,                 # passed to G.synthesis (always with noise_mode='const')
) -> tuple[torch.Tensor, torch.Tensor]:  # per sample: sum of masked squared errors [N], sum of the mask [N] (float64)
    """Draw ws untransformed and transformed, transform the first the same way, compare where both are valid.

    The transform buffer is restored afterwards. Summing both outputs over all samples and passing them to
    `psnr_from_sums` gives NVIDIA's EQ-T / EQ-T_frac / EQ-R for those samples.
    """
    transform = input_transform(G)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    saved = transform.clone()
    identity = torch.eye(3, device=transform.device, dtype=transform.dtype)
    try:
        transform.copy_(identity)
        orig = G.synthesis(ws, noise_mode="const", **synthesis_kwargs)  # [N, C, H, W]
        params = params.to(transform.device)
        if kind == "eqr":
            transform.copy_(rotation_matrix(-params))
            img = G.synthesis(ws, noise_mode="const", **synthesis_kwargs)
            ref, ref_mask = apply_fractional_rotation(orig, params)
            img, img_mask = apply_fractional_pseudo_rotation(img, params)
            mask = ref_mask * img_mask
        else:
            t = params
            if kind == "eqt_int":
                t = (t * G.img_resolution).round() / G.img_resolution
            transform.copy_(translation_matrix(t[0], t[1]).to(transform))
            img = G.synthesis(ws, noise_mode="const", **synthesis_kwargs)
            shift = apply_integer_translation if kind == "eqt_int" else apply_fractional_translation
            ref, mask = shift(orig, t[0], t[1])
    finally:
        transform.copy_(saved)
    sq_err = ((ref - img).square() * mask).to(torch.float64)
    return sq_err.sum(dim=(1, 2, 3)), mask.to(torch.float64).sum(dim=(1, 2, 3))


def errors(m: "Equivariance", view) -> Payload:
    """Masked squared error and mask sum per sample of the view, [view.count] float64 each."""
    G, rows = m.G, {"sum_sq_err": [], "mask_sum": []}
    for first in range(view.start, view.start + view.count):
        if first != view.start and first % GROUP:
            continue  # each group of 4 (or its part in this view) is drawn in one call
        last = min((first // GROUP + 1) * GROUP, view.start + view.count)
        u = group_uniforms(m.seed, first // GROUP)
        with torch.inference_mode():
            z = latents(m.seed, first, last - first, G.z_dim).to(m.device)
            ws = map_latents(G, z)  # [n, num_ws, w_dim]
            params = transform_params(m.kind, u, G.img_resolution).to(m.device)
            sse, mask = equivariance_batch(G, ws, m.kind, params)
        if not (torch.isfinite(sse).all() and torch.isfinite(mask).all()):
            raise InputError("the generator produced NaN or Inf images")
        rows["sum_sq_err"].append(sse.cpu().numpy())
        rows["mask_sum"].append(mask.cpu().numpy())
    return {k: np.concatenate(v) for k, v in rows.items()}


class Equivariance(Metric):
    """PSNR (dB) of G(transformed input) against transform(G(input)) over `num` samples; higher = more equivariant."""

    samples = "own"

    def __init__(
        self,
        name: str,        # result name
        kind: str,        # 'eqt_int', 'eqt_frac' or 'eqr'
        *,
        num: int,         # samples (NVIDIA: 50,000)
    ):
        self.name, self.kind, self.num = name, kind, num

    def prepare(self, ctx: Context) -> None:
        input_transform(ctx.G, self.name)
        if getattr(ctx.G, "c_dim", 0):
            raise InputError(f"{self.name}: conditional generators are not supported by the equivariance metrics")
        self.G, self.seed, self.device = ctx.G, ctx.options.seed, ctx.device

    def batches(self, ctx: Context):
        return index_batches(max(GROUP, ctx.options.batch_size // GROUP * GROUP))

    def state_key(self) -> dict:
        return {"metric": "equivariance", "kind": self.kind, "group": GROUP}

    def shapes(self, count: int) -> dict[str, tuple]:
        return {"sum_sq_err": (count,), "mask_sum": (count,)}

    def new_part(self) -> RowsPart:
        return RowsPart(lambda view: errors(self, view))

    def finish(self, chunks: dict[int, Payload]):
        sse = np.concatenate([payload["sum_sq_err"] for payload in chunks.values()]).sum()
        mask = np.concatenate([payload["mask_sum"] for payload in chunks.values()]).sum()
        return {self.name: psnr_from_sums(float(sse), float(mask))}, None

    def params(self) -> dict:
        return dict(num_samples=self.num, kind=self.kind, samples_per_transform=GROUP, translate_max=0.125,
                    rotate_max=1.0)


TRANSLATION = MetricFamily(
    "eqt", r"eqt{count}_(?P<variant>int|frac)",
    lambda name, groups, **_: Equivariance(name, f"eqt_{groups['variant']}", num=parse_count(groups["count"])),
    examples=("eqt50k_int", "eqt50k_frac"),
    description="equivariance PSNR (dB) to integer (int) or fractional (frac) translations of StyleGAN3's input")
ROTATION = MetricFamily(
    "eqr", r"eqr{count}", lambda name, groups, **_: Equivariance(name, "eqr", num=parse_count(groups["count"])),
    examples=("eqr50k",), description="equivariance PSNR (dB) to rotations of StyleGAN3's input")
