"""The arithmetic of equivariance to translating and rotating a generator's input (EQ-T, EQ-T_frac, EQ-R; Karras et
al. 2021): image transforms, their masks and the PSNR; metrics.equivariance drives the generator.

The generator draws an image with its input transformed (`G.synthesis.input.transform`); the reference is
the untransformed image, transformed afterwards: an integer shift, a fractional shift by a separable
Lanczos (windowed sinc) filter, or a rotation by a band-limited resampling filter built in the Fourier
domain. The error is accumulated only where both images are fully defined (a mask), and reported as a
PSNR for images in [-1, 1]: 20 log10(2) - 10 log10(sum sq err / sum mask). The arithmetic follows NVIDIA's
stylegan3 `metrics/equivariance.py`, so the numbers are theirs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stylegan_core.networks.fir import upfirdn2d

KINDS = ("eqt_int", "eqt_frac", "eqr")  # integer translation, fractional translation, rotation


def sinc(x: torch.Tensor) -> torch.Tensor:
    """sin(pi x) / (pi x), 1 at 0."""
    y = (x * math.pi).abs()
    z = torch.sin(y) / y.clamp(1e-30, float("inf"))
    return torch.where(y < 1e-30, torch.ones_like(x), z)


def lanczos_window(x: torch.Tensor, a: float) -> torch.Tensor:
    """sinc(x / a) inside |x| < a, 0 outside."""
    x = x.abs() / a
    return torch.where(x < 1, sinc(x), torch.zeros_like(x))


def rotation_matrix(angle: float | torch.Tensor) -> torch.Tensor:
    """[3, 3] homogeneous rotation by `angle` radians, in the image coordinates the generator's transform uses."""
    angle = torch.as_tensor(angle).to(torch.float32)
    mat = torch.eye(3, device=angle.device)
    mat[0, 0], mat[0, 1], mat[1, 0], mat[1, 1] = angle.cos(), angle.sin(), -angle.sin(), angle.cos()
    return mat


def translation_matrix(tx: float | torch.Tensor, ty: float | torch.Tensor) -> torch.Tensor:
    """[3, 3] input transform that shifts the output image by (tx, ty), in units of the image size."""
    mat = torch.eye(3)
    mat[0, 2], mat[1, 2] = -torch.as_tensor(tx, dtype=torch.float32), -torch.as_tensor(ty, dtype=torch.float32)
    return mat


def apply_integer_translation(
    x: torch.Tensor,   # [N, C, H, W]
    tx: float | torch.Tensor,  # Shift in units of the width, rounded to whole pixels.
    ty: float | torch.Tensor,  # Shift in units of the height.
) -> tuple[torch.Tensor, torch.Tensor]:  # shifted image, mask of valid pixels; both [N, C, H, W]
    _, _, h, w = x.shape
    ix = int(torch.as_tensor(tx * w).to(torch.float32).round())
    iy = int(torch.as_tensor(ty * h).to(torch.float32).round())
    z, m = torch.zeros_like(x), torch.zeros_like(x)
    if abs(ix) < w and abs(iy) < h:
        z[:, :, max(iy, 0):h + min(iy, 0), max(ix, 0):w + min(ix, 0)] = x[:, :, max(-iy, 0):h + min(-iy, 0),
                                                                          max(-ix, 0):w + min(-ix, 0)]
        m[:, :, max(iy, 0):h + min(iy, 0), max(ix, 0):w + min(ix, 0)] = 1
    return z, m


def _filter2d(x: torch.Tensor, f: torch.Tensor, padding: tuple = (0, 0, 0, 0)) -> torch.Tensor:
    """'Same'-size FIR filtering (a true convolution) plus extra padding (x0, x1, y0, y1)."""
    fh, fw = (1, f.shape[0]) if f.ndim == 1 else f.shape
    x0, x1, y0, y1 = padding
    return upfirdn2d(x, f, pad=(x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2))


def apply_fractional_translation(
    x: torch.Tensor,           # [N, C, H, W]
    tx: float | torch.Tensor,  # Shift in units of the width.
    ty: float | torch.Tensor,  # Shift in units of the height.
    a: int = 3,                # Lanczos kernel half-width in pixels.
) -> tuple[torch.Tensor, torch.Tensor]:  # shifted image, mask of pixels whose whole kernel lies inside; [N, C, H, W]
    _, _, h, w = x.shape
    tx = torch.as_tensor(tx * w).to(dtype=torch.float32, device=x.device)
    ty = torch.as_tensor(ty * h).to(dtype=torch.float32, device=x.device)
    ix, iy = int(tx.floor()), int(ty.floor())
    fx, fy = tx - ix, ty - iy
    b = a - 1
    z = torch.zeros_like(x)
    zx0, zy0, zx1, zy1 = max(ix - b, 0), max(iy - b, 0), min(ix + a, 0) + w, min(iy + a, 0) + h
    if zx0 < zx1 and zy0 < zy1:
        taps = torch.arange(a * 2, device=x.device) - b
        filter_x = (sinc(taps - fx) * sinc((taps - fx) / a)).unsqueeze(0)  # [1, 2a]
        filter_y = (sinc(taps - fy) * sinc((taps - fy) / a)).unsqueeze(1)  # [2a, 1]
        y = _filter2d(x, filter_x / filter_x.sum(), padding=(b, a, 0, 0))
        y = _filter2d(y, filter_y / filter_y.sum(), padding=(0, 0, b, a))
        y = y[:, :, max(b - iy, 0):h + b + a + min(-iy - a, 0), max(b - ix, 0):w + b + a + min(-ix - a, 0)]
        z[:, :, zy0:zy1, zx0:zx1] = y
    m = torch.zeros_like(x)
    mx0, my0, mx1, my1 = max(ix + a, 0), max(iy + a, 0), min(ix - b, 0) + w, min(iy - b, 0) + h
    if mx0 < mx1 and my0 < my1:
        m[:, :, my0:my1, mx0:mx1] = 1
    return z, m


def construct_affine_bandlimit_filter(
    mat: torch.Tensor,          # [3, 3] affine transform; its [:2, :2] part orients the output filter
    a: int = 3,                 # Lanczos window half-width (pixels).
    amax: int = 16,             # Half-width of the returned filter (pixels).
    aflt: int = 64,             # Half-width of the grid the filter is built on.
    up: int = 4,                # Upsampling factor the filter is designed for.
    cutoff_in: float = 1,       # Band limit before the transform (cycles per pixel, relative).
    cutoff_out: float = 1,      # Band limit after the transform.
) -> torch.Tensor:              # [amax * 2 * up - 1, amax * 2 * up - 1]
    """Convolution of an axis-aligned and a transformed 2-D sinc, windowed by the convolution of two Lanczos windows."""
    if not a <= amax < aflt:
        raise ValueError(f"need a <= amax < aflt, got a={a}, amax={amax}, aflt={aflt}")
    mat = torch.as_tensor(mat).to(torch.float32)
    taps = ((torch.arange(aflt * up * 2 - 1, device=mat.device) + 1) / up - aflt).roll(1 - aflt * up)
    yi, xi = torch.meshgrid(taps, taps, indexing="ij")
    xo, yo = (torch.stack([xi, yi], dim=2) @ mat[:2, :2].t()).unbind(2)
    fi = sinc(xi * cutoff_in) * sinc(yi * cutoff_in)
    fo = sinc(xo * cutoff_out) * sinc(yo * cutoff_out)
    f = torch.fft.ifftn(torch.fft.fftn(fi) * torch.fft.fftn(fo)).real
    wi = lanczos_window(xi, a) * lanczos_window(yi, a)
    wo = lanczos_window(xo, a) * lanczos_window(yo, a)
    w = torch.fft.ifftn(torch.fft.fftn(wi) * torch.fft.fftn(wo)).real
    f = f * w
    c = (aflt - amax) * up
    f = f.roll([aflt * up - 1] * 2, dims=[0, 1])[c:-c, c:-c]
    f = F.pad(f, [0, 1, 0, 1]).reshape(amax * 2, up, amax * 2, up)
    f = f / f.sum([0, 2], keepdim=True) / (up ** 2)  # each of the up x up phases sums to 1 / up^2
    return f.reshape(amax * 2 * up, amax * 2 * up)[:-1, :-1]


def apply_affine_transformation(
    x: torch.Tensor,      # [N, C, H, W]
    mat: torch.Tensor,    # [3, 3] transform of the image
    up: int = 4,          # Upsampling before bilinear resampling.
    **filter_kwargs,      # construct_affine_bandlimit_filter arguments (a, amax, ...).
) -> tuple[torch.Tensor, torch.Tensor]:  # transformed image, mask of pixels far enough inside; [N, C, H, W]
    _, _, h, w = x.shape
    mat = torch.as_tensor(mat).to(dtype=torch.float32, device=x.device)
    f = construct_affine_bandlimit_filter(mat, up=up, **filter_kwargs)
    p = f.shape[0] // 2
    theta = mat.inverse()
    theta[:2, 2] *= 2
    theta[0, 2] += 1 / up / w
    theta[1, 2] += 1 / up / h
    theta[0, :] *= w / (w + p / up * 2)
    theta[1, :] *= h / (h + p / up * 2)
    theta = theta[:2, :3].unsqueeze(0).repeat([x.shape[0], 1, 1])
    g = F.affine_grid(theta, x.shape, align_corners=False)
    fw = f.shape[-1]  # upsample by `up` with f (gain up^2), padded by p on every side
    y = upfirdn2d(x, f, up=up, pad=(p + (fw + up - 1) // 2, p + (fw - up) // 2) * 2, gain=up * up)
    z = F.grid_sample(y, g, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = torch.zeros_like(y)
    c = p * 2 + 1
    m[:, :, c:-c, c:-c] = 1
    m = F.grid_sample(m, g, mode="nearest", padding_mode="zeros", align_corners=False)
    return z, m


def apply_fractional_rotation(x: torch.Tensor, angle: float | torch.Tensor, a: int = 3,
                              **filter_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """x [N, C, H, W] rotated by `angle` radians with band-limited resampling; and its mask."""
    mat = rotation_matrix(torch.as_tensor(angle).to(dtype=torch.float32, device=x.device))
    return apply_affine_transformation(x, mat, a=a, amax=a * 2, **filter_kwargs)


def apply_fractional_pseudo_rotation(x: torch.Tensor, angle: float | torch.Tensor, a: int = 3,
                                     **filter_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """x filtered (not resampled) with the band-limiting filter of the rotation by -angle: what rotating it back
    and forth would leave of its spectrum. Returns the filtered image and its valid-pixel mask, [N, C, H, W]."""
    mat = rotation_matrix(-torch.as_tensor(angle).to(dtype=torch.float32, device=x.device))
    f = construct_affine_bandlimit_filter(mat, a=a, amax=a * 2, up=1, **filter_kwargs)
    y = _filter2d(x, f)
    m = torch.zeros_like(y)
    c = f.shape[0] // 2
    m[:, :, c:-c, c:-c] = 1
    return y, m


def psnr_from_sums(sum_sq_err: float, mask_sum: float) -> float:
    """PSNR in dB for images in [-1, 1] (peak-to-peak 2) from the masked squared error and the mask's sum."""
    if not mask_sum > 0:
        raise ValueError("no valid pixels (mask sum is 0)")
    return 20 * math.log10(2) - 10 * math.log10(sum_sq_err / mask_sum)


__all__ = [
    "KINDS", "apply_affine_transformation", "apply_fractional_pseudo_rotation", "apply_fractional_rotation",
    "apply_fractional_translation", "apply_integer_translation", "construct_affine_bandlimit_filter",
    "lanczos_window", "psnr_from_sums", "rotation_matrix", "sinc", "translation_matrix",
]
