"""Hair and hat of a toyface: long hair behind the head, the cap and bangs over it, the hat on top."""

from __future__ import annotations

import numpy as np

from stylegan_core.data.toyfaces.draw import Canvas
from stylegan_core.data.toyfaces.face import Face
from stylegan_core.data.toyfaces.palette import shadow

# per hair kind: cap half-width beyond the face, cap half-height, long hair half-width beyond the face,
# outline bumps (count, relative amplitude)
HAIR_SHAPES = {
    "straight": (0.04, 0.42, 0.12, (0, 0.0)),
    "wavy": (0.08, 0.45, 0.19, (9, 0.08)),
    "other": (0.12, 0.49, 0.25, (15, 0.075)),
}


def hair_kind(face: Face) -> str:
    a = face.attributes
    return "straight" if a["Straight_Hair"] else "wavy" if a["Wavy_Hair"] else "other"


def long_hair(c: Canvas, face: Face, face_rx: float, color: np.ndarray) -> None:
    """Long hair behind the face; the cap and bangs come later."""
    if face.attributes["Bald"] or not face.style["long_hair"]:
        return
    kind = hair_kind(face)
    sdf = _outline(c, face, 0.0, 0.14, face_rx + HAIR_SHAPES[kind][2], 0.72)
    c.paint(sdf, color * _strands(c, face)[..., None])


def hair_cap(c: Canvas, face: Face, face_rx: float, color: np.ndarray, skin: np.ndarray) -> None:
    """Hair over the head down to the hairline; bangs end above the brows and shade the forehead under them."""
    a = face.attributes
    if a["Bald"]:
        return
    extra, ry = HAIR_SHAPES[hair_kind(face)][:2]
    cap = _outline(c, face, 0.0, -0.1, face_rx + extra, ry)
    side = np.abs(c.u) / face_rx
    if a["Receding_Hairline"]:
        line = np.where(side < 0.85, -0.34 - 0.1 * side, -0.12)
    else:
        line = np.where(side < 0.85, -0.25 + 0.12 * side ** 2, 0.05)
    strands = color * _strands(c, face)[..., None]
    c.paint(c.coverage(cap) * c.coverage(c.v - line), strands, mask=True)
    if a["Bangs"]:
        edge = -0.155 + (0.025 * np.abs(np.sin(c.u * 26)) if not a["Straight_Hair"] else 0.0)
        fringe_shadow = np.maximum(np.maximum(np.abs(c.u) - 0.88 * face_rx, c.v - edge - 0.03), cap)
        c.paint(fringe_shadow, shadow(skin, 0.6, 0.16), 0.7)
        c.paint(np.maximum(np.maximum(np.abs(c.u) - 0.93 * face_rx, c.v - edge), cap), strands)


def hat(c: Canvas, face: Face) -> None:
    color = np.array(face.style["hat"])
    c.paint(np.maximum(c.ellipse(0.0, -0.62, 0.36, 0.32, 4.0), c.v + 0.31), color)
    c.paint(np.maximum(c.box(-0.37, -0.44, 0.37, -0.36), c.ellipse(0.0, -0.62, 0.37, 0.33, 4.0)), color * 0.5)
    c.paint(c.ellipse(0.0, -0.31, 0.56, 0.075), color * 0.8)


def _outline(c: Canvas, face: Face, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """An ellipse whose outline is smooth (straight hair), wavy, or tightly curled (other)."""
    bumps, amplitude = HAIR_SHAPES[hair_kind(face)][3]
    radius = np.hypot((c.u - cx) / rx, (c.v - cy) / ry)
    if bumps:
        angle = np.arctan2(c.v - cy, c.u - cx)
        radius = radius / (1 + amplitude * np.sin(bumps * angle + face.style["wave_phase"]))
    return (radius - 1.0) * min(rx, ry)


def _strands(c: Canvas, face: Face) -> np.ndarray:
    """Brightness of hair strands: vertical for straight hair, waving for wavy hair, spots for curls."""
    kind = hair_kind(face)
    if kind == "other":
        return 0.82 + 0.18 * np.cos(c.u * 2 * np.pi / 0.1) * np.cos(c.v * 2 * np.pi / 0.1)
    phase = c.u if kind == "straight" else c.u + 0.05 * np.sin(c.v * 2 * np.pi / 0.22 + face.style["wave_phase"])
    return 0.8 + 0.2 * np.cos(phase / 0.16 * 2 * np.pi)
