"""NVIDIA StyleGAN2 parameter names -> our arch='stylegan2' Generator: the mapping table and its conversions.

Input is an *effective* NVIDIA state dict: the keys of NVIDIA's `G_ema.state_dict()`, where each
FullyConnectedLayer (mapping.fc*, *.affine) already holds weight * weight_gain and bias * bias_gain, so
it computes x @ weight.T + bias whatever its lr multiplier. The NVIDIA pickle loader and the
rosinality loader both produce this form, so this table is the one place where names are mapped.

The mapping rows (MAPPING_TABLE, with the label embedding of conditional generators) are shared with
StyleGAN3 generators (`nvidia_stylegan3`), whose mapping network is the same; `load_converted` does the
conversion, the completeness check and the strict load for both.

Conversions: 'copy' (same values, reshaped: b4.const [C,4,4] -> [1,C,4,4], noise_const [r,r] -> [1,1,r,r]);
'affine' (our EqualizedLinear applies its runtime gains: stored = effective / gain); 'dense' (NVIDIA's
mapping layers apply the sqrt(2) activation gain after the bias, ours folds it into weight and bias:
stored = sqrt(2) * effective / gain, the same function since lrelu(a x) = a lrelu(x) for a > 0).
`*.resample_filter` buffers are only checked to be the [1,3,3,1] filter, which ours builds in.
"""

from __future__ import annotations

import math

import torch

from stylegan_core.errors import CheckpointError
from stylegan_core.limits import build_within
from stylegan_core.networks.fir import setup_filter
from stylegan_core.networks.generator import Generator
from stylegan_core.networks.layers import LRELU_GAIN
from stylegan_core.networks.synthesis import channels_at, check_img_resolution

# {i}: mapping layer; the embed rows only for conditional generators (c_dim > 0).
MAPPING_TABLE = (
    # NVIDIA G_ema key                        our Generator key                                   conversion
    ("mapping.fc{i}.weight",                  "mapping.layers.{i}.weight",                        "dense"),
    ("mapping.fc{i}.bias",                    "mapping.layers.{i}.bias",                          "dense"),
    ("mapping.w_avg",                         "mapping.w_avg",                                    "copy"),
    ("mapping.embed.weight",                  "mapping.embed.weight",                             "affine"),
    ("mapping.embed.bias",                    "mapping.embed.bias",                               "affine"),
)
# {r}: block resolution 4, 8, ..., R; {b}: its block index log2(r) - 2; {j}: conv 0 (up) or 1.
TABLE = MAPPING_TABLE + (
    ("synthesis.b4.const",                    "synthesis.const",                                  "copy"),
    ("synthesis.b{r}.conv{j}.weight",         "synthesis.blocks.{b}.conv{j}.conv.weight",         "copy"),
    ("synthesis.b{r}.conv{j}.affine.weight",  "synthesis.blocks.{b}.conv{j}.conv.affine.weight",  "affine"),
    ("synthesis.b{r}.conv{j}.affine.bias",    "synthesis.blocks.{b}.conv{j}.conv.affine.bias",    "affine"),
    ("synthesis.b{r}.conv{j}.noise_strength", "synthesis.blocks.{b}.conv{j}.noise.strength",      "copy"),
    ("synthesis.b{r}.conv{j}.noise_const",    "synthesis.blocks.{b}.conv{j}.noise.noise_const",   "copy"),
    ("synthesis.b{r}.conv{j}.bias",           "synthesis.blocks.{b}.conv{j}.bias",                "copy"),
    ("synthesis.b{r}.torgb.weight",           "synthesis.blocks.{b}.to_rgb.conv.weight",          "copy"),
    ("synthesis.b{r}.torgb.affine.weight",    "synthesis.blocks.{b}.to_rgb.conv.affine.weight",   "affine"),
    ("synthesis.b{r}.torgb.affine.bias",      "synthesis.blocks.{b}.to_rgb.conv.affine.bias",     "affine"),
    ("synthesis.b{r}.torgb.bias",             "synthesis.blocks.{b}.to_rgb.bias",                 "copy"),
)
FILTER_SUFFIX = "resample_filter"


def infer_channel_layout(channels: dict[int, int], hint: object, where: str) -> tuple[int, int]:
    """(channel_base, channel_max) with min(channel_base // r, channel_max) == channels[r] at every resolution."""
    cmax = max(channels.values())
    candidates = [hint, 32768, 16384] + [c * r for r, c in sorted(channels.items())]
    for base in candidates:
        if isinstance(base, int) and base > 0 and all(channels_at(r, base, cmax) == c for r, c in channels.items()):
            return base, cmax
    layout = ", ".join(f"{r}px: {c}" for r, c in sorted(channels.items()))
    raise CheckpointError(f"{where}: channel counts ({layout}) do not follow min(channel_base // r, channel_max)")


def _expand(template: str, mapping_layers: int, resolutions: list[int], c_dim: int) -> list[dict]:
    if ".embed." in template and c_dim == 0:
        return []
    if "{i}" in template:
        return [dict(i=i) for i in range(mapping_layers)]
    if "{r}" in template:
        convs = (0, 1) if "{j}" in template else (None,)
        return [dict(r=r, b=b, j=j) for b, r in enumerate(resolutions) for j in convs if not (r == 4 and j == 0)]
    return [{}]


def mapping_pairs(mapping_layers: int, c_dim: int) -> list[tuple[str, str, str]]:
    """(NVIDIA key, our key, conversion) for every mapping-network entry."""
    return [(src.format(**f), dst.format(**f), kind) for src, dst, kind in MAPPING_TABLE
            for f in _expand(src, mapping_layers, [], c_dim)]


def _convert(kind: str, value: torch.Tensor, key: str, G: Generator, target: torch.Tensor, where: str) -> torch.Tensor:
    value = value.detach().float()
    if kind in ("dense", "affine"):
        layer = G.get_submodule(key.rsplit(".", 1)[0])
        gain = layer.weight_gain if key.endswith("weight") else layer.bias_gain
        value = value * ((LRELU_GAIN if kind == "dense" else 1.0) / gain)
    if value.numel() != target.numel() or (value.ndim == target.ndim and value.shape != target.shape):
        raise CheckpointError(f"{where}: {key} has shape {list(value.shape)}, expected {list(target.shape)}")
    return value.reshape(target.shape).to(target.dtype)


def generator_from_nvidia_state(
    state: dict[str, torch.Tensor],    # effective NVIDIA state dict (see the module docstring)
    *,
    where: str,                        # Names the source in error messages.
    z_dim: int,
    w_dim: int,
    img_resolution: int,
    img_channels: int,
    mapping_layers: int,
    conv_clamp: float | None,
    channel_hint: object = None,       # The source's channel_base, if it says; otherwise inferred from shapes.
    c_dim: int = 0,                    # Conditioning label width (the state then has mapping.embed.*).
) -> Generator:
    """Build `Generator(arch='stylegan2')` with the same hyper-parameters and copy every weight and buffer."""
    try:
        check_img_resolution(img_resolution)
    except ValueError as e:
        raise CheckpointError(f"{where}: {e}") from None
    resolutions = [2 ** k for k in range(2, int(math.log2(img_resolution)) + 1)]
    channels = {}
    for r in resolutions:
        key = f"synthesis.b{r}.conv1.weight"
        if key not in state:
            raise CheckpointError(f"{where}: missing {key}; not a StyleGAN2 generator of {img_resolution}px")
        channels[r] = int(state[key].shape[0])
    base, cmax = infer_channel_layout(channels, channel_hint, where)
    try:
        G = build_within(lambda: Generator(z_dim=z_dim, w_dim=w_dim, img_resolution=img_resolution,
                                           img_channels=img_channels, mapping_layers=mapping_layers, channel_base=base,
                                           channel_max=cmax, arch="stylegan2", conv_clamp=conv_clamp, c_dim=c_dim),
                         state)  # sizes checked on the meta device first
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: unsupported hyper-parameters ({e})") from None
    pairs = [(src.format(**f), dst.format(**f), kind) for src, dst, kind in TABLE
             for f in _expand(src, mapping_layers, resolutions, c_dim)]
    for key in (k for k in state if k.endswith(FILTER_SUFFIX)):
        f = state[key].detach().float()
        if f.shape != (4, 4) or not torch.allclose(f / f.sum(), setup_filter(), atol=1e-6):
            raise CheckpointError(f"{where}: {key} is not the [1,3,3,1] resampling filter")
    load_converted(G, pairs, {k: v for k, v in state.items() if not k.endswith(FILTER_SUFFIX)}, where,
                   "not a StyleGAN2 skip generator")
    return G


def load_converted(G: torch.nn.Module, pairs: list[tuple[str, str, str]], state: dict[str, torch.Tensor], where: str,
                   what: str) -> None:
    """Convert state[src] into G's dst for every (src, dst, kind); every key of `state` must be used (else: `what`)."""
    ours = G.state_dict()
    converted = {}
    for src, dst, kind in pairs:
        if src not in state:
            raise CheckpointError(f"{where}: missing parameter {src}")
        converted[dst] = _convert(kind, state[src], dst, G, ours[dst], where)
    used = {src for src, _, _ in pairs}
    extra = sorted(k for k in state if k not in used)
    if extra:
        raise CheckpointError(f"{where}: unexpected parameters ({', '.join(extra[:3])}); {what}")
    try:
        G.load_state_dict(converted, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{where}: weights do not fit ({' '.join(str(e).split())[:300]})") from None
