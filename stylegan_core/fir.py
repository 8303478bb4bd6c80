"""FIR resampling of StyleGAN2: upsample, pad, filter, downsample (upfirdn2d) and the x2 resampling convolutions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

RESAMPLE_TAPS = (1, 3, 3, 1)  # NVIDIA's default low-pass filter (binomial, separable)


def setup_filter(taps=RESAMPLE_TAPS) -> torch.Tensor:
    """2-D separable filter [k, k]: outer product of the taps, normalized to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = f[:, None] * f[None, :]
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,       # [N, C, H, W]
    f: torch.Tensor,       # [fh, fw] filter
    up: int = 1,           # Zero-insertion upsampling factor.
    down: int = 1,         # Subsampling factor (keep every down-th pixel).
    pad: tuple = (0, 0),   # Zeros (negative = crop) before / after, same on both axes, on the upsampled grid.
    gain: float = 1.0,     # Overall scale of the filter (up**2 keeps the signal magnitude when upsampling).
) -> torch.Tensor:         # [N, C, (H * up + p0 + p1 - fh + 1) / down, ...]
    """Upsample by zero insertion, pad, convolve with `f` (a true convolution), subsample."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0):x.shape[2] - max(-p1, 0), max(-p0, 0):x.shape[3] - max(-p1, 0)]
    kernel = (f * gain).flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, *f.shape)
    x = F.conv2d(x, kernel, groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 upsampling with the FIR filter: [N, C, H, W] -> [N, C, 2H, 2W] (the skip generator's image path)."""
    fw = f.shape[-1]
    return upfirdn2d(x, f, up=2, pad=((fw + 1) // 2, (fw - 2) // 2), gain=4)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 downsampling with the FIR filter: [N, C, H, W] -> [N, C, H/2, W/2]."""
    fw = f.shape[-1]
    return upfirdn2d(x, f, down=2, pad=((fw - 1) // 2, (fw - 2) // 2))


def conv2d_up2(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """x2 upsampling convolution: stride-2 transposed conv, then the FIR filter (gain 4).

    x [N, in, H, W], w [out, in / groups, k, k] -> [N, out, 2H, 2W]; equals zero insertion, FIR filter,
    then a true 'same' convolution with w, in one cheaper pass (NVIDIA's conv2d_resample fast path).
    """
    out_ch, in_per_group, k, _ = w.shape
    wt = w.reshape(groups, out_ch // groups, in_per_group, k, k).transpose(1, 2)
    wt = wt.reshape(groups * in_per_group, out_ch // groups, k, k)  # [in, out / groups, k, k]
    x = F.conv_transpose2d(x, wt, stride=2, groups=groups)        # [N, out, 2H + k - 2, 2W + k - 2]
    fw, p = f.shape[-1], k // 2
    return upfirdn2d(x, f, pad=(p + (fw + 1) // 2 - (k - 1), p + (fw - 2) // 2 - (k - 2)), gain=4)


def conv2d_down2(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """x2 downsampling convolution: FIR filter with padding, then a stride-2 conv. [N, in, H, W] -> [N, out, H/2, W/2]."""
    fw, p = f.shape[-1], w.shape[-1] // 2
    x = upfirdn2d(x, f, pad=(p + (fw - 1) // 2, p + (fw - 2) // 2))
    return F.conv2d(x, w, stride=2)
