"""StyleGAN1 synthesis network: learned constant, AdaIN style layers with noise, x2 blocks, ToRGB."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.networks.layers import AdaIN, Blur, EqualizedConv2d, NoiseInjection, leaky_relu, upsample2x
from stylegan_core.networks.noise import noise_maps


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: min(channel_base // resolution, channel_max), at least 1."""
    return max(1, min(channel_base // resolution, channel_max))


def num_ws_for(resolution: int) -> int:
    """Style inputs of a generator of this resolution: two per block from 4x4 up, 2*log2(R) - 2."""
    return 2 * int(math.log2(resolution)) - 2


def check_img_resolution(img_resolution: int) -> None:
    """ValueError unless the image side is a power of two >= 4 (generators and discriminators alike)."""
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")


class StyleLayer(nn.Module):
    """One style layer: [conv] -> noise -> bias -> leaky ReLU -> AdaIN (instance norm + style)."""

    def __init__(
        self,
        in_channels: int,   # Channels coming in.
        out_channels: int,  # Channels going out.
        w_dim: int,         # Width of w.
        resolution: int,    # Output side length.
        conv: str = "conv",  # 'none' (input constant), 'conv' (3x3), 'up' (x2, 3x3 conv, blur).
    ):
        super().__init__()
        if conv not in ("none", "conv", "up"):
            raise ValueError(f"unknown conv kind {conv!r}")
        self.conv_kind = conv
        self.conv = None if conv == "none" else EqualizedConv2d(in_channels, out_channels, 3, bias=False)
        self.blur = Blur() if conv == "up" else None
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(w_dim, out_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.conv_kind == "up":
            x = upsample2x(x)
        if self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = self.blur(x)
        x = self.noise(x, noise_mode, noise)
        x = leaky_relu(x + self.bias.view(1, -1, 1, 1))
        return self.adain(x, w)


class ToRGB(nn.Module):
    """1x1 equalized-lr convolution to image channels, linear output."""

    def __init__(self, in_channels: int, img_channels: int):
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, img_channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SynthesisBase(nn.Module):
    """What the StyleGAN1 and StyleGAN2 synthesis networks share: sizes, the ws check and per-sample seeded noise.

    Subclasses set `layer_resolutions` (one entry per noise input, in the order their layers take noise).
    """

    layer_resolutions: list[int]
    per_sample_noise = True  # forward takes noise_seeds [N]: sample n's noise from noise_seeds[n] only

    def __init__(
        self,
        w_dim: int,            # Width of w.
        img_resolution: int,   # Output side, a power of two >= 4.
        img_channels: int,     # Output channels.
    ):
        super().__init__()
        check_img_resolution(img_resolution)
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_ws = num_ws_for(img_resolution)

    def draw_noise(self, noise_seeds: torch.Tensor, device: torch.device | str) -> list[torch.Tensor]:
        """Per-layer noise [N, 1, r, r] where sample n's maps come only from its seed noise_seeds[n]: the
        counter-based generator of `noise.noise_maps`, drawn for the whole batch on `device`."""
        return noise_maps(noise_seeds, self.layer_resolutions, device)

    def noise_inputs(
        self,
        ws: torch.Tensor,                  # [N, num_ws, w_dim], checked here
        noise_mode: str,                   # 'random', 'const' or 'none'
        noise_seeds: torch.Tensor | None,  # [N] int, or None
    ) -> list:                             # per layer: [N, 1, r, r] seeded noise, or None (the layer decides)
        """Checks ws (and noise_seeds); seeded 'random' noise per layer when noise_seeds is given, else Nones."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_seeds is not None and noise_mode == "random":
            if noise_seeds.shape != (ws.shape[0],):
                raise ValueError(f"noise_seeds must have shape [{ws.shape[0]}], got {list(noise_seeds.shape)}")
            return self.draw_noise(noise_seeds, ws.device)
        return [None] * len(self.layer_resolutions)


class SynthesisNetwork(SynthesisBase):
    """ws [N, num_ws, w_dim] -> images [N, img_channels, R, R]; optionally with NVIDIA's progressive growing.

    By default one ToRGB at the output resolution. With `progressive=True` the network holds one ToRGB per
    resolution (`to_rgbs`, 4x4 first) and a float buffer `lod` (level of detail): lod 0 is the full
    resolution; lod k > 0 stops at R / 2^k and nearest-upsamples the image to R; a fractional lod fades
    linearly between the two nearest levels, the coarser ToRGB output nearest-upsampled x2 first
    (NVIDIA's G_synthesis with its 'recursive' or 'linear' structure).
    """

    def __init__(
        self,
        w_dim: int,                # Width of w.
        img_resolution: int,       # Output side, a power of two >= 4.
        img_channels: int,         # Output channels (3 for RGB).
        channel_base: int,         # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max: int,          # Upper bound on channels.
        progressive: bool = False,  # One ToRGB per resolution and a `lod` buffer (False: one ToRGB, no lod).
    ):
        super().__init__(w_dim, img_resolution, img_channels)
        c4 = channels_at(4, channel_base, channel_max)
        self.const = nn.Parameter(torch.ones(1, c4, 4, 4))
        layers = [StyleLayer(c4, c4, w_dim, 4, conv="none"), StyleLayer(c4, c4, w_dim, 4, conv="conv")]
        channels = c4
        rgb_channels = [c4]  # channels entering each resolution's ToRGB, 4x4 first
        res = 8
        while res <= img_resolution:
            out = channels_at(res, channel_base, channel_max)
            layers += [StyleLayer(channels, out, w_dim, res, conv="up"), StyleLayer(out, out, w_dim, res)]
            channels = out
            rgb_channels.append(out)
            res *= 2
        self.layers = nn.ModuleList(layers)
        self.layer_resolutions = [4 * 2 ** (i // 2) for i in range(len(layers))]
        self.progressive = progressive
        if progressive:
            self.to_rgbs = nn.ModuleList(ToRGB(c, img_channels) for c in rgb_channels)
            self.register_buffer("lod", torch.zeros([]))
        else:
            self.to_rgb = ToRGB(channels, img_channels)

    @property
    def max_lod(self) -> int:
        """The coarsest level of detail: log2(R) - 2 (only the 4x4 block)."""
        return len(self.layers) // 2 - 1

    def forward(
        self,
        ws: torch.Tensor,                          # [N, num_ws, w_dim]
        noise_mode: str = "random",                # 'random', 'const' or 'none'
        noise_seeds: torch.Tensor | None = None,   # [N] int: per-sample seeds of the 'random' noise
    ) -> torch.Tensor:                             # [N, img_channels, R, R]
        noise = self.noise_inputs(ws, noise_mode, noise_seeds)  # num_ws entries: one per style layer
        lod = float(self.lod) if self.progressive else 0.0
        if not 0 <= lod <= self.max_lod:
            raise ValueError(f"lod must lie in [0, {self.max_lod}], got {lod}")
        level = min(math.floor(lod), self.max_lod)  # whole levels dropped at the top
        num_blocks = self.max_lod + 1 - level         # blocks run: 4x4 up to R / 2^level
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x_coarse = x
        for i, layer in enumerate(self.layers[:2 * num_blocks]):
            if i == 2 * num_blocks - 2:
                x_coarse = x  # features of the previous resolution, for the fade
            x = layer(x, ws[:, i], noise_mode, noise[i])
        if not self.progressive:
            return self.to_rgb(x)
        img = self.to_rgbs[num_blocks - 1](x)
        fade = lod - level
        if fade > 0:  # NVIDIA's lerp(fine, upscale(coarse), fade)
            coarse = upsample2x(self.to_rgbs[num_blocks - 2](x_coarse))
            img = img + (coarse - img) * fade
        return F.interpolate(img, scale_factor=2 ** level, mode="nearest") if level else img
