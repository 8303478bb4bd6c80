"""Image conversions shared by the trainer, the CLI and the metrics: uint8, grids, atomic PNG writes."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image

from stylegan_core.files import atomic_write


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [-1, 1] by x / 127.5 - 1 (real images into the networks)."""
    return images.float() / 127.5 - 1


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 by (x * 127.5 + 128).clamp(0, 255), the rule every metric shares."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def make_grid(images: torch.Tensor, cols: int | None = None) -> np.ndarray:
    """uint8 [N, C, H, W] -> one HWC uint8 array laid out in rows of `cols` (default ~sqrt(N))."""
    n, c, h, w = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = torch.zeros(rows * cols, c, h, w, dtype=torch.uint8)
    grid[:n] = images.cpu()
    grid = grid.view(rows, cols, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c)
    return grid.numpy()


def atomic_save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write an HWC (or HW) uint8 array as PNG via a temporary file and rename."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    with atomic_write(path) as f:
        Image.fromarray(array).save(f, format="PNG")
