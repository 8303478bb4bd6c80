"""Colours of a toyface: skin, hair, and beard, brows, lips and shading a visible step in luminance from the skin."""

from __future__ import annotations

import numpy as np

from stylegan_core.data.toyfaces.face import HAIR_COLORS, Face

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
BALD_BROWS = np.array([0.2, 0.15, 0.12], dtype=np.float32)


def luma(color) -> float:
    return float(np.dot(np.asarray(color, dtype=np.float32), LUMA))


def darker(color, than, ratio: float, margin: float = 0.0) -> np.ndarray:
    """`color` scaled down, where needed, to at most `ratio` times the luminance of `than` and `margin` below it."""
    color = np.asarray(color, dtype=np.float32)
    limit, own = max(min(ratio * luma(than), luma(than) - margin), 0.02), luma(color)
    return color if own <= limit else color * np.float32(limit / max(own, 1e-6))


def apart(color, other, gap: float) -> np.ndarray:
    """`color` if its luminance is `gap` away from `other`'s, else moved away (lighter where there is room)."""
    color = np.asarray(color, dtype=np.float32)
    own, ref = luma(color), luma(other)
    if abs(own - ref) >= gap:
        return color
    if own > ref and ref + gap <= 0.92:
        t = (ref + gap - own) / max(1.0 - own, 1e-6)
        return color + (1.0 - color) * np.float32(t)
    return darker(color, other, 1.0, gap)


def skin_color(face: Face) -> np.ndarray:
    if face.attributes["Pale_Skin"]:
        return np.array([0.99, 0.93, 0.89], dtype=np.float32)
    light, dark = np.array([0.88, 0.68, 0.54]), np.array([0.42, 0.27, 0.18])
    return (light + (dark - light) * face.style["skin_tone"]).astype(np.float32)


def hair_color(face: Face) -> np.ndarray:
    return np.clip(np.array(HAIR_COLORS[face.hair_color()]) * face.style["hair_shade"], 0, 1).astype(np.float32)


def beard_color(face: Face, hair: np.ndarray, skin: np.ndarray) -> np.ndarray:
    return apart(hair * 0.7 if not face.attributes["Bald"] else np.array([0.22, 0.18, 0.15]), skin, 0.25)


def brow_color(face: Face, hair: np.ndarray, skin: np.ndarray) -> np.ndarray:
    return darker(hair * 0.6 if not face.attributes["Bald"] else BALD_BROWS, skin, 0.42, 0.18)


def lip_color(face: Face, skin: np.ndarray) -> np.ndarray:
    if face.attributes["Wearing_Lipstick"]:
        return np.asarray(face.style["lipstick"], dtype=np.float32)
    return darker(skin * np.array([0.8, 0.6, 0.6], dtype=np.float32), skin, 0.5, 0.18)


def shadow(skin: np.ndarray, ratio: float = 0.62, margin: float = 0.16) -> np.ndarray:
    """A shade of the skin dark enough to show on any skin tone."""
    return darker(skin * np.float32(ratio), skin, ratio, margin)


def lighter(skin: np.ndarray) -> np.ndarray:
    """A highlight on the skin, bright enough to show on any skin tone."""
    return np.minimum(skin * np.float32(1.3) + np.float32(0.12), 1.0)
