"""Anti-aliased 2-D drawing on a float RGB canvas: signed distances of simple shapes, strokes, blur."""

from __future__ import annotations

import numpy as np


class Canvas:
    """An [R, R, 3] float32 image in [0, 1] over face coordinates u = (x - cx) / s, v = (y - cy) / s.

    Image coordinates x, y run over [-1, 1] (pixel centres), y pointing down. Shapes are given as signed
    distances in face units; coverage ramps over one pixel, which anti-aliases every edge.
    """

    def __init__(self, resolution: int, cx: float = 0.0, cy: float = 0.0, scale: float = 1.0):
        pixel = 2.0 / resolution
        axis = (np.arange(resolution, dtype=np.float32) + 0.5) * pixel - 1.0
        self.u = ((axis[None, :] - cx) / scale).repeat(resolution, 0)  # [R, R]
        self.v = ((axis[:, None] - cy) / scale).repeat(resolution, 1)  # [R, R]
        self.pixel = pixel / scale
        self.image = np.zeros((resolution, resolution, 3), dtype=np.float32)

    def coverage(self, sdf: np.ndarray) -> np.ndarray:
        return np.clip(0.5 - sdf / self.pixel, 0.0, 1.0)

    def paint(self, sdf_or_mask: np.ndarray, color, alpha: float = 1.0, *, mask: bool = False) -> None:
        """Blend `color` where the shape is (coverage from a signed distance, or a given [0, 1] mask)."""
        cov = sdf_or_mask if mask else self.coverage(sdf_or_mask)
        if alpha != 1.0:
            cov = cov * alpha
        self.image += (np.asarray(color, dtype=np.float32) - self.image) * cov[..., None]

    # Signed distances (negative inside), in face units.
    def ellipse(self, cx: float, cy: float, rx: float, ry: float, power: float = 2.0) -> np.ndarray:
        du, dv = np.abs(self.u - cx) / rx, np.abs(self.v - cy) / ry
        return ((du ** power + dv ** power) ** (1.0 / power) - 1.0) * min(rx, ry)

    def ring(self, cx: float, cy: float, rx: float, ry: float, width: float) -> np.ndarray:
        return np.abs(self.ellipse(cx, cy, rx, ry)) - width / 2

    def box(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        du = np.maximum(x0 - self.u, self.u - x1)
        dv = np.maximum(y0 - self.v, self.v - y1)
        return np.maximum(du, dv)

    def rhombus(self, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        return (np.abs(self.u - cx) / rx + np.abs(self.v - cy) / ry - 1.0) * min(rx, ry) * 0.7

    def polyline(self, points: np.ndarray, width: float) -> np.ndarray:
        """Distance to a polyline of points [K, 2] minus half the width (a stroke)."""
        points = np.asarray(points, dtype=np.float32)
        a, e = points[:-1, :, None, None], (points[1:] - points[:-1])[:, :, None, None]
        du, dv = self.u - a[:, 0], self.v - a[:, 1]
        t = np.clip((du * e[:, 0] + dv * e[:, 1]) / np.maximum(e[:, 0] ** 2 + e[:, 1] ** 2, 1e-12), 0.0, 1.0)
        return np.hypot(du - t * e[:, 0], dv - t * e[:, 1]).min(axis=0) - width / 2

    def to_uint8(self) -> np.ndarray:
        return (np.clip(self.image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def curve(x0: float, x1: float, y_of_t, num: int = 9) -> np.ndarray:
    """Points [num, 2] along x in [x0, x1], y given as a function of t in [-1, 1]."""
    t = np.linspace(-1.0, 1.0, num)
    return np.stack([x0 + (t + 1) / 2 * (x1 - x0), y_of_t(t)], axis=1)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an [H, W, C] image with edge replication."""
    radius = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    padded = np.pad(image, ((radius, radius), (0, 0), (0, 0)), mode="edge")
    image = sum(k[i] * padded[i:i + image.shape[0]] for i in range(len(k)))
    padded = np.pad(image, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(k[i] * padded[:, i:i + image.shape[1]] for i in range(len(k)))
