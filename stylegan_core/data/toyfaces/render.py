"""Rendering a toyface: layers painted back to front (background, hair, face, features, accessories, blur)."""

from __future__ import annotations

import numpy as np

from stylegan_core.data.toyfaces.draw import Canvas, curve, gaussian_blur
from stylegan_core.data.toyfaces.eyes import eyes, glasses
from stylegan_core.data.toyfaces.face import Face
from stylegan_core.data.toyfaces.features import beard, cheeks, forehead_lines, mouth, mustache, nose
from stylegan_core.data.toyfaces.hair import hair_cap, hat, long_hair
from stylegan_core.data.toyfaces.palette import beard_color, hair_color, shadow, skin_color

TIE_COLORS = ((0.8, 0.1, 0.12), (0.1, 0.2, 0.75), (0.95, 0.82, 0.1), (0.05, 0.5, 0.2))
ZOOM = 1.15  # faces fill more of the frame than in version 1, so that small features show at 32 px


def _body(c: Canvas, face: Face, skin: np.ndarray, chin: float, du: float) -> None:
    """Neck, double chin and what is worn around the neck."""
    a, s = face.attributes, face.style
    neck = 0.18 if a["Male"] else 0.14
    c.paint(c.box(-neck, 0.2, neck, 0.95), skin * 0.7)
    if a["Double_Chin"]:
        c.paint(c.ellipse(du * 0.5, chin + 0.03, 0.23, 0.1), skin)
        fold = curve(-0.2 + du * 0.5, 0.2 + du * 0.5, lambda t: chin + 0.085 - 0.04 * t ** 2)
        c.paint(c.polyline(fold, 0.045), shadow(skin, 0.45, 0.2))
    if a["Wearing_Necklace"]:
        c.paint(c.polyline(curve(-0.17, 0.17, lambda t: chin + 0.08 + 0.12 * (1 - t ** 2)), 0.03), s["jewel"])
        c.paint(c.ellipse(0.0, chin + 0.23, 0.045, 0.045), s["jewel"])
    if a["Wearing_Necktie"]:
        tie = max(TIE_COLORS, key=lambda t: float(np.sum((np.array(t) - np.array(s["shirt"])) ** 2)))
        c.paint(c.rhombus(0.0, 0.9, 0.09, 0.21), tie)
        c.paint(c.ellipse(0.0, 0.72, 0.055, 0.04), tie)


def render_face(face: Face, resolution: int) -> np.ndarray:
    """The face as a uint8 image [R, R, 3]; R any power of two >= 16."""
    a, s = face.attributes, face.style
    c = Canvas(resolution, s["cx"], s["cy"], s["scale"] * ZOOM)
    gradient = (c.v - c.v.min()) / max(float(np.ptp(c.v)), 1e-6)
    c.image[:] = np.array(s["bg_top"]) + (np.array(s["bg_bottom"]) - np.array(s["bg_top"])) * gradient[..., None]
    skin, hair = skin_color(face), hair_color(face)
    face_rx = 0.37 * (1.16 if a["Chubby"] else 1.0) * (0.9 if a["Oval_Face"] else 1.0) * (1.06 if a["Male"] else 1.0)
    face_ry = 0.47 * (1.12 if a["Oval_Face"] else 1.0)
    chin = 0.05 + face_ry
    du = s["yaw"] * 0.04

    c.paint(c.ellipse(0.0, 1.22, 0.9, 0.5), s["shirt"])
    long_hair(c, face, face_rx, hair)
    _body(c, face, skin, chin, du)
    for sign in (-1.0, 1.0):
        c.paint(c.ellipse(sign * (face_rx + 0.015), 0.06, 0.06, 0.1), skin * 0.92)
    face_sdf = c.ellipse(0.0, 0.05, face_rx, face_ry, 3.0 if a["Male"] else 2.0)
    c.paint(face_sdf, skin)
    if a["Wearing_Earrings"]:
        for sign in (-1.0, 1.0):
            ex = sign * (face_rx + 0.025)
            c.paint(c.ring(ex, 0.19, 0.03, 0.03, 0.016), s["jewel"])
            c.paint(c.ellipse(ex, 0.255, 0.032, 0.032), s["jewel"])
    if a["Chubby"]:
        for sign in (-1.0, 1.0):
            c.paint(c.ellipse(sign * 0.26, 0.22, 0.1, 0.08), skin * 0.9, 0.6)
    if not a["Young"]:
        forehead_lines(c, skin, du)
    if a["Bald"] and not a["Wearing_Hat"]:
        c.paint(c.ellipse(-0.1, -0.32, 0.08, 0.04), np.minimum(skin * 1.25 + 0.1, 1.0), 0.8)
    cheeks(c, face, skin, du)
    whiskers = beard_color(face, hair, skin)
    beard(c, face, face_sdf, face_rx, skin, whiskers, du)
    nose(c, face, skin, du * 1.5)
    mouth(c, face, skin, du * 1.25)
    if a["Mustache"]:
        mustache(c, whiskers, du * 1.25)
    hair_cap(c, face, face_rx, hair, skin)
    eyes(c, face, skin, hair, du)
    if a["Eyeglasses"]:
        glasses(c, face, skin, face_rx, du)
    if a["Wearing_Hat"]:
        hat(c, face)
    x = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution * 2 - 1
    c.image *= (s["brightness"] * (1 + s["light"] * x))[None, :, None]
    if a["Blurry"]:
        c.image = gaussian_blur(c.image, max(0.6, resolution / 56))
    return c.to_uint8()
