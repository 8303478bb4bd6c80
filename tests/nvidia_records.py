"""A test-side writer of NVIDIA's network pickle format (torch_utils.persistence records), for load tests: the
stand-in modules come from the `nvidia_modules` fixture (conftest.py)."""

import math
from collections import OrderedDict

import numpy as np
import torch

from stylegan_core.networks.fir import setup_filter

SQRT2 = math.sqrt(2)


class Record:
    """Pickles as NVIDIA's persistent_class does: REDUCE(_reconstruct_persistent_obj, (meta,)), meta.state = __dict__."""

    def __init__(self, mods, class_name, params=(), buffers=(), modules=(), init_kwargs=None, module_src="", **attrs):
        self.mods, self.class_name, self.module_src = mods, class_name, module_src
        self.state = dict(
            training=False, _parameters=OrderedDict((k, torch.nn.Parameter(v, requires_grad=False)) for k, v in dict(params).items()),
            _buffers=OrderedDict(buffers), _non_persistent_buffers_set=set(), _backward_hooks=OrderedDict(),
            _forward_hooks=OrderedDict(), _forward_pre_hooks=OrderedDict(), _state_dict_hooks=OrderedDict(),
            _load_state_dict_pre_hooks=OrderedDict(), _modules=OrderedDict(modules), _init_args=(),
            _init_kwargs=mods.EasyDict(init_kwargs or {}), **attrs)

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=self.module_src or "# training/networks.py source",
                    class_name=self.class_name, state=self.state)
        return self.mods.reconstruct, (meta,)


def nvidia_generator_record(mods, G, lr=0.01, module_src=""):
    """Our stylegan2 G written under NVIDIA's names, parameters, gains and attributes (the inverse of the loader)."""
    def fc(weight_eff, bias_eff, lr_mul, activation):
        wg = lr_mul / math.sqrt(weight_eff.shape[1])
        return Record(mods, "FullyConnectedLayer", params=dict(weight=weight_eff / wg, bias=bias_eff / lr_mul),
                      activation=activation, weight_gain=np.float64(wg), bias_gain=lr_mul,
                      init_kwargs=dict(in_features=weight_eff.shape[1], out_features=weight_eff.shape[0],
                                       activation=activation, lr_multiplier=lr_mul))

    def affine(conv):
        a = conv.affine
        return fc(a.weight.detach() * a.weight_gain, a.bias.detach() * a.bias_gain, 1, "linear")

    f = setup_filter()
    blocks = {}
    for b, block in enumerate(G.synthesis.blocks):
        r = 4 * 2 ** b
        children = {}
        for j, layer in ((0, block.conv0), (1, block.conv1)):
            if layer is not None:
                children[f"conv{j}"] = Record(
                    mods, "SynthesisLayer", modules=dict(affine=affine(layer.conv)),
                    params=dict(weight=layer.conv.weight.detach(), noise_strength=layer.noise.strength.detach(),
                                bias=layer.bias.detach()),
                    buffers=dict(resample_filter=f, noise_const=layer.noise.noise_const[0, 0]),
                    resolution=r, up=2 if j == 0 else 1, use_noise=True, activation="lrelu",
                    conv_clamp=layer.conv_clamp, padding=1, act_gain=np.float64(SQRT2))
        rgb = block.to_rgb
        children["torgb"] = Record(mods, "ToRGBLayer", modules=dict(affine=affine(rgb.conv)),
                                   params=dict(weight=rgb.conv.weight.detach(), bias=rgb.bias.detach()),
                                   conv_clamp=rgb.conv_clamp, weight_gain=np.float64(rgb.conv.style_gain))
        params = dict(const=G.synthesis.const.detach()[0]) if r == 4 else {}
        blocks[f"b{r}"] = Record(mods, "SynthesisBlock", params=params, buffers=dict(resample_filter=f),
                                 modules=children, resolution=r, architecture="skip", in_channels=0 if r == 4 else 1)
    synthesis = Record(mods, "SynthesisNetwork", modules=blocks, w_dim=G.w_dim, img_resolution=G.img_resolution,
                       num_ws=G.num_ws, block_resolutions=[4 * 2 ** b for b in range(len(blocks))])
    fcs = {f"fc{i}": fc(layer.weight.detach() * layer.weight_gain / SQRT2, layer.bias.detach() * layer.bias_gain / SQRT2,
                        lr, "lrelu") for i, layer in enumerate(G.mapping.layers)}
    mapping = Record(mods, "MappingNetwork", modules=fcs, buffers=dict(w_avg=G.mapping.w_avg.clone()),
                     z_dim=G.z_dim, c_dim=0, w_dim=G.w_dim, num_ws=G.num_ws, num_layers=len(fcs), w_avg_beta=0.995)
    kwargs = dict(z_dim=G.z_dim, w_dim=G.w_dim, c_dim=0, img_resolution=G.img_resolution, img_channels=G.img_channels,
                  mapping_kwargs=mods.EasyDict(num_layers=len(fcs)),
                  synthesis_kwargs=mods.EasyDict(channel_base=G.config["channel_base"],
                                                 channel_max=G.config["channel_max"], num_fp16_res=4, conv_clamp=None))
    return Record(mods, "Generator", modules=dict(synthesis=synthesis, mapping=mapping), init_kwargs=kwargs,
                  module_src=module_src, z_dim=G.z_dim, c_dim=0, w_dim=G.w_dim, img_resolution=G.img_resolution,
                  img_channels=G.img_channels, num_ws=G.num_ws)
