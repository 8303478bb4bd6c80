"""NVIDIA's StyleGAN1 / ProGAN TensorFlow networks -> ours: G_style (G_mapping + G_synthesis), D_basic, D_paper.

Weights are converted to the *function* they compute, not copied blindly: NVIDIA's `get_weight` scales
a stored weight at run time by he_std * lrmul (use_wscale) or lrmul, with he_std = gain / sqrt(fan_in)
(gain sqrt 2 for activated layers, 1 for StyleMod, ToRGB and the last dense). Our equalized-lr layers
scale by their own `weight_gain`, so stored = TF value * (TF factor / our factor); with NVIDIA's
defaults the ratio is exactly 1 and the values are copied. TF kernels [k, k, in, out] become
[out, in, k, k]; dense [in, out] becomes [out, in].

G_synthesis layer i (i = 0: '4x4/Const', 1: '4x4/Conv', then '{r}x{r}/Conv0_up', '{r}x{r}/Conv1') ->
`synthesis.layers.{i}` (conv weight, Noise/weight -> noise.strength, bias, StyleMod -> adain.affine),
'noise{i}' -> its 'const' noise; 'ToRGB_lod{l}' -> `to_rgbs.{log2(R) - 2 - l}` (one per resolution,
`progressive=True`) or `to_rgb` when the file holds only ToRGB_lod0; G_style's 'lod' and 'dlatent_avg'
-> `synthesis.lod` and `mapping.w_avg`. NVIDIA's fused upscale (fused_scale True, or 'auto' at 128 px
and up) is a stride-2 transposed conv with the kernel's 2x2 box sum: that equals nearest x2 then conv3x3
with the kernel flipped in both spatial axes, so those Conv0_up kernels are flipped here. The fused
downscale of the discriminators is a plain stride-2 conv: the same function unfused, nothing flipped.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from stylegan_core.errors import CheckpointError
from stylegan_core.limits import build_within
from stylegan_core.formats.nvidia_mapping import infer_channel_layout
from stylegan_core.formats.tf_record import (FLOAT32, TFNetwork, Unsupported, load_strict, runtime_coef, tf_kernel,
                                            to_tensor)
from stylegan_core.networks.generator import Generator
from stylegan_core.networks.layers import LRELU_GAIN
from stylegan_core.networks.progan_discriminator import ProGANDiscriminator

BLUR_121 = ([1, 2, 1], (1, 2, 1))


# ---- generator -------------------------------------------------------------------------------------------
def _mapping_state(G: Generator, mapping: TFNetwork) -> dict[str, torch.Tensor]:
    use_wscale = mapping.kwarg("use_wscale", True, (True, False))
    lrmul = float(mapping.kwarg("mapping_lrmul", 0.01))
    state = {}
    for i, layer in enumerate(G.mapping.layers):
        w = mapping.take(f"Dense{i}/weight", (layer.weight.shape[1], layer.weight.shape[0]))
        coef = runtime_coef(w.shape[0], LRELU_GAIN, use_wscale, lrmul)
        state[f"mapping.layers.{i}.weight"] = to_tensor(w.T, coef / layer.weight_gain)
        state[f"mapping.layers.{i}.bias"] = to_tensor(mapping.take(f"Dense{i}/bias"), lrmul / layer.bias_gain)
    mapping.check_all_used()
    return state


def _synthesis_state(G: Generator, synthesis: TFNetwork) -> dict[str, torch.Tensor]:
    use_wscale = synthesis.kwarg("use_wscale", True, (True, False))
    fused_scale = synthesis.kwarg("fused_scale", "auto", ("auto", True, False))
    log2 = int(math.log2(G.img_resolution))
    state = {}
    for i, layer in enumerate(G.synthesis.layers):
        r = 4 * 2 ** (i // 2)
        scope = ("4x4/Const", "4x4/Conv")[i] if i < 2 else f"{r}x{r}/{('Conv0_up', 'Conv1')[i % 2]}"
        ours = f"synthesis.layers.{i}"
        if layer.conv is not None:
            w = synthesis.take(f"{scope}/weight")
            if layer.conv_kind == "up" and (fused_scale is True or (fused_scale == "auto" and r >= 128)):
                w = w[::-1, ::-1]  # NVIDIA's transposed convolution: a true (flipped) convolution after nearest x2
            coef = runtime_coef(w.shape[0] * w.shape[1] * w.shape[2], LRELU_GAIN, use_wscale)
            state[f"{ours}.conv.weight"] = to_tensor(tf_kernel(w), coef / layer.conv.weight_gain)
        affine = layer.adain.affine
        sw = synthesis.take(f"{scope}/StyleMod/weight")
        coef = runtime_coef(sw.shape[0], 1.0, use_wscale)
        state[f"{ours}.adain.affine.weight"] = to_tensor(sw.T, coef / affine.weight_gain)
        state[f"{ours}.adain.affine.bias"] = to_tensor(synthesis.take(f"{scope}/StyleMod/bias"), 1.0 / affine.bias_gain)
        state[f"{ours}.noise.strength"] = to_tensor(synthesis.take(f"{scope}/Noise/weight"))
        state[f"{ours}.noise.noise_const"] = to_tensor(synthesis.take(f"noise{i}", (1, 1, r, r)))
        state[f"{ours}.bias"] = to_tensor(synthesis.take(f"{scope}/bias"))
    state["synthesis.const"] = to_tensor(synthesis.take("4x4/Const/const"))
    rgbs = [(k, f"synthesis.to_rgbs.{k}" if G.synthesis.progressive else "synthesis.to_rgb")
            for k in (range(log2 - 1) if G.synthesis.progressive else [log2 - 2])]
    for k, ours in rgbs:
        w = synthesis.take(f"ToRGB_lod{log2 - 2 - k}/weight")
        conv = G.get_submodule(ours).conv
        coef = runtime_coef(w.shape[2], 1.0, use_wscale)
        state[f"{ours}.conv.weight"] = to_tensor(tf_kernel(w), coef / conv.weight_gain)
        state[f"{ours}.conv.bias"] = to_tensor(synthesis.take(f"ToRGB_lod{log2 - 2 - k}/bias"))
    synthesis.check_all_used(ignore=("lod",))  # G_style assigns its own lod to the synthesis before running it
    return state


def _check_synthesis_kwargs(synthesis: TFNetwork) -> None:
    for name, default, allowed in (
        ("use_styles", True, (True,)), ("const_input_layer", True, (True,)), ("use_noise", True, (True, 1)),
        ("nonlinearity", "lrelu", ("lrelu",)), ("use_pixel_norm", False, (False,)),
        ("use_instance_norm", True, (True,)), ("dtype", "float32", FLOAT32), ("blur_filter", [1, 2, 1], BLUR_121),
        ("structure", "auto", ("auto", "fixed", "linear", "recursive")),
    ):
        synthesis.kwarg(name, default, allowed)


def generator_from_g_style(Gs: TFNetwork, where: str) -> Generator:
    """Our arch='stylegan' Generator computing what NVIDIA's G_style record computes (progressive with ToRGB_lod1)."""
    mapping = Gs.component("mapping", ("G_mapping",))
    synthesis = Gs.component("synthesis", ("G_synthesis",))
    for name, default, allowed in (("label_size", 0, (0,)), ("mapping_nonlinearity", "lrelu", ("lrelu",)),
                                   ("normalize_latents", True, (True,)), ("dtype", "float32", FLOAT32)):
        mapping.kwarg(name, default, allowed)
    _check_synthesis_kwargs(synthesis)
    layers = sum(1 for k in mapping.variables if k.startswith("Dense") and k.endswith("/weight"))
    if layers < 1 or not mapping.has("Dense0/weight"):
        raise Unsupported(f"network {mapping.name}: no Dense0 layer")
    z_dim = int(mapping.variables["Dense0/weight"].shape[0])
    w_dim = int(mapping.variables[f"Dense{layers - 1}/weight"].shape[1])
    resolution = int(synthesis.kwarg("resolution", 1024))
    if resolution < 4 or resolution & (resolution - 1):
        raise Unsupported(f"network {synthesis.name}: resolution {resolution} is not a power of two >= 4")
    channels = {4: int(synthesis.take("4x4/Const/const").shape[1])}
    for r in (2 ** k for k in range(3, int(math.log2(resolution)) + 1)):
        channels[r] = int(synthesis.take(f"{r}x{r}/Conv1/weight").shape[3])
    base, cmax = infer_channel_layout(channels, 2 * int(synthesis.kwarg("fmap_base", 8192)), where)
    img_channels = int(synthesis.take("ToRGB_lod0/weight").shape[3])
    progressive = synthesis.has("ToRGB_lod1/weight")
    try:
        G = build_within(lambda: Generator(z_dim=z_dim, w_dim=w_dim, img_resolution=resolution,
                                           img_channels=img_channels, mapping_layers=layers, channel_base=base,
                                           channel_max=cmax, arch="stylegan", progressive=progressive),
                         [mapping.variables, synthesis.variables])  # sizes bounded by the stored weights
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: unsupported hyper-parameters ({e})") from None
    state = {**_mapping_state(G, mapping), **_synthesis_state(G, synthesis)}
    state["mapping.w_avg"] = to_tensor(Gs.take("dlatent_avg", (w_dim,)))
    lod = float(Gs.take("lod").reshape(-1)[0]) if Gs.has("lod") else 0.0
    if progressive:
        if not 0 <= lod <= G.synthesis.max_lod:
            raise Unsupported(f"network {Gs.name}: lod {lod} outside [0, {G.synthesis.max_lod}]")
        state["synthesis.lod"] = torch.tensor(lod)
    elif lod != 0:
        raise Unsupported(f"network {Gs.name}: lod {lod} without per-resolution ToRGB layers")
    Gs.check_all_used()
    load_strict(G, state, where)
    return G


# ---- discriminators and attribute classifiers ------------------------------------------------------------
def _discriminator(D: TFNetwork, where: str, blur: bool, mbstd_features_kwarg: bool) -> ProGANDiscriminator:
    D.kwarg("label_size", 0, (0,))
    D.kwarg("dtype", "float32", FLOAT32)
    D.kwarg("structure", "auto" if blur else None, ("auto", "fixed", "linear", "recursive", None))
    if blur:
        D.kwarg("blur_filter", [1, 2, 1], BLUR_121)
        D.kwarg("nonlinearity", "lrelu", ("lrelu",))
        D.kwarg("fused_scale", "auto", ("auto", True, False))
    use_wscale = D.kwarg("use_wscale", True, (True, False))
    resolution = int(D.kwarg("resolution", 32))
    log2 = int(math.log2(max(resolution, 1)))
    if resolution < 4 or resolution & (resolution - 1):
        raise Unsupported(f"network {D.name}: resolution {resolution} is not a power of two >= 4")
    lod = float(D.take("lod").reshape(-1)[0]) if D.has("lod") else 0.0
    if lod != 0:
        raise Unsupported(f"network {D.name}: lod {lod}; only fully grown discriminators (lod 0) are supported")
    group = int(D.kwarg("mbstd_group_size", 4))
    features = int(D.kwarg("mbstd_num_features", 1)) if mbstd_features_kwarg else 1
    rgb = D.take("FromRGB_lod0/weight")
    channels = {resolution: int(rgb.shape[3]), 4: int(D.take("4x4/Conv/weight").shape[3])}
    for r in (2 ** k for k in range(3, log2 + 1)):
        channels[r] = int(D.take(f"{r}x{r}/Conv0/weight").shape[3])
    base, cmax = infer_channel_layout(channels, 2 * int(D.kwarg("fmap_base", 8192)), where)
    dense = D.take("4x4/Dense0/weight")
    out = D.take("4x4/Dense1/weight")
    try:
        net = build_within(lambda: ProGANDiscriminator(
            resolution, int(rgb.shape[2]), base, cmax, dense_features=int(dense.shape[1]),
            out_features=int(out.shape[1]), blur=blur, mbstd_group_size=group if group > 1 else 0,
            mbstd_num_features=features), D.variables)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: unsupported hyper-parameters ({e})") from None
    state = {}

    def conv(tf_scope: str, ours: str, gain: float = LRELU_GAIN) -> None:
        w = D.take(f"{tf_scope}/weight")
        layer = net.get_submodule(ours)
        coef = runtime_coef(int(np.prod(w.shape[:-1])), gain, use_wscale)
        state[f"{ours}.weight"] = to_tensor(tf_kernel(w) if w.ndim == 4 else w.T, coef / layer.weight_gain)
        state[f"{ours}.bias"] = to_tensor(D.take(f"{tf_scope}/bias"), 1.0 / getattr(layer, "bias_gain", 1.0))

    conv("FromRGB_lod0", "from_rgb")
    for b, r in enumerate(2 ** k for k in range(log2, 2, -1)):
        conv(f"{r}x{r}/Conv0", f"blocks.{b}.conv0")
        down = f"{r}x{r}/Conv1_down" if D.has(f"{r}x{r}/Conv1_down/weight") else f"{r}x{r}/Conv1"
        conv(down, f"blocks.{b}.conv1")
    conv("4x4/Conv", "conv")
    conv("4x4/Dense0", "fc")
    conv("4x4/Dense1", "out", gain=1.0)
    D.check_all_used(ignore=tuple(f"FromRGB_lod{k}/{p}" for k in range(1, log2 - 1) for p in ("weight", "bias")))
    load_strict(net, state, where)
    return net


def discriminator_from_d_basic(D: TFNetwork, where: str) -> ProGANDiscriminator:
    """StyleGAN's D_basic: blur [1, 2, 1] before each downsampling conv, minibatch stddev unless disabled."""
    return _discriminator(D, where, blur=True, mbstd_features_kwarg=True)


def discriminator_from_d_paper(D: TFNetwork, where: str) -> ProGANDiscriminator:
    """ProGAN's D_paper: no blur; one minibatch-stddev feature unless mbstd_group_size <= 1."""
    return _discriminator(D, where, blur=False, mbstd_features_kwarg=False)


__all__ = ["discriminator_from_d_basic", "discriminator_from_d_paper", "generator_from_g_style"]
