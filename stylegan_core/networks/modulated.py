"""StyleGAN2 layers: modulated convolution with weight demodulation, scalar-strength noise, ToRGB."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.networks.fir import conv2d_up2
from stylegan_core.networks.layers import LRELU_GAIN, LRELU_SLOPE, EqualizedLinear, NoiseInjection

DEMOD_EPS = 1e-8


def modulated_conv2d(
    x: torch.Tensor,                     # [N, in, H, W]
    weight: torch.Tensor,                # [out, in, k, k]
    styles: torch.Tensor,                # [N, in] per-sample input-channel scales s
    demodulate: bool = True,             # Scale each output channel by d = rsqrt(sum w'^2 + 1e-8)?
    up: bool = False,                    # x2 upsampling (transposed conv + FIR filter `resample_filter`)?
    resample_filter: torch.Tensor | None = None,  # [fk, fk], needed when up
    fused: bool = True,                  # One grouped conv with per-sample weights, or scale activations around one shared conv.
) -> torch.Tensor:                       # [N, out, H or 2H, W or 2W]
    """w' = w * s (per sample); with demodulation the output is conv(x, w') * d, d = rsqrt(sum w'^2 + eps)."""
    n, in_ch = styles.shape
    out_ch, _, k, _ = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)    # [N, out, in, k, k]
    dcoefs = (w.square().sum(dim=(2, 3, 4)) + DEMOD_EPS).rsqrt() if demodulate else None  # [N, out]
    if fused:
        if dcoefs is not None:
            w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
        x = x.reshape(1, n * in_ch, *x.shape[2:])
        w = w.reshape(n * out_ch, in_ch, k, k)
        x = conv2d_up2(x, w, resample_filter, groups=n) if up else F.conv2d(x, w, padding=k // 2, groups=n)
        return x.reshape(n, out_ch, *x.shape[2:])
    x = x * styles.reshape(n, in_ch, 1, 1)
    x = conv2d_up2(x, weight, resample_filter) if up else F.conv2d(x, weight, padding=k // 2)
    return x * dcoefs.reshape(n, out_ch, 1, 1) if dcoefs is not None else x


class ModulatedConv2d(nn.Module):
    """Convolution whose input channels are scaled per sample by a style s = affine(w)."""

    def __init__(
        self,
        in_channels: int,          # Input channels.
        out_channels: int,         # Output channels.
        w_dim: int,                # Width of w.
        kernel_size: int = 3,      # Square kernel width.
        demodulate: bool = True,   # Weight demodulation (off for ToRGB).
        up: bool = False,          # x2 FIR upsampling inside the convolution.
    ):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.demodulate = demodulate
        self.up = up
        # Without demodulation the equalized-lr scale 1/sqrt(fan_in) goes on the styles (as NVIDIA's ToRGB).
        self.style_gain = 1.0 if demodulate else 1 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = True,
                resample_filter: torch.Tensor | None = None) -> torch.Tensor:  # [N, in, H, W], [N, w_dim]
        styles = self.affine(w) * self.style_gain  # [N, in]
        return modulated_conv2d(x, self.weight, styles, self.demodulate, self.up, resample_filter, fused)


class ScalarNoiseInjection(NoiseInjection):
    """Adds one N(0, 1) map per sample times a single learned strength (init 0), StyleGAN2's per-layer noise."""

    def __init__(
        self,
        resolution: int,  # Side of the feature maps; also the size of the 'const' buffer.
    ):
        super().__init__(None, resolution)  # strength: one scalar, shape [] (NVIDIA's noise_strength)


def bias_act(x: torch.Tensor, bias: torch.Tensor, activate: bool, clamp: float | None) -> torch.Tensor:
    """x + bias, then (optionally) leaky ReLU times sqrt(2), then (optionally) clamp to +-clamp (NVIDIA's bias_act)."""
    x = x + bias.reshape(1, -1, 1, 1)
    if activate:
        x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
    return x.clamp(-clamp, clamp) if clamp is not None else x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally x2 up) -> noise -> bias -> leaky ReLU (gain sqrt 2) -> optional clamp."""

    def __init__(
        self,
        in_channels: int,                  # Channels coming in.
        out_channels: int,                 # Channels going out.
        w_dim: int,                        # Width of w.
        resolution: int,                   # Output side length.
        up: bool = False,                  # x2 upsampling before this layer's resolution.
        conv_clamp: float | None = None,   # Clamp the activations to +-X (NVIDIA's conv_clamp); None = off.
    ):
        super().__init__()
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.conv = ModulatedConv2d(in_channels, out_channels, w_dim, kernel_size=3, up=up)
        self.noise = ScalarNoiseInjection(resolution)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", noise: torch.Tensor | None = None,
                fused: bool = True, resample_filter: torch.Tensor | None = None) -> torch.Tensor:
        x = self.conv(x, w, fused=fused, resample_filter=resample_filter)  # [N, out, res, res]
        x = self.noise(x, noise_mode, noise)
        return bias_act(x, self.bias, activate=True, clamp=self.conv_clamp)


class ModulatedToRGB(nn.Module):
    """1x1 modulated convolution to image channels, no demodulation, linear output (+ optional clamp)."""

    def __init__(
        self,
        in_channels: int,                  # Feature maps coming in.
        img_channels: int,                 # Image channels going out.
        w_dim: int,                        # Width of w.
        conv_clamp: float | None = None,   # Clamp the output to +-X; None = off.
    ):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.conv = ModulatedConv2d(in_channels, img_channels, w_dim, kernel_size=1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = True) -> torch.Tensor:  # -> [N, img_channels, H, W]
        return bias_act(self.conv(x, w, fused=fused), self.bias, activate=False, clamp=self.conv_clamp)
