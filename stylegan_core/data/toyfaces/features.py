"""Nose, mouth, cheeks (glow, cheekbones, rosiness, age folds), forehead lines and facial hair of a toyface."""

from __future__ import annotations

import numpy as np

from stylegan_core.data.toyfaces.draw import Canvas, curve
from stylegan_core.data.toyfaces.face import BEARD_KINDS, Face
from stylegan_core.data.toyfaces.palette import darker, lighter, lip_color, shadow

MOUTH_Y = 0.31
TEETH = (0.95, 0.95, 0.9)


def nose(c: Canvas, face: Face, skin: np.ndarray, du: float) -> None:
    """A long lit ridge down to a sharp tip (pointy), or a dark round ball with nostrils."""
    k = 1.75 if face.attributes["Big_Nose"] else 1.0
    shade, deep, light = shadow(skin, 0.62, 0.14), shadow(skin, 0.35, 0.22), lighter(skin)
    if face.attributes["Pointy_Nose"]:
        tip = 0.2 + 0.07 * (k - 1)
        c.paint(c.polyline(np.array([[du + 0.03 * k, 0.02], [du + 0.035 * k, tip - 0.03]]), 0.03 * k), shade)
        c.paint(c.polyline(np.array([[du - 0.004, 0.02], [du, tip - 0.025]]), 0.032 * k), light)
        tip_v = np.array([[du - 0.035 * k, tip - 0.045 * k], [du, tip], [du + 0.035 * k, tip - 0.045 * k]])
        c.paint(c.polyline(tip_v, 0.022), deep)
    else:
        c.paint(c.polyline(np.array([[du + 0.012, 0.0], [du + 0.014, 0.1]]), 0.016), shade)
        c.paint(c.ellipse(du, 0.135, 0.07 * k, 0.055 * k), shade)
        c.paint(c.ellipse(du - 0.015, 0.115, 0.02 * k, 0.016 * k), light)
        for sign in (-1.0, 1.0):
            c.paint(c.ellipse(du + sign * 0.035 * k, 0.16 + 0.012 * k, 0.019 * k, 0.013 * k), deep)


def mouth(c: Canvas, face: Face, skin: np.ndarray, du: float) -> None:
    """Two lips around a line, a dark gap with teeth (open), or a grin of teeth (smiling, closed)."""
    a = face.attributes
    smiling = a["Smiling"]
    half = 0.16 if smiling else 0.1
    bend = (lambda t: MOUTH_Y - 0.035 + 0.06 * (1 - t ** 2)) if smiling else (lambda t: MOUTH_Y + 0.006 * t ** 2)
    lip = lip_color(face, skin)
    width = 0.085 if a["Big_Lips"] else 0.04
    gap = 0.065 if a["Mouth_Slightly_Open"] else 0.0
    c.paint(c.polyline(curve(du - half, du + half, lambda t: bend(t) - gap / 2 - width / 2), width), lip)
    c.paint(c.polyline(curve(du - half * 0.9, du + half * 0.9, lambda t: bend(t) + gap / 2 + width / 2), width), lip)
    if gap:
        c.paint(c.polyline(curve(du - half * 0.85, du + half * 0.85, bend), gap), (0.2, 0.03, 0.05))
        teeth = half * (0.7 if smiling else 0.5)
        c.paint(c.polyline(curve(du - teeth, du + teeth, lambda t: bend(t) - gap * 0.22), gap * 0.45), TEETH)
    elif smiling:
        c.paint(c.polyline(curve(du - half * 0.75, du + half * 0.75, bend), 0.03), TEETH)
    else:
        c.paint(c.polyline(curve(du - half, du + half, bend), 0.01), (0.3, 0.08, 0.08))


def cheeks(c: Canvas, face: Face, skin: np.ndarray, du: float) -> None:
    """A soft glow (Attractive), lit cheekbones with a shadow under them, age folds, then rosy cheeks on top."""
    a = face.attributes
    if a["Attractive"]:
        glow = 1.0 - ((c.u - du) / 0.24) ** 2 - ((c.v + 0.01) / 0.2) ** 2
        c.paint(np.clip(glow, 0.0, 1.0) * 0.45, lighter(skin), mask=True)
    for sign in (-1.0, 1.0):
        if a["High_Cheekbones"]:
            c.paint(c.ellipse(sign * 0.21 + du, 0.05, 0.09, 0.04), lighter(skin), 0.9)
            contour = np.array([[sign * 0.34 + du, 0.05], [sign * 0.2 + du, 0.16]])
            c.paint(c.polyline(contour, 0.04), shadow(skin, 0.58, 0.16))
        if not a["Young"]:
            fold = np.array([[sign * 0.11 + du, 0.14], [sign * 0.25 + du, 0.36]])
            c.paint(c.polyline(fold, 0.04), shadow(skin, 0.58, 0.18))
        if a["Rosy_Cheeks"]:
            c.paint(c.ellipse(sign * 0.22 + du, 0.165, 0.085, 0.06), (0.92, 0.22, 0.3), 0.65)


def forehead_lines(c: Canvas, skin: np.ndarray, du: float) -> None:
    for y in (-0.22, -0.17):
        c.paint(c.polyline(curve(-0.15 + du, 0.15 + du, lambda t: y + 0.015 * t ** 2), 0.026), shadow(skin, 0.58, 0.18))


def beard(c: Canvas, face: Face, face_sdf: np.ndarray, face_rx: float, skin: np.ndarray, color: np.ndarray,
          du: float) -> None:
    """Stubble, then a full beard that leaves the chin and upper lip bare unless Goatee or Mustache fills them,
    sideburns and goatee."""
    a, s = face.attributes, face.style
    inside = c.coverage(face_sdf)
    if a["5_o_Clock_Shadow"]:
        speckle = 0.8 + 0.2 * np.cos(c.u * 97.0) * np.cos(c.v * 89.0)
        stubble = darker(skin * np.float32(0.55) + np.array([0.02, 0.03, 0.07], dtype=np.float32), skin, 0.55, 0.16)
        c.paint(inside * c.coverage(0.17 - c.v) * 0.65 * speckle, stubble, mask=True)
    if not a["No_Beard"] and (s["full_beard"] or not any(a[k] for k in BEARD_KINDS)):
        cover = inside * c.coverage(0.2 - c.v)
        if not a["Goatee"]:
            cover = cover * (1 - c.coverage(c.ellipse(du, 0.45, 0.095, 0.105)))
        if not a["Mustache"]:
            cover = cover * (1 - c.coverage(c.polyline(_mustache_points(du * 1.25), 0.08)))
        c.paint(cover, color * _texture(c)[..., None], mask=True)
    if a["Sideburns"]:
        strip = np.maximum(c.box(-face_rx, -0.1, face_rx, 0.26), face_rx - 0.085 - np.abs(c.u))
        c.paint(inside * c.coverage(strip), color, mask=True)
    if a["Goatee"]:
        c.paint(c.ellipse(du, 0.45, 0.08, 0.09), color * _texture(c)[..., None])


def mustache(c: Canvas, color: np.ndarray, du: float) -> None:
    c.paint(c.polyline(_mustache_points(du), 0.065), color)


def _mustache_points(du: float) -> np.ndarray:
    return curve(-0.14 + du, 0.14 + du, lambda t: 0.212 + 0.035 * t ** 2)


def _texture(c: Canvas) -> np.ndarray:
    return 0.85 + 0.15 * np.cos(c.u * 61.0 + c.v * 37.0)
