"""NVIDIA StyleGAN3 records (configs T and R) -> our Generator(arch='stylegan3-t' / 'stylegan3-r').

The hyper-parameters come from the records' init kwargs (NVIDIA's defaults where a record does not
say); our network is built from them and every layer's derived layout (channels, sizes, sampling
rates, cutoffs, resampling factors, padding) is compared with the attributes NVIDIA stored, so an
unusual file is refused rather than drawn differently. The weights and buffers (the designed filters,
magnitude EMAs, Fourier frequencies and phases, the input `transform`) are then copied as they are.

Name table (NVIDIA's layer L{i}_{size}_{channels} is our `synthesis.layers.{i}`):
  synthesis.input.{weight, freqs, phases, transform}   -> synthesis.input.*            copy
  synthesis.input.affine.{weight, bias}                -> synthesis.input.affine.*     affine
  synthesis.L*.{weight, bias, magnitude_ema, up_filter, down_filter} -> synthesis.layers.{i}.*  copy
  synthesis.L*.affine.{weight, bias}                   -> synthesis.layers.{i}.affine.*  affine
  mapping.*: the StyleGAN2 mapping rows (`nvidia_mapping.MAPPING_TABLE`).
"""

from __future__ import annotations

from typing import Any

from stylegan_core.errors import CheckpointError
from stylegan_core.limits import build_within
from stylegan_core.formats.nvidia_mapping import load_converted, mapping_pairs
from stylegan_core.networks.generator import STYLEGAN3_ARCHITECTURES, Generator
from stylegan_core.networks.synthesis3 import AliasFreeLayer

# NVIDIA's defaults of SynthesisNetwork / SynthesisLayer arguments that a record may leave out.
SYNTHESIS_DEFAULTS = dict(
    channel_base=32768, channel_max=512, num_layers=14, num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1,
    last_stopband_rel=2 ** 0.3, margin_size=10, output_scale=0.25, conv_kernel=3, filter_size=6, lrelu_upsampling=2,
    use_radial_filters=False, conv_clamp=256,
)
LAYER_PARAMS = ("weight", "bias", "magnitude_ema", "up_filter", "down_filter")
INPUT_PARAMS = ("weight", "freqs", "phases", "transform")


def _number(value: Any, name: str, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(f"{where}: StyleGAN3 argument {name}={value!r} is not a number")
    return value


def synthesis_arguments(synthesis, where: str) -> dict:
    """NVIDIA's SynthesisNetwork arguments of a record: its init kwargs over NVIDIA's defaults."""
    kwargs = synthesis.init_kwargs
    args = {}
    for name, default in SYNTHESIS_DEFAULTS.items():
        value = kwargs.get(name, default)
        if name == "use_radial_filters":
            args[name] = bool(value)
        elif name == "conv_clamp" and value is None:
            args[name] = None
        else:
            args[name] = _number(value, name, where)
    return args


def _width(value: Any) -> Any:
    """NVIDIA stores sizes as [width, height] arrays (square here): the width; other values as they are."""
    return int(value.reshape(-1)[0]) if hasattr(value, "reshape") else value


def _check_layout(ours: AliasFreeLayer, theirs, name: str, where: str) -> None:
    """Our layer's derived layout must be the one NVIDIA stored in the record."""
    expected = dict(is_torgb=ours.is_torgb, in_channels=ours.in_channels, out_channels=ours.out_channels,
                    in_size=ours.in_size, out_size=ours.out_size, up_factor=ours.up_factor,
                    down_factor=ours.down_factor, conv_kernel=ours.conv_kernel, padding=list(ours.padding))
    for key, value in expected.items():
        stored = theirs.attr(key)
        if stored is None:
            raise CheckpointError(f"{where}: StyleGAN3 layer {name} does not say its {key}")
        stored = [int(v) for v in stored] if key == "padding" else _width(stored)
        if stored != value:
            raise CheckpointError(f"{where}: StyleGAN3 layer {name} has {key}={stored!r} where NVIDIA's layout for "
                                  f"these arguments gives {value!r}")


def stylegan3_generator(record, state: dict, where: str, dims: dict, mapping_layers: int) -> Generator:
    """Our stylegan3 Generator with the weights of an NVIDIA StyleGAN3 G_ema record.

    `state` is the record's effective state dict (dense layers hold weight * weight_gain), `dims` its
    z_dim, w_dim, c_dim, img_resolution and img_channels.
    """
    synthesis = record.items("_modules")["synthesis"]
    layer_records = {k: v for k, v in synthesis.items("_modules").items() if k != "input"}
    names = synthesis.attr("layer_names")
    if not isinstance(names, list) or sorted(names) != sorted(layer_records):
        raise CheckpointError(f"{where}: the synthesis network's layer_names do not match its layers")
    args = synthesis_arguments(synthesis, where)
    args["num_layers"] = len(names) - 1  # the Fourier input and ToRGB take the other two ws
    for name in ("num_critical", "margin_size", "output_scale"):  # the network's own attributes win
        if synthesis.attr(name) is not None:
            args[name] = _number(synthesis.attr(name), name, where)
    arch = "stylegan3-r" if args["use_radial_filters"] else "stylegan3-t"
    arch_defaults = STYLEGAN3_ARCHITECTURES[arch][3]
    base, cmax, clamp = args.pop("channel_base"), args.pop("channel_max"), args.pop("conv_clamp")
    extra = {k: v for k, v in args.items() if v != arch_defaults.get(k, SYNTHESIS_DEFAULTS[k])}
    try:
        G = build_within(lambda: Generator(**dims, mapping_layers=mapping_layers, channel_base=int(base),
                                           channel_max=int(cmax), arch=arch, conv_clamp=None if clamp is None
                                           else float(clamp), synthesis_kwargs=extra or None), state)
    except (TypeError, ValueError, ZeroDivisionError) as e:
        raise CheckpointError(f"{where}: unsupported StyleGAN3 hyper-parameters ({e})") from None
    fourier = synthesis.items("_modules")["input"]
    if _width(fourier.attr("size")) != G.synthesis.input.size or fourier.attr("channels") != G.synthesis.input.channels:
        raise CheckpointError(f"{where}: the Fourier input ({fourier.attr('channels')} channels, size "
                              f"{_width(fourier.attr('size'))}) does not follow NVIDIA's layout for these arguments")
    pairs = mapping_pairs(mapping_layers, dims["c_dim"])
    pairs += [(f"synthesis.input.{p}", f"synthesis.input.{p}", "copy") for p in INPUT_PARAMS]
    pairs += [(f"synthesis.input.affine.{p}", f"synthesis.input.affine.{p}", "affine") for p in ("weight", "bias")]
    for i, (name, ours) in enumerate(zip(names, G.synthesis.layers)):
        _check_layout(ours, layer_records[name], name, where)
        present = [p for p in LAYER_PARAMS if getattr(ours, p) is not None]  # 1-tap filters are None in both
        pairs += [(f"synthesis.{name}.{p}", f"synthesis.layers.{i}.{p}", "copy") for p in present]
        pairs += [(f"synthesis.{name}.affine.{p}", f"synthesis.layers.{i}.affine.{p}", "affine") for p in ("weight", "bias")]
    load_converted(G, pairs, state, where, "not a StyleGAN3 generator")
    return G
