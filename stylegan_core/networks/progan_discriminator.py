"""NVIDIA's TensorFlow discriminator family at full resolution: ProGAN's D_paper and StyleGAN's D_basic.

fromRGB (1x1) -> per resolution: conv3x3, [blur], conv3x3, 2x2 average -> 4x4: [minibatch stddev], conv3x3,
dense, dense -> logits. Every layer has equalized-lr weights (gain sqrt 2, the last dense 1) and leaky ReLU
0.2 after the bias. NVIDIA fuses "conv3x3 then 2x2 average" into one stride-2 convolution with the
kernel's 2x2 box sum / 4 at 128 px and up; that is the same function, computed here unfused. StyleGAN's
D_basic blurs ([1, 2, 1]) before that convolution, ProGAN's D_paper does not. NVIDIA's CelebA-HQ
attribute classifiers are this network at 256 px with one output and no minibatch stddev.
"""

from __future__ import annotations

import torch
from torch import nn

from stylegan_core.networks.discriminator import MinibatchStdDev
from stylegan_core.networks.layers import Blur, EqualizedConv2d, EqualizedLinear, downsample2x, leaky_relu
from stylegan_core.networks.synthesis import channels_at, check_img_resolution


class DownBlock(nn.Module):
    """conv3x3 -> leaky ReLU -> [blur] -> conv3x3 -> 2x2 average -> leaky ReLU (NVIDIA's Conv0, Conv1_down)."""

    def __init__(
        self,
        in_channels: int,   # Channels at this resolution.
        out_channels: int,  # Channels at half the resolution.
        blur: bool,         # Low-pass [1, 2, 1] before the downsampling conv (StyleGAN) or not (ProGAN).
    ):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.blur = Blur() if blur else None
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in, H, W] -> [N, out, H/2, W/2]
        x = leaky_relu(self.conv0(x))
        if self.blur is not None:
            x = self.blur(x)
        return leaky_relu(downsample2x(self.conv1(x)))


class ProGANDiscriminator(nn.Module):
    """images [N, img_channels, R, R] -> logits [N, out_features]."""

    def __init__(
        self,
        img_resolution: int,          # Input side, a power of two >= 4.
        img_channels: int = 3,        # Input channels.
        channel_base: int = 16384,    # Channels at resolution r: min(channel_base // r, channel_max) = 2 * fmap_base.
        channel_max: int = 512,       # Upper bound on channels (NVIDIA's fmap_max).
        dense_features: int = 512,    # Width of the first dense layer (NVIDIA's nf(0) = min(fmap_base, fmap_max)).
        out_features: int = 1,        # Logits out.
        blur: bool = True,            # [1, 2, 1] blur before each downsampling conv (D_basic) or none (D_paper).
        mbstd_group_size: int = 4,    # Minibatch standard deviation group size; 0 = no minibatch stddev layer.
        mbstd_num_features: int = 1,  # Minibatch standard deviation channels.
    ):
        super().__init__()
        check_img_resolution(img_resolution)
        self.config = dict(
            img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
            channel_max=channel_max, dense_features=dense_features, out_features=out_features, blur=blur,
            mbstd_group_size=mbstd_group_size, mbstd_num_features=mbstd_num_features,
        )
        self.img_resolution = img_resolution
        self.img_channels = img_channels

        def ch(r: int) -> int:
            return channels_at(r, channel_base, channel_max)

        self.from_rgb = EqualizedConv2d(img_channels, ch(img_resolution), 1)
        blocks, res = [], img_resolution
        while res > 4:
            blocks.append(DownBlock(ch(res), ch(res // 2), blur))
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        c4 = ch(4)
        use_mbstd = mbstd_group_size > 1
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_features) if use_mbstd else None
        self.conv = EqualizedConv2d(c4 + (mbstd_num_features if use_mbstd else 0), c4, 3)
        self.fc = EqualizedLinear(c4 * 16, dense_features)
        self.out = EqualizedLinear(dense_features, out_features, gain=1.0)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:  # -> [N, out_features]
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"images must have shape [N, {', '.join(map(str, expected))}], got {list(img.shape)}")
        x = leaky_relu(self.from_rgb(img))
        for block in self.blocks:
            x = block(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = leaky_relu(self.conv(x))              # [N, c4, 4, 4]
        x = leaky_relu(self.fc(x.flatten(1)))     # [N, dense_features]
        return self.out(x)


__all__ = ["DownBlock", "ProGANDiscriminator"]
