"""Building blocks named after the StyleGAN paper: equalized-lr layers, pixel/instance norm, blur, noise, AdaIN."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # He gain for leaky ReLU, as NVIDIA uses for every activated layer


class EqualizedLinear(nn.Module):
    """Dense layer with the equalized learning rate: weights ~ N(0, 1/lr_mul), scaled at run time."""

    def __init__(
        self,
        in_features: int,        # Input width.
        out_features: int,       # Output width.
        gain: float = LRELU_GAIN,  # Runtime weight scale numerator: gain / sqrt(fan_in).
        lr_mul: float = 1.0,     # Learning-rate multiplier (0.01 in the mapping network).
        bias_init: float = 0.0,  # Initial value of the bias.
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain = gain / math.sqrt(in_features) * lr_mul
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in] -> [N, out]
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, gain={self.weight_gain:.4g}"


class EqualizedConv2d(nn.Module):
    """Convolution with the equalized learning rate; 'same' padding, optional bias."""

    def __init__(
        self,
        in_channels: int,         # Input channels.
        out_channels: int,        # Output channels.
        kernel_size: int,         # Square kernel width (1 or 3 here).
        gain: float = LRELU_GAIN,  # Runtime weight scale numerator: gain / sqrt(fan_in).
        bias: bool = True,        # Add a learned per-channel bias (init 0)?
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in, H, W] -> [N, out, H, W]
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Normalize each vector to unit second moment: x / sqrt(mean(x^2) + eps)."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, D] -> [N, D]
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean, unit (biased) variance per sample and channel, as StyleGAN1's instance_norm."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)


class Blur(nn.Module):
    """Depthwise low-pass filter [1,2,1] x [1,2,1] / 16, 'same' padding."""

    def __init__(self):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (k[:, None] * k[None, :] / 16.0)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> same
        c = x.shape[1]
        return F.conv2d(x, self.kernel.expand(c, 1, 3, 3), padding=1, groups=c)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling (StyleGAN1's upscale2d)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample2x(x: torch.Tensor) -> torch.Tensor:
    """2x2 box average (StyleGAN1's downscale2d)."""
    return F.avg_pool2d(x, 2)


class NoiseInjection(nn.Module):
    """Adds one N(0, 1) map per sample, scaled by a learned per-channel (or single, see `channels`) strength (init 0)."""

    def __init__(
        self,
        channels: int | None,  # Feature maps the noise is added to; None = one strength for all (shape []).
        resolution: int,       # Side of the feature maps; also the size of the 'const' buffer.
    ):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros([] if channels is None else channels))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, noise_mode: str = "random", noise: torch.Tensor | None = None) -> torch.Tensor:
        """x [N, C, H, W]; an explicit `noise` [N, 1, H, W] replaces the 'random' draw."""
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const
        elif noise_mode != "random":
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', not {noise_mode!r}")
        elif noise is None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        strength = self.strength.view(1, -1, 1, 1) if self.strength.ndim else self.strength  # [1, C, 1, 1] or []
        return x + noise * strength


class AdaIN(nn.Module):
    """Adaptive instance normalization: instance-normalize, then x * (1 + s) + b from an affine of w."""

    def __init__(
        self,
        w_dim: int,     # Width of the intermediate latent w.
        channels: int,  # Feature maps being styled.
    ):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # [N, C, H, W], [N, w_dim]
        style = self.affine(w)  # [N, 2C]
        scale, bias = style.unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return instance_norm(x) * (1.0 + scale) + bias


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)
