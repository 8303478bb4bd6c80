"""StyleGAN1 discriminator: fromRGB, conv/blur/downsample blocks, minibatch stddev, dense epilogue; optionally
with NVIDIA's progressive growing (one fromRGB per resolution and a level of detail, D_basic's fade)."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.networks.layers import LRELU_GAIN, Blur, EqualizedConv2d, EqualizedLinear, downsample2x, leaky_relu
from stylegan_core.networks.synthesis import channels_at, check_img_resolution


class MinibatchStdDev(nn.Module):
    """Appends the group-wise standard deviation of features, averaged to `num_features` maps."""

    def __init__(
        self,
        group_size: int = 4,    # Samples per group (reduced to a divisor of the batch when needed).
        num_features: int = 1,  # Channels of the appended statistic.
    ):
        super().__init__()
        self.group_size = group_size
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C + F, H, W]
        n, c, h, w = x.shape
        g = math.gcd(self.group_size, n)
        f = self.num_features
        y = x.reshape(g, -1, f, c // f, h, w)              # [G, M, F, c, H, W]; sample i is in group i % M
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()         # [M, F, c, H, W]
        y = y.mean(dim=(2, 3, 4))                          # [M, F]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)      # [N, F, H, W]
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """conv3x3 -> blur -> conv3x3 -> 2x2 average (a stride-2 conv with the blurred kernel)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.blur = Blur()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in, H, W] -> [N, out, H/2, W/2]
        x = leaky_relu(self.conv0(x))
        return leaky_relu(downsample2x(self.conv1(self.blur(x))))


class DiscriminatorBase(nn.Module):
    """What both discriminators share: fromRGB, x2-down blocks to 4x4, minibatch stddev, conv3x3, dense, dense -> logit.

    Subclasses name their layer kinds below and write `forward` (where their activations differ).
    """

    conv_layer: Callable[[int, int, int], nn.Module]  # (in_channels, out_channels, kernel_size) -> conv
    block_layer: Callable[[int, int], nn.Module]      # (in_channels, out_channels) -> block halving H and W
    fc_gain: float                                    # Runtime weight gain of the dense layer before the output.

    def __init__(
        self,
        img_resolution: int,      # Input side, a power of two >= 4.
        img_channels: int,        # Input channels.
        channel_base: int,        # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max: int,         # Upper bound on channels.
        mbstd_group_size: int,    # Minibatch standard deviation group size.
        mbstd_num_features: int,  # Minibatch standard deviation channels.
    ):
        super().__init__()
        check_img_resolution(img_resolution)
        self.config = dict(
            img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
            channel_max=channel_max, mbstd_group_size=mbstd_group_size, mbstd_num_features=mbstd_num_features,
        )
        self.img_resolution = img_resolution
        self.img_channels = img_channels

        def ch(r: int) -> int:
            return channels_at(r, channel_base, channel_max)

        self.from_rgb = self.conv_layer(img_channels, ch(img_resolution), 1)
        blocks = []
        res = img_resolution
        while res > 4:
            blocks.append(self.block_layer(ch(res), ch(res // 2)))
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        c4 = ch(4)
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_features)
        self.conv = self.conv_layer(c4 + mbstd_num_features, c4, 3)
        self.fc = EqualizedLinear(c4 * 16, c4, gain=self.fc_gain)
        self.out = EqualizedLinear(c4, 1, gain=1.0)

    def check_images(self, img: torch.Tensor) -> None:
        """ValueError unless img is [N, img_channels, img_resolution, img_resolution]."""
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"images must have shape [N, {', '.join(map(str, expected))}], got {list(img.shape)}")


class Discriminator(DiscriminatorBase):
    """images [N, img_channels, R, R] -> one logit per image [N, 1].

    By default one fromRGB at the input resolution. With `progressive=True` the network holds one fromRGB per
    resolution (`from_rgbs`, R first, 4x4 last: from_rgbs[k] feeds blocks[k] at R / 2^k) and a float buffer
    `lod` (level of detail, as the generator's): lod k reads the image box-downscaled by 2^k through from_rgbs[k]
    and skips the blocks above R / 2^k; a fractional lod fades the features after blocks[k] linearly toward
    fromRGB of the image at half that resolution (NVIDIA's D_basic, `structure='linear'` or 'recursive').
    """

    conv_layer = EqualizedConv2d       # bias, then leaky_relu in forward
    block_layer = DiscriminatorBlock
    fc_gain = LRELU_GAIN

    def __init__(
        self,
        img_resolution: int,      # Input side, a power of two >= 4.
        img_channels: int = 3,    # Input channels.
        channel_base: int = 16384,  # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max: int = 512,   # Upper bound on channels.
        mbstd_group_size: int = 4,  # Minibatch standard deviation group size.
        mbstd_num_features: int = 1,  # Minibatch standard deviation channels.
        progressive: bool = False,  # One fromRGB per resolution and a `lod` buffer (False: one fromRGB, no lod).
    ):
        super().__init__(img_resolution, img_channels, channel_base, channel_max, mbstd_group_size, mbstd_num_features)
        self.progressive = progressive
        if progressive:  # fixed-resolution configs stay as they were
            self.config["progressive"] = True
            lower = [self.conv_layer(img_channels, channels_at(img_resolution >> k, channel_base, channel_max), 1)
                     for k in range(1, len(self.blocks) + 1)]
            self.from_rgbs = nn.ModuleList([self.from_rgb] + lower)  # R, R/2, ..., 4
            del self.from_rgb
            self.register_buffer("lod", torch.zeros([]))

    @property
    def max_lod(self) -> int:
        """The coarsest level of detail: log2(R) - 2 (only the 4x4 epilogue)."""
        return len(self.blocks)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        self.check_images(img)
        if self.progressive:
            x = self._grown_features(img)
        else:
            x = leaky_relu(self.from_rgb(img))
            for block in self.blocks:
                x = block(x)
        x = leaky_relu(self.conv(self.mbstd(x)))  # [N, c4, 4, 4]
        x = leaky_relu(self.fc(x.flatten(1)))
        return self.out(x)  # [N, 1]

    def _grown_features(self, img: torch.Tensor) -> torch.Tensor:  # [N, C, R, R] -> [N, c4, 4, 4]
        """Features at 4x4 of the progressive network at its current `lod`."""
        lod = float(self.lod)
        if not 0 <= lod <= self.max_lod:
            raise ValueError(f"lod must lie in [0, {self.max_lod}], got {lod}")
        level = math.floor(lod)  # whole levels dropped at the top
        fade = lod - level
        x = leaky_relu(self.from_rgbs[level](downscale(img, 2 ** level)))  # [N, c, R / 2^level, ...]
        for k in range(level, len(self.blocks)):
            x = self.blocks[k](x)
            if k == level and fade > 0:  # NVIDIA's lerp(block(x), fromrgb(downscale(img)), lod - level)
                coarse = leaky_relu(self.from_rgbs[k + 1](downscale(img, 2 ** (k + 1))))
                x = x + (coarse - x) * fade
        return x


def downscale(img: torch.Tensor, factor: int) -> torch.Tensor:
    """Box average over factor x factor pixels (NVIDIA's downscale2d); factor 1 returns img."""
    return F.avg_pool2d(img, factor) if factor > 1 else img
