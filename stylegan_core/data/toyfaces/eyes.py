"""Eyes, eyebrows, eye make-up, bags under the eyes and glasses of a toyface."""

from __future__ import annotations

import numpy as np

from stylegan_core.data.toyfaces.draw import Canvas, curve
from stylegan_core.data.toyfaces.face import Face
from stylegan_core.data.toyfaces.palette import brow_color, darker

LASH = (0.1, 0.06, 0.06)


def eye_centre(sign: float, du: float) -> tuple[float, float]:
    """Centre of the left (sign -1) or right (+1) eye, shifted by the yaw offset du."""
    return sign * 0.15 + du, -0.02


def eyes(c: Canvas, face: Face, skin: np.ndarray, hair: np.ndarray, du: float) -> None:
    """Eye shadow and bags, the eyes, eyeliner wings and the brows (painted over bangs)."""
    a, s = face.attributes, face.style
    brow = brow_color(face, hair, skin)
    bag = darker(skin * np.array([0.62, 0.48, 0.62], dtype=np.float32), skin, 0.55, 0.18)
    rx = 0.115 if a["Attractive"] else 0.09
    ry = (0.07 if a["Attractive"] else 0.055) * (0.26 if a["Narrow_Eyes"] else 1.0)
    for sign in (-1.0, 1.0):
        ex, ey = eye_centre(sign, du)
        if a["Heavy_Makeup"]:
            c.paint(c.ellipse(ex, ey - 0.012, rx + 0.03, ry + 0.04), s["eyeshadow"], 0.9)
        if a["Bags_Under_Eyes"]:
            c.paint(c.polyline(curve(ex - 0.085, ex + 0.085, lambda t: ey + 0.11 + 0.015 * (1 - t ** 2)), 0.05), bag)
        _eye(c, face, ex, ey, rx, ry, du)
        if a["Heavy_Makeup"]:
            wing = np.array([[ex + sign * rx * 0.8, ey - ry * 0.5], [ex + sign * (rx + 0.045), ey - 0.045]])
            c.paint(c.polyline(wing, 0.022), LASH)
        c.paint(c.polyline(_brow_points(ex, sign, a["Arched_Eyebrows"]), 0.08 if a["Bushy_Eyebrows"] else 0.03), brow)


def _eye(c: Canvas, face: Face, ex: float, ey: float, rx: float, ry: float, du: float) -> None:
    a, s = face.attributes, face.style
    eye = c.ellipse(ex, ey, rx, ry)
    c.paint(eye, (0.97, 0.97, 0.97))
    inside = c.coverage(eye)
    ix = ex + du * 0.3
    c.paint(c.coverage(c.ellipse(ix, ey, 0.033, 0.033)) * inside, s["iris"], mask=True)
    c.paint(c.coverage(c.ellipse(ix, ey, 0.015, 0.015)) * inside, (0.02, 0.02, 0.02), mask=True)
    if a["Attractive"]:
        c.paint(c.coverage(c.ellipse(ix + 0.016, ey - 0.014, 0.022, 0.022)) * inside, (1.0, 1.0, 1.0), mask=True)
    if a["Heavy_Makeup"]:
        c.paint(c.ring(ex, ey, rx, ry, 0.024), LASH)
    lid = curve(ex - rx, ex + rx, lambda t: ey - ry * np.sqrt(np.clip(1 - t ** 2, 0, 1)))
    lash = 0.03 if a["Heavy_Makeup"] or a["Narrow_Eyes"] else 0.022 if a["Attractive"] else 0.014
    c.paint(c.polyline(lid, lash), LASH)


def _brow_points(ex: float, sign: float, arched: bool) -> np.ndarray:
    """Inner end to outer end: a sharp arch peaking over the outer iris, or an almost flat bar."""
    inner, outer = ex - sign * 0.1, ex + sign * 0.1
    if arched:
        return np.array([[inner, -0.13], [ex + sign * 0.02, -0.22], [outer, -0.1]])
    return np.array([[inner, -0.135], [ex, -0.14], [outer, -0.135]])


def glasses(c: Canvas, face: Face, skin: np.ndarray, face_rx: float, du: float) -> None:
    frame = darker(face.style["frame"], skin, 0.55)
    for sign in (-1.0, 1.0):
        ex, ey = eye_centre(sign, du)
        c.paint(c.ellipse(ex, ey, 0.125, 0.078), (0.75, 0.85, 0.95), 0.25)
        c.paint(c.ring(ex, ey, 0.125, 0.078, 0.026), frame)
        c.paint(c.polyline(np.array([[ex + sign * 0.125, ey - 0.02], [sign * face_rx, ey - 0.03]]), 0.018), frame)
    c.paint(c.polyline(np.array([[du - 0.03, -0.04], [du + 0.03, -0.04]]), 0.02), frame)
