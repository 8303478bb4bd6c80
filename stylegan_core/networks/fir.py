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
    x: torch.Tensor,                # [N, C, H, W]
    f: torch.Tensor | None,         # [fh, fw] filter, [taps] separable filter (applied along W, then H), or None = identity
    up: int = 1,                    # Zero-insertion upsampling factor.
    down: int = 1,                  # Subsampling factor (keep every down-th pixel).
    pad: tuple = (0, 0),            # Zeros (negative = crop) on the upsampled grid: (before, after) on both axes,
                                    # or (x_before, x_after, y_before, y_after).
    gain: float = 1.0,              # Overall scale of the filter (up**2 keeps the signal magnitude when upsampling).
) -> torch.Tensor:                  # [N, C, (H * up + y0 + y1 - fh + 1) / down, (W * up + x0 + x1 - fw + 1) / down]
    """Upsample by zero insertion, pad, convolve with `f` (a true convolution), subsample."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = tuple(pad) * 2 if len(pad) == 2 else tuple(pad)
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0):x.shape[2] - max(-y1, 0), max(-x0, 0):x.shape[3] - max(-x1, 0)]
    if f is not None:
        f = (f * gain ** (f.ndim / 2)).flip(list(range(f.ndim))).to(x.dtype)  # flipped: a true convolution
        if f.ndim == 2:
            x = F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c)
        else:  # separable: the same taps along W, then along H
            x = F.conv2d(x, f.view(1, 1, 1, -1).expand(c, 1, 1, f.numel()), groups=c)
            x = F.conv2d(x, f.view(1, 1, -1, 1).expand(c, 1, f.numel(), 1), groups=c)
    elif gain != 1:
        x = x * gain
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
