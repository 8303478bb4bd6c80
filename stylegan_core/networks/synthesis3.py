"""StyleGAN3 synthesis network (Alias-Free GAN, configs T and R): Fourier-feature input, modulated
convolutions, filtered leaky ReLU; inference only, computed in float32 throughout."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.networks.filtered_lrelu import design_lowpass_filter, filtered_lrelu
from stylegan_core.networks.layers import EqualizedLinear

DEMOD_EPS = 1e-8


def modulated_conv2d(
    x: torch.Tensor,                 # [N, in, H, W]
    weight: torch.Tensor,            # [out, in, k, k]
    styles: torch.Tensor,            # [N, in]
    demodulate: bool,                # Normalize each output channel's modulated weights to unit norm?
    padding: int,                    # Zeros on every side (k - 1: a 'full' convolution).
    input_gain: torch.Tensor,        # [] scale of the input (1 / its running RMS).
) -> torch.Tensor:                   # [N, out, H + 2 padding - k + 1, W + ...]
    """StyleGAN3's modulated convolution: weights and styles pre-normalized to unit RMS before demodulation."""
    n, in_ch = styles.shape
    out_ch, _, k, _ = weight.shape
    if demodulate:
        weight = weight * weight.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()  # one scale for the whole batch, as NVIDIA
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, out, in, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=(2, 3, 4), keepdim=True) + DEMOD_EPS).rsqrt()
    w = w * input_gain
    x = F.conv2d(x.reshape(1, n * in_ch, *x.shape[2:]), w.reshape(n * out_ch, in_ch, k, k), padding=padding, groups=n)
    return x.reshape(n, out_ch, *x.shape[2:])


class SynthesisInput(nn.Module):
    """Fourier features: `channels` sinusoids of random frequency (in a disc of radius `bandwidth`) and phase,
    rotated and translated per sample by an affine of w, then by the user's `transform`, then mixed linearly."""

    def __init__(
        self,
        w_dim: int,             # Width of w.
        channels: int,          # Number of Fourier features (and output channels).
        size: int,              # Output side in samples.
        sampling_rate: float,   # Samples per unit length of the output.
        bandwidth: float,       # Radius of the frequency disc (the first layer's cutoff).
    ):
        super().__init__()
        self.channels, self.size = channels, size
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn(channels, 2)  # directions uniform; radii so that the density is uniform on the disc
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = EqualizedLinear(w_dim, 4, gain=1.0)  # (r_c, r_s, t_x, t_y), starts as the identity
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))   # [3, 3] user-set inverse transform of the output image
        self.register_buffer("freqs", freqs)              # [C, 2] cycles per unit length
        self.register_buffer("phases", torch.rand(channels) - 0.5)  # [C] in cycles

    def forward(self, w: torch.Tensor) -> torch.Tensor:   # [N, w_dim] -> [N, C, size, size]
        n = w.shape[0]
        t = self.affine(w)                                  # [N, 4]
        t = t / t[:, :2].norm(dim=1, keepdim=True)          # unit rotation part
        m_r = torch.eye(3, device=w.device).repeat(n, 1, 1)  # [N, 3, 3] inverse rotation of the image
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=w.device).repeat(n, 1, 1)  # [N, 3, 3] inverse translation of the image
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)  # rotate, then translate, then the user's transform
        freqs = self.freqs.unsqueeze(0)                                        # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transforms[:, :2, :2]                                  # [N, C, 2]
        # Fade out frequencies that the user's transform pushed beyond the band (between bandwidth and s / 2).
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)  # [1, H, W, 2]
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = torch.sin((x + phases.unsqueeze(1).unsqueeze(2)) * (2 * math.pi)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / math.sqrt(self.channels)).t()  # [N, H, W, C]
        return x.permute(0, 3, 1, 2)


class AliasFreeLayer(nn.Module):
    """Modulated conv -> filtered leaky ReLU (up, activate, down) -> clamp; the last one is ToRGB (1x1, linear)."""

    def __init__(
        self,
        w_dim: int,                          # Width of w.
        is_torgb: bool,                      # Final ToRGB layer: 1x1 conv, no demodulation, no activation or filters.
        is_critically_sampled: bool,         # Cutoff at s / 2 (the last layers): never a radial filter.
        in_channels: int,                    # Channels coming in.
        out_channels: int,                   # Channels going out.
        in_size: int,                        # Input side in samples (including margins).
        out_size: int,                       # Output side in samples.
        in_sampling_rate: int,               # Input sampling rate s.
        out_sampling_rate: int,              # Output sampling rate.
        in_cutoff: float,                    # Input cutoff f_c.
        out_cutoff: float,                   # Output cutoff.
        in_half_width: float,                # Input transition band half-width f_h.
        out_half_width: float,               # Output transition band half-width.
        conv_kernel: int = 3,                # Convolution kernel size (ToRGB: 1).
        filter_size: int = 6,                # Filter taps per sample of the lower rate when resampling.
        lrelu_upsampling: int = 2,           # The activation runs at this multiple of the higher rate.
        use_radial_filters: bool = False,    # Radial downsampling filter (config R), except critically sampled layers.
        conv_clamp: float | None = 256,      # Clamp to +-X after the activation; None = off.
    ):
        super().__init__()
        self.is_torgb, self.in_size, self.out_size = is_torgb, in_size, out_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.up_factor = int(round(tmp_sampling_rate / in_sampling_rate))
        self.down_factor = int(round(tmp_sampling_rate / out_sampling_rate))
        if (in_sampling_rate * self.up_factor != tmp_sampling_rate
                or out_sampling_rate * self.down_factor != tmp_sampling_rate):
            raise ValueError("sampling rates must divide the activation's rate")
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.conv_kernel, self.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))  # running mean square of the input (from training)
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("up_filter", design_lowpass_filter(up_taps, in_cutoff, in_half_width * 2, tmp_sampling_rate))
        self.register_buffer("down_filter", design_lowpass_filter(
            down_taps, out_cutoff, out_half_width * 2, tmp_sampling_rate, radial=self.down_radial))
        # Padding so that the output has out_size samples, centred as in the paper's appendix C.3.
        pad_total = (out_size - 1) * self.down_factor + 1                   # size needed before subsampling
        pad_total -= (in_size + self.conv_kernel - 1) * self.up_factor      # size after the full conv and upsampling
        pad_total += up_taps + down_taps - 2                                # shrinkage of the two filters
        pad_lo = (pad_total + self.up_factor) // 2
        self.padding = (pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo)  # (x0, x1, y0, y1)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # [N, in, in_size, in_size], [N, w_dim]
        styles = self.affine(w)  # [N, in]
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel ** 2)
        x = modulated_conv2d(x, self.weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1,
                             input_gain=self.magnitude_ema.rsqrt())
        x = filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, up=self.up_factor, down=self.down_factor,
                           padding=self.padding, gain=1.0 if self.is_torgb else math.sqrt(2),
                           slope=1.0 if self.is_torgb else 0.2, clamp=self.conv_clamp)
        return x  # [N, out, out_size, out_size]


def layer_specs(img_resolution: int, img_channels: int, channel_base: int, channel_max: int, num_layers: int,
                num_critical: int, first_cutoff: float, first_stopband: float, last_stopband_rel: float,
                margin_size: int) -> list[dict]:
    """Per layer 0..num_layers (the last is ToRGB): sizes, rates, cutoffs, half-widths and channels.

    Cutoffs and stopbands grow geometrically up to the critically sampled last layers; each rate is the
    power of two covering twice the stopband (at most the image resolution); channels ~ base / (2 f_c).
    Index -1 describes the Fourier input (the same as layer 0's input).
    """
    last_cutoff = img_resolution / 2
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_cutoff * last_stopband_rel / first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return [dict(size=int(sizes[i]), sampling_rate=int(rates[i]), cutoff=float(cutoffs[i]), half_width=float(half_widths[i]),
                 channels=int(channels[i])) for i in range(num_layers + 1)]


class AliasFreeSynthesisNetwork(nn.Module):
    """ws [N, num_layers + 2, w_dim] -> images [N, img_channels, R, R]: Fourier input, num_layers layers, ToRGB."""

    per_sample_noise = True  # no noise at all: noise_seeds is accepted and nothing depends on the batch

    def __init__(
        self,
        w_dim: int,                          # Width of w.
        img_resolution: int,                 # Output side.
        img_channels: int,                   # Output channels.
        channel_base: int = 32768,           # Channels ~ channel_base / (2 * cutoff) ...
        channel_max: int = 512,              # ... at most this many.
        num_layers: int = 14,                # Layers between the Fourier input and ToRGB.
        num_critical: int = 2,               # Critically sampled layers at the end.
        first_cutoff: float = 2,             # Cutoff of the first layer f_c,0.
        first_stopband: float = 2 ** 2.1,    # Minimum stopband of the first layer f_t,0.
        last_stopband_rel: float = 2 ** 0.3,  # Minimum stopband of the last layer, relative to its cutoff.
        margin_size: int = 10,               # Extra samples around the image on each side.
        output_scale: float = 0.25,          # Scale of the output image.
        conv_kernel: int = 3,                # Convolution kernel (config R: 1).
        filter_size: int = 6,                # Filter taps per sample of the lower rate when resampling.
        lrelu_upsampling: int = 2,           # Rate multiple at which the activation runs.
        use_radial_filters: bool = False,    # Radial downsampling filters (config R).
        conv_clamp: float | None = 256,      # Clamp every layer's output to +-X; None = off.
    ):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_ws = num_layers + 2
        self.output_scale = output_scale
        specs = layer_specs(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                            first_cutoff, first_stopband, last_stopband_rel, margin_size)
        first = specs[0]
        self.input = SynthesisInput(w_dim, first["channels"], first["size"], first["sampling_rate"], first["cutoff"])
        layers = []
        for i, spec in enumerate(specs):
            prev = specs[max(i - 1, 0)]
            layers.append(AliasFreeLayer(
                w_dim, is_torgb=i == num_layers, is_critically_sampled=i >= num_layers - num_critical,
                in_channels=prev["channels"], out_channels=spec["channels"], in_size=prev["size"], out_size=spec["size"],
                in_sampling_rate=prev["sampling_rate"], out_sampling_rate=spec["sampling_rate"],
                in_cutoff=prev["cutoff"], out_cutoff=spec["cutoff"], in_half_width=prev["half_width"],
                out_half_width=spec["half_width"], conv_kernel=conv_kernel, filter_size=filter_size,
                lrelu_upsampling=lrelu_upsampling, use_radial_filters=use_radial_filters, conv_clamp=conv_clamp))
        self.layers = nn.ModuleList(layers)

    def forward(
        self,
        ws: torch.Tensor,                          # [N, num_ws, w_dim]
        noise_mode: str = "random",                # Accepted for the generator protocol; StyleGAN3 has no noise.
        noise_seeds: torch.Tensor | None = None,   # Accepted likewise (nothing random to seed).
    ) -> torch.Tensor:                             # [N, img_channels, R, R]
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', not {noise_mode!r}")
        ws = ws.float().unbind(dim=1)
        x = self.input(ws[0])  # [N, C0, size0, size0]
        for layer, w in zip(self.layers, ws[1:]):
            x = layer(x, w)
        return x * self.output_scale if self.output_scale != 1 else x
