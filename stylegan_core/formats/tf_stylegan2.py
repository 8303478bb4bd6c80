"""NVIDIA's StyleGAN2 TensorFlow networks -> ours: G_main (G_synthesis_stylegan2, 'skip') and D_stylegan2 ('resnet').

The generator is first written as NVIDIA's *effective* PyTorch state dict (the names and values of
stylegan2-ada-pytorch's G_ema, dense layers holding weight * weight_gain) and then mapped by
`nvidia_mapping`, the one table to our arch='stylegan2' Generator. From TF (as NVIDIA's legacy.py):
kernels [k, k, in, out] -> [out, in, k, k], the up-sampling Conv0_up kernel flipped in both spatial axes
(TF runs it as a transposed convolution), dense [in, out] -> [out, in] times lrmul / sqrt(fan_in),
mod_bias + 1 (TF adds the 1 at run time), noise{i} [1, 1, r, r] -> [r, r]. The demodulated convs also
get TF's run-time 1 / sqrt(fan_in), which demodulation cancels except inside its 1e-8, so the result is
exact. The discriminator maps directly onto `ResidualDiscriminator`, whose layers scale like TF's.
"""

from __future__ import annotations

import math

import numpy as np

from stylegan_core.errors import CheckpointError
from stylegan_core.limits import build_within
from stylegan_core.formats.nvidia_mapping import generator_from_nvidia_state, infer_channel_layout
from stylegan_core.formats.tf_record import FLOAT32, TFNetwork, Unsupported, load_strict, tf_kernel, to_tensor
from stylegan_core.networks.generator import Generator
from stylegan_core.networks.residual_discriminator import ResidualDiscriminator

FIR_1331 = ([1, 3, 3, 1], (1, 3, 3, 1))
SYNTHESIS_FUNCS = ("G_synthesis_stylegan2",)


def _modulated(net: TFNetwork, scope: str, prefix: str, state: dict, *, flip: bool = False,
               demodulated: bool = True) -> None:
    """One modulated layer's weight, affine (mod_weight / mod_bias) and bias, in NVIDIA's effective form."""
    w = net.take(f"{scope}/weight")
    if flip:
        w = w[::-1, ::-1]
    scale = 1 / math.sqrt(w.shape[0] * w.shape[1] * w.shape[2]) if demodulated else 1.0
    state[f"{prefix}.weight"] = to_tensor(tf_kernel(w), scale)
    mod = net.take(f"{scope}/mod_weight")
    state[f"{prefix}.affine.weight"] = to_tensor(mod.T, 1 / math.sqrt(mod.shape[0]))
    state[f"{prefix}.affine.bias"] = to_tensor(net.take(f"{scope}/mod_bias") + 1)
    state[f"{prefix}.bias"] = to_tensor(net.take(f"{scope}/bias"))


def generator_from_g_main(Gs: TFNetwork, where: str) -> Generator:
    """Our arch='stylegan2' Generator computing what NVIDIA's G_main record (config F, 'skip') computes."""
    Gs.kwarg("mapping_func", "G_mapping", ("G_mapping",))
    Gs.kwarg("synthesis_func", "G_synthesis_stylegan2", SYNTHESIS_FUNCS)
    mapping = Gs.component("mapping", ("G_mapping",))
    synthesis = Gs.component("synthesis", SYNTHESIS_FUNCS)
    for name, default, allowed in (("label_size", 0, (0,)), ("mapping_nonlinearity", "lrelu", ("lrelu",)),
                                   ("normalize_latents", True, (True,)), ("dtype", "float32", FLOAT32)):
        mapping.kwarg(name, default, allowed)
    for name, default, allowed in (("architecture", "skip", ("skip",)), ("nonlinearity", "lrelu", ("lrelu",)),
                                   ("dtype", "float32", FLOAT32), ("resample_kernel", [1, 3, 3, 1], FIR_1331)):
        synthesis.kwarg(name, default, allowed)
    lrmul = float(mapping.kwarg("mapping_lrmul", 0.01))
    state = {}
    layers = sum(1 for k in mapping.variables if k.startswith("Dense") and k.endswith("/weight"))
    for i in range(layers):
        w = mapping.take(f"Dense{i}/weight")
        state[f"mapping.fc{i}.weight"] = to_tensor(w.T, lrmul / math.sqrt(w.shape[0]))
        state[f"mapping.fc{i}.bias"] = to_tensor(mapping.take(f"Dense{i}/bias"), lrmul)
    mapping.check_all_used()
    if layers < 1:
        raise Unsupported(f"network {mapping.name}: no Dense0 layer")
    z_dim, w_dim = int(state["mapping.fc0.weight"].shape[1]), int(state[f"mapping.fc{layers - 1}.weight"].shape[0])
    state["mapping.w_avg"] = to_tensor(Gs.take("dlatent_avg", (w_dim,)))
    Gs.check_all_used(ignore=("lod",))  # G_main's lod drives nothing in a skip generator

    resolution = int(synthesis.kwarg("resolution", 1024))
    if resolution < 4 or resolution & (resolution - 1):
        raise Unsupported(f"network {synthesis.name}: resolution {resolution} is not a power of two >= 4")
    state["synthesis.b4.const"] = to_tensor(synthesis.take("4x4/Const/const")[0])
    for k in range(2, int(math.log2(resolution)) + 1):
        r = 2 ** k
        scopes = [("4x4/Conv", "conv1", 0)] if r == 4 else [(f"{r}x{r}/Conv0_up", "conv0", 2 * k - 5),
                                                            (f"{r}x{r}/Conv1", "conv1", 2 * k - 4)]
        for scope, name, noise in scopes:
            prefix = f"synthesis.b{r}.{name}"
            _modulated(synthesis, scope, prefix, state, flip=name == "conv0")
            state[f"{prefix}.noise_strength"] = to_tensor(synthesis.take(f"{scope}/noise_strength").reshape([]))
            state[f"{prefix}.noise_const"] = to_tensor(synthesis.take(f"noise{noise}", (1, 1, r, r))[0, 0])
        _modulated(synthesis, f"{r}x{r}/ToRGB", f"synthesis.b{r}.torgb", state, demodulated=False)
    synthesis.check_all_used()
    img_channels = int(state[f"synthesis.b{resolution}.torgb.weight"].shape[0])
    return generator_from_nvidia_state(
        state, where=where, z_dim=z_dim, w_dim=w_dim, img_resolution=resolution, img_channels=img_channels,
        mapping_layers=layers, conv_clamp=None, channel_hint=2 * int(synthesis.kwarg("fmap_base", 16384)),
    )


def residual_from_d_stylegan2(D: TFNetwork, where: str) -> ResidualDiscriminator:
    """Our ResidualDiscriminator computing what NVIDIA's D_stylegan2 record ('resnet', config E/F) computes."""
    for name, default, allowed in (("architecture", "resnet", ("resnet",)), ("nonlinearity", "lrelu", ("lrelu",)),
                                   ("label_size", 0, (0,)), ("dtype", "float32", FLOAT32),
                                   ("resample_kernel", [1, 3, 3, 1], FIR_1331)):
        D.kwarg(name, default, allowed)
    group = int(D.kwarg("mbstd_group_size", 4))
    if group <= 1:
        raise Unsupported(f"network {D.name}: a discriminator without minibatch stddev is not supported")
    resolution = int(D.kwarg("resolution", 1024))
    if resolution < 8 or resolution & (resolution - 1):
        raise Unsupported(f"network {D.name}: resolution {resolution} is not a power of two >= 8")
    log2 = int(math.log2(resolution))
    rgb = D.take(f"{resolution}x{resolution}/FromRGB/weight")
    channels = {4: int(D.take("4x4/Conv/weight").shape[3])}
    for r in (2 ** k for k in range(3, log2 + 1)):
        channels[r] = int(D.take(f"{r}x{r}/Conv0/weight").shape[3])
    base, cmax = infer_channel_layout(channels, 2 * int(D.kwarg("fmap_base", 16384)), where)
    try:
        net = build_within(lambda: ResidualDiscriminator(resolution, int(rgb.shape[2]), base, cmax,
                                                         mbstd_group_size=group,
                                                         mbstd_num_features=int(D.kwarg("mbstd_num_features", 1))),
                           D.variables)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: unsupported hyper-parameters ({e})") from None
    state = {}

    def layer(scope: str, ours: str, bias: bool = True) -> None:
        w = D.take(f"{scope}/weight")
        state[f"{ours}.weight"] = to_tensor(tf_kernel(w) if w.ndim == 4 else np.ascontiguousarray(w.T))
        if bias:
            state[f"{ours}.bias"] = to_tensor(D.take(f"{scope}/bias"))

    layer(f"{resolution}x{resolution}/FromRGB", "from_rgb")
    for b, r in enumerate(2 ** k for k in range(log2, 2, -1)):
        layer(f"{r}x{r}/Conv0", f"blocks.{b}.conv0")
        layer(f"{r}x{r}/Conv1_down", f"blocks.{b}.conv1")
        layer(f"{r}x{r}/Skip", f"blocks.{b}.skip", bias=False)
    layer("4x4/Conv", "conv")
    layer("4x4/Dense0", "fc")
    layer("Output", "out")
    D.check_all_used()
    load_strict(net, state, where)
    return net


__all__ = ["generator_from_g_main", "residual_from_d_stylegan2"]
