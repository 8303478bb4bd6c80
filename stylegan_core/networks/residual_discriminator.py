"""StyleGAN2 residual discriminator: fromRGB, residual blocks with FIR downsampling, minibatch-stddev epilogue."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.networks.discriminator import DiscriminatorBase
from stylegan_core.networks.fir import conv2d_down2, setup_filter
from stylegan_core.networks.layers import LRELU_GAIN, LRELU_SLOPE


class ConvLayer(nn.Module):
    """Equalized-lr conv, optional x2 FIR downsampling, then bias and leaky ReLU * sqrt(2) * gain (NVIDIA's Conv2dLayer)."""

    def __init__(
        self,
        in_channels: int,         # Input channels.
        out_channels: int,        # Output channels.
        kernel_size: int,         # Square kernel width (1 or 3).
        bias: bool = True,        # Learned per-channel bias (init 0)?
        activate: bool = True,    # Leaky ReLU with gain sqrt(2), else linear.
        down: bool = False,       # x2 downsampling (FIR filter, then stride-2 conv).
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activate = activate
        self.down = down
        self.register_buffer("resample_filter", setup_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:  # [N, in, H, W] -> [N, out, H or H/2, ...]
        w = self.weight * self.weight_gain
        if self.down:
            x = conv2d_down2(x, w, self.resample_filter)
        else:
            x = F.conv2d(x, w, padding=w.shape[-1] // 2)
        if self.bias is not None:
            x = x + self.bias.view(1, -1, 1, 1)
        if self.activate:
            return F.leaky_relu(x, LRELU_SLOPE) * (LRELU_GAIN * gain)
        return x * gain if gain != 1 else x


class ResidualBlock(nn.Module):
    """conv3x3 -> conv3x3 with x2 down, plus a 1x1 downsampled skip; both branches scaled by sqrt(1/2)."""

    def __init__(
        self,
        in_channels: int,   # Channels coming in (= this resolution's channels).
        out_channels: int,  # Channels at half the resolution.
    ):
        super().__init__()
        self.conv0 = ConvLayer(in_channels, in_channels, 3)
        self.conv1 = ConvLayer(in_channels, out_channels, 3, down=True)
        self.skip = ConvLayer(in_channels, out_channels, 1, bias=False, activate=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in, H, W] -> [N, out, H/2, W/2]
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class ResidualDiscriminator(DiscriminatorBase):
    """images [N, img_channels, R, R] -> one logit per image [N, 1] (NVIDIA's StyleGAN2 'resnet' D)."""

    conv_layer = ConvLayer             # bias and leaky ReLU inside the layer
    block_layer = ResidualBlock
    fc_gain = 1.0

    def __init__(
        self,
        img_resolution: int,          # Input side, a power of two >= 4.
        img_channels: int = 3,        # Input channels.
        channel_base: int = 32768,    # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max: int = 512,       # Upper bound on channels.
        mbstd_group_size: int = 4,    # Minibatch standard deviation group size.
        mbstd_num_features: int = 1,  # Minibatch standard deviation channels.
    ):
        super().__init__(img_resolution, img_channels, channel_base, channel_max, mbstd_group_size, mbstd_num_features)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        self.check_images(img)
        x = self.from_rgb(img)
        for block in self.blocks:
            x = block(x)
        x = self.conv(self.mbstd(x))                                   # [N, c4, 4, 4]
        x = F.leaky_relu(self.fc(x.flatten(1)), LRELU_SLOPE) * LRELU_GAIN  # bias before the activation, as NVIDIA
        return self.out(x)                                             # [N, 1]
