"""Read rosinality/stylegan2-pytorch `.pt` checkpoints (`g_ema`, optional `latent_avg`) into arch='stylegan2'.

The file is read with `torch.load(weights_only=True)`; `argparse.Namespace` (their saved `args`) is
allowed through `torch.serialization.safe_globals` for that one call only. Their names are first
translated to NVIDIA's (the table below) and then mapped by `nvidia_mapping`, the one table to ours.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import torch

from stylegan_core.errors import CheckpointError
from stylegan_core.networks.generator import Generator
from stylegan_core.formats.nvidia_mapping import generator_from_nvidia_state
from stylegan_core.formats.safe_load import load_weights_only

LR_MLP = 0.01          # rosinality's mapping lr multiplier (lr_mlp; their train.py keeps the default)
W_AVG_SAMPLES = 4096   # without latent_avg, w_avg = mean of mapping(z) over this many seeded z (as their generate.py)

# rosinality g_ema layer -> NVIDIA layer; n: the index in their list (block resolution 2 ** (n // 2 + 3) for convs).
LAYERS = (
    (r"conv1",                lambda n: "synthesis.b4.conv1"),
    (r"convs\.(?P<n>\d+)",    lambda n: f"synthesis.b{2 ** (n // 2 + 3)}.conv{n % 2}"),
    (r"to_rgb1",              lambda n: "synthesis.b4.torgb"),
    (r"to_rgbs\.(?P<n>\d+)",  lambda n: f"synthesis.b{2 ** (n + 3)}.torgb"),
)
# their parameter within a layer -> NVIDIA's, and the conversion to NVIDIA's effective form
PARAMS = {
    "conv.weight":            ("weight",          "conv"),     # [1, out, in, k, k] -> [out, in, k, k], see _convert
    "conv.modulation.weight": ("affine.weight",   "affine"),   # EqualLinear (lr_mul 1): * 1 / sqrt(w_dim)
    "conv.modulation.bias":   ("affine.bias",     "copy"),
    "noise.weight":           ("noise_strength",  "scalar"),   # [1] -> []
    "activate.bias":          ("bias",            "copy"),     # FusedLeakyReLU bias
    "bias":                   ("bias",            "vector"),   # ToRGB bias [1, C, 1, 1] -> [C]
    "conv.blur.kernel":       ("resample_filter", "copy"),     # only checked: the [1,3,3,1] filter
    "upsample.kernel":        ("resample_filter", "copy"),
}
# Whole-network entries: style.{k} (k >= 1; style.0 is PixelNorm) -> mapping.fc{k-1} (EqualLinear,
# lr_mul 0.01: weight * 0.01 / sqrt(in), bias * 0.01); input.input [1, C, 4, 4] -> synthesis.b4.const;
# noises.noise_0 -> b4.conv1.noise_const, noises.noise_{n} -> b{2 ** ((n + 1) // 2 + 2)}.conv{(n + 1) % 2}.noise_const;
# latent_avg -> mapping.w_avg.


def _convert(kind: str, t: torch.Tensor, nvidia_key: str) -> torch.Tensor:
    if kind == "conv":
        t = t[0]
        if ".torgb." not in nvidia_key:  # demodulated: fold in their runtime 1/sqrt(fan_in), exact with the eps
            t = t / math.sqrt(t[0].numel())
    elif kind == "affine":
        t = t / math.sqrt(t.shape[1])
    elif kind == "scalar":
        t = t.reshape([])
    elif kind == "vector":
        t = t.reshape(-1)
    return t


def _layer_entry(key: str) -> tuple[str, str] | None:
    """(NVIDIA key, conversion) of a per-layer parameter, or None."""
    for pattern, prefix in LAYERS:
        m = re.fullmatch(pattern + r"\.(?P<param>.+)", key)
        if m and m["param"] in PARAMS:
            name, kind = PARAMS[m["param"]]
            return f"{prefix(int(m.groupdict().get('n') or 0))}.{name}", kind
    return None


def to_nvidia_state(g_ema: dict, where: str) -> dict[str, torch.Tensor]:
    """Their state dict -> NVIDIA's effective state dict (see nvidia_mapping)."""
    out = {}
    for key, t in g_ema.items():
        t = t.detach().float()
        if m := re.fullmatch(r"style\.(\d+)\.(weight|bias)", key):
            scale = LR_MLP / math.sqrt(t.shape[1]) if m.group(2) == "weight" else LR_MLP
            out[f"mapping.fc{int(m.group(1)) - 1}.{m.group(2)}"] = t * scale
        elif key == "input.input":
            out["synthesis.b4.const"] = t[0]
        elif m := re.fullmatch(r"noises\.noise_(\d+)", key):
            n = int(m.group(1))
            layer = "b4.conv1" if n == 0 else f"b{2 ** ((n + 1) // 2 + 2)}.conv{(n + 1) % 2}"
            out[f"synthesis.{layer}.noise_const"] = t[0, 0]
        elif (entry := _layer_entry(key)) is not None:
            out[entry[0]] = _convert(entry[1], t, entry[0])
        else:
            raise CheckpointError(f"{where}: unexpected parameter {key}; not a rosinality StyleGAN2 generator")
    return out


def load_rosinality_generator(path: str | Path) -> Generator:
    """The `g_ema` of a rosinality checkpoint as our arch='stylegan2' Generator."""
    path = Path(path)
    where = f"{path} (g_ema)"
    data = load_weights_only(path, allowed=[argparse.Namespace])  # their saved `args`
    g_ema = data.get("g_ema") if isinstance(data, dict) else None
    if not isinstance(g_ema, dict) or "style.1.weight" not in g_ema or "to_rgb1.conv.weight" not in g_ema:
        raise CheckpointError(f"{path}: no rosinality 'g_ema' generator state dict")
    state = to_nvidia_state(g_ema, where)
    latent_avg = data.get("latent_avg")
    style = g_ema["style.1.weight"]
    w_dim = int(style.shape[0])
    state["mapping.w_avg"] = (latent_avg.detach().float().reshape(-1) if isinstance(latent_avg, torch.Tensor)
                              else torch.zeros(w_dim))
    G = generator_from_nvidia_state(
        state, where=where, z_dim=int(style.shape[1]), w_dim=w_dim,
        img_resolution=4 * 2 ** sum(1 for k in g_ema if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)),
        img_channels=int(g_ema["to_rgb1.conv.weight"].shape[1]),
        mapping_layers=sum(1 for k in g_ema if re.fullmatch(r"style\.\d+\.weight", k)), conv_clamp=None,
    )
    if not isinstance(latent_avg, torch.Tensor):
        with torch.no_grad():
            z = torch.randn(W_AVG_SAMPLES, G.z_dim, generator=torch.Generator().manual_seed(0))
            G.mapping.w_avg.copy_(G.mapping(z, None)[:, 0].mean(dim=0))
    return G
