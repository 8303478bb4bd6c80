"""Perceptual path length math: interpolation in Z (slerp) and W (lerp), the face crop, box downsampling and
the trimmed mean of the distances."""

from __future__ import annotations

import numpy as np
import torch

DOWNSAMPLE_RULES = ("stylegan1", "ada")


def normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the normalized a, b [N, D] at t [N, 1]; the result has unit norm."""
    a, b = normalize(a), normalize(b)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = normalize(b - d * a)
    return normalize(a * torch.cos(p) + c * torch.sin(p))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def crop_face(images: torch.Tensor) -> torch.Tensor:
    """Rows [3H/8, 7H/8), columns [H/4, 3H/4): the face region of FFHQ-aligned images."""
    c = images.shape[2] // 8
    return images[:, :, c * 3:c * 7, c * 2:c * 6]


def box_downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean over factor x factor boxes."""
    if factor <= 1:
        return images
    n, ch, h, w = images.shape
    return images.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


def downsample_factor(cropped_size: int, resolution: int, rule: str) -> int:
    """'stylegan1': cropped_H // 256 when the crop exceeds 256; 'ada': img_resolution // 256."""
    if rule == "stylegan1":
        return cropped_size // 256 if cropped_size > 256 else 1
    return max(resolution // 256, 1)


def downsample_rules_agree(resolution: int) -> bool:
    """Whether both rules downsample the face crop (4 * (H // 8) rows) of an H-px image by the same factor: true
    below 512 px, where neither downsamples."""
    cropped = 4 * (resolution // 8)
    return downsample_factor(cropped, resolution, "stylegan1") == downsample_factor(cropped, resolution, "ada")


def trimmed_mean(distances: np.ndarray) -> float:
    """Mean of the distances between the 1st (lower) and 99th (higher) percentiles, inclusive."""
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    return float(distances[(distances >= lo) & (distances <= hi)].mean())
