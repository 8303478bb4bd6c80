"""Image conversions shared by the trainer, the CLI and the metrics: uint8, grids, atomic PNG writes."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylegan_core.errors import InputError
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
    atomic_save_image(array, path, fmt="PNG")


def image_format(path: str | os.PathLike) -> str | None:
    """The PIL format a file name's suffix stands for ('grid.jpg' -> 'JPEG'), None when it names none."""
    Image.init()
    return Image.registered_extensions().get(Path(path).suffix.lower())


def atomic_save_image(array: np.ndarray, path: str | os.PathLike, fmt: str | None = None) -> None:
    """Write an HWC (or HW) uint8 array in the format of `path`'s suffix (or the PIL format `fmt`), atomically."""
    fmt = fmt or image_format(path)
    if fmt is None:
        raise InputError(f"{path}: the suffix names no image format (use .png, .jpg, ...)")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    with atomic_write(path) as f:
        Image.fromarray(array).save(f, format=fmt)
