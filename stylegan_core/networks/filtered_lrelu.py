"""StyleGAN3's alias-free nonlinearity: windowed-sinc low-pass filters and the filtered leaky ReLU.

A layer works on a continuous signal sampled at rate `s`. The leaky ReLU creates frequencies above
s / 2, so it is applied at a temporarily higher rate: upsample (zero insertion + low-pass `fu`),
leaky ReLU, then low-pass `fd` and subsample to the output rate (Karras et al. 2021, sec. 3.2).
The filters are Kaiser-windowed sinc filters, separable ([taps]); the rotation-equivariant config R
uses a radially symmetric jinc filter ([taps, taps]) for downsampling.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.special
import torch
import torch.nn.functional as F

from stylegan_core.networks.fir import upfirdn2d


def design_lowpass_filter(
    numtaps: int,           # Filter length; 1 = identity (None).
    cutoff: float,          # Cutoff frequency f_c (same unit as fs).
    width: float,           # Transition band width, 2 f_h.
    fs: float,              # Sampling rate the filter runs at.
    radial: bool = False,   # Radially symmetric 2-D jinc filter instead of a separable sinc.
) -> torch.Tensor | None:   # [numtaps] (separable), [numtaps, numtaps] (radial) or None; float32, sums to 1
    """Kaiser-windowed low-pass filter, the window's beta chosen for the transition width (Kaiser's formula)."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    if not radial:
        return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))  # [numtaps, numtaps] distance from the centre
    safe_r = np.where(r > 0, r, 1.0)
    f = np.where(r > 0, scipy.special.j1(2 * np.pi * cutoff * safe_r) / (np.pi * safe_r), cutoff)  # jinc; r -> 0: cutoff
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    return torch.as_tensor(f / np.sum(f), dtype=torch.float32)


def filtered_lrelu(
    x: torch.Tensor,                # [N, C, H, W]
    fu: torch.Tensor | None,        # Upsampling filter: [taps], [taps, taps] or None (identity).
    fd: torch.Tensor | None,        # Downsampling filter: [taps], [taps, taps] or None (identity).
    bias: torch.Tensor,             # [C], added first.
    up: int = 1,                    # Upsampling factor (zero insertion before fu).
    down: int = 1,                  # Downsampling factor (subsampling after fd).
    padding: tuple = (0, 0, 0, 0),  # (x_before, x_after, y_before, y_after) on the upsampled grid; negative = crop.
    gain: float = 2 ** 0.5,         # Scale after the activation.
    slope: float = 0.2,             # Leaky ReLU slope for negative values (1 = linear).
    clamp: float | None = None,     # Clamp to +-clamp after the activation; None = off.
) -> torch.Tensor:                  # [N, C, (H * up + y0 + y1 - fu_h - fd_h + 2 + down - 1) // down, ...]
    """bias -> upsample + fu (gain up^2) -> leaky ReLU * gain -> clamp -> fd + downsample."""
    if x.ndim != 4 or bias.shape != (x.shape[1],):
        raise ValueError(f"x must be [N, C, H, W] with a bias of [C]; got {list(x.shape)} and {list(bias.shape)}")
    x = x + bias.to(x.dtype).view(1, -1, 1, 1)
    x = upfirdn2d(x, fu, up=up, pad=tuple(padding), gain=up ** 2)  # [N, C, H * up + pads - fu + 1, ...]
    x = F.leaky_relu(x, slope) * gain if slope != 1 else x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down)
