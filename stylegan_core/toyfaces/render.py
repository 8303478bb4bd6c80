"""Rendering a toyface: layers painted back to front (background, hair, face, features, accessories, blur)."""

from __future__ import annotations

import numpy as np

from .draw import Canvas, curve, gaussian_blur
from .face import BEARD_KINDS, HAIR_COLORS, Face

TIE_COLORS = ((0.8, 0.1, 0.12), (0.1, 0.2, 0.75), (0.95, 0.82, 0.1), (0.05, 0.5, 0.2))


def _skin(face: Face) -> np.ndarray:
    if face.attributes["Pale_Skin"]:
        return np.array([0.99, 0.93, 0.89], dtype=np.float32)
    light, dark = np.array([0.88, 0.68, 0.54]), np.array([0.42, 0.27, 0.18])
    return (light + (dark - light) * face.style["skin_tone"]).astype(np.float32)


def _hair(c: Canvas, face: Face, face_rx: float, color: np.ndarray) -> None:
    """Long hair behind the face (style-dependent outline and strands); the cap and bangs come later."""
    a, s = face.attributes, face.style
    if a["Bald"] or not s["long_hair"]:
        return
    wavy = a["Wavy_Hair"]
    sdf = _hair_outline(c, face, 0.0, 0.14, face_rx + (0.19 if wavy else 0.13), 0.72)
    c.paint(sdf, color * _strands(c, face)[..., None])


def _hair_outline(c: Canvas, face: Face, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """An ellipse whose outline is smooth (straight hair), wavy, or tightly curled (other)."""
    a = face.attributes
    angle = np.arctan2(c.v - cy, c.u - cx)
    radius = np.hypot((c.u - cx) / rx, (c.v - cy) / ry)
    if a["Wavy_Hair"]:
        radius = radius / (1 + 0.08 * np.sin(9 * angle + face.style["wave_phase"]))
    elif not a["Straight_Hair"]:
        radius = radius / (1 + 0.05 * np.sin(24 * angle + face.style["wave_phase"]))
    return (radius - 1.0) * min(rx, ry)


def _strands(c: Canvas, face: Face) -> np.ndarray:
    """Brightness of hair strands: vertical for straight hair, waving for wavy hair, spots for curls."""
    a = face.attributes
    if a["Straight_Hair"]:
        phase = c.u / 0.16
    elif a["Wavy_Hair"]:
        phase = (c.u + 0.05 * np.sin(c.v * 2 * np.pi / 0.22 + face.style["wave_phase"])) / 0.16
    else:
        return 0.82 + 0.18 * np.cos(c.u * 2 * np.pi / 0.1) * np.cos(c.v * 2 * np.pi / 0.1)
    return 0.8 + 0.2 * np.cos(phase * 2 * np.pi)


def _hair_cap(c: Canvas, face: Face, face_rx: float, color: np.ndarray) -> None:
    a = face.attributes
    if a["Bald"]:
        return
    wavy = a["Wavy_Hair"]
    cap = _hair_outline(c, face, 0.0, -0.1, face_rx + (0.09 if wavy else 0.045), 0.45 if wavy else 0.42)
    side = np.abs(c.u) / face_rx
    if a["Receding_Hairline"]:
        line = np.where(side < 0.85, -0.34 - 0.1 * side, -0.12)
    else:
        line = np.where(side < 0.85, -0.25 + 0.12 * side ** 2, 0.05)
    c.paint(c.coverage(cap) * c.coverage(c.v - line), color * _strands(c, face)[..., None], mask=True)
    if a["Bangs"]:
        edge = -0.13 + (0.03 * np.abs(np.sin(c.u * 26)) if not a["Straight_Hair"] else 0.0)
        bangs = np.maximum(np.maximum(np.abs(c.u) - 0.93 * face_rx, c.v - edge), cap)
        c.paint(bangs, color * _strands(c, face)[..., None])


def _eye_centre(sign: float, du: float) -> tuple[float, float]:
    """Centre of the left (sign -1) or right (+1) eye, shifted by the yaw offset du."""
    return sign * 0.15 + du, -0.02


def _eyes(c: Canvas, face: Face, skin: np.ndarray, hair: np.ndarray, du: float) -> None:
    a, s = face.attributes, face.style
    for sign in (-1.0, 1.0):
        ex, ey = _eye_centre(sign, du)
        rx, ry = (0.085 if a["Attractive"] else 0.075), (0.018 if a["Narrow_Eyes"] else 0.045)
        if a["Heavy_Makeup"]:
            c.paint(c.ellipse(ex, ey - 0.035, 0.1, 0.06), s["eyeshadow"], 0.85)
        if a["Bags_Under_Eyes"]:
            bag = curve(ex - 0.07, ex + 0.07, lambda t: ey + ry + 0.03 + 0.02 * (1 - t ** 2))
            c.paint(c.polyline(bag, 0.026), skin * np.array([0.5, 0.4, 0.55]))
        eye = c.ellipse(ex, ey, rx, ry)
        c.paint(eye, (0.97, 0.97, 0.97))
        inside = c.coverage(eye)
        c.paint(c.coverage(c.ellipse(ex + du * 0.3, ey, 0.034, 0.034)) * inside, s["iris"], mask=True)
        c.paint(c.coverage(c.ellipse(ex + du * 0.3, ey, 0.016, 0.016)) * inside, (0.02, 0.02, 0.02), mask=True)
        if a["Attractive"]:
            c.paint(c.coverage(c.ellipse(ex + 0.016, ey - 0.014, 0.018, 0.018)) * inside, (1.0, 1.0, 1.0), mask=True)
        lid = curve(ex - rx, ex + rx, lambda t: ey - ry * np.sqrt(np.clip(1 - t ** 2, 0, 1)))
        c.paint(c.polyline(lid, 0.028 if a["Heavy_Makeup"] else 0.012), (0.1, 0.06, 0.06))
        if a["Arched_Eyebrows"]:
            brow = curve(ex - 0.09, ex + 0.09, lambda t: -0.115 - 0.05 * (1 - np.abs(t - 0.3 * sign)))
        else:
            brow = curve(ex - 0.09, ex + 0.09, lambda t: -0.12 + 0.004 * t * sign)
        brow_color = hair * 0.6 if not a["Bald"] else np.array([0.2, 0.15, 0.12])
        c.paint(c.polyline(brow, 0.045 if a["Bushy_Eyebrows"] else 0.016), brow_color)


def _glasses(c: Canvas, face: Face, face_rx: float, du: float) -> None:
    frame = face.style["frame"]
    for sign in (-1.0, 1.0):
        ex, ey = _eye_centre(sign, du)
        c.paint(c.ellipse(ex, ey, 0.1, 0.075), (0.75, 0.85, 0.95), 0.15)
        c.paint(c.ring(ex, ey, 0.105, 0.078, 0.022), frame)
        c.paint(c.polyline(np.array([[ex + sign * 0.105, ey - 0.02], [sign * face_rx, ey - 0.03]]), 0.018), frame)
    c.paint(c.polyline(np.array([[du - 0.045, -0.04], [du + 0.045, -0.04]]), 0.02), frame)


def _nose(c: Canvas, face: Face, skin: np.ndarray, du: float) -> None:
    a = face.attributes
    k = 1.7 if a["Big_Nose"] else 1.0
    shade = skin * 0.7
    c.paint(c.polyline(np.array([[du, 0.0], [du, 0.1]]), 0.014), skin * 0.88)
    if a["Pointy_Nose"]:
        c.paint(c.rhombus(du, 0.1, 0.035 * k, 0.09 * k), shade)
        c.paint(c.polyline(np.array([[du - 0.03 * k, 0.13 * k], [du, 0.1 + 0.09 * k], [du + 0.03 * k, 0.13 * k]]), 0.012), skin * 0.55)
    else:
        c.paint(c.ellipse(du, 0.135, 0.045 * k, 0.045 * k), shade)
        for sign in (-1.0, 1.0):
            c.paint(c.ellipse(du + sign * 0.022 * k, 0.16 + 0.01 * k, 0.012 * k, 0.01 * k), skin * 0.35)


def _mouth(c: Canvas, face: Face, skin: np.ndarray, du: float) -> None:
    a, s = face.attributes, face.style
    half = 0.135 if a["Smiling"] else 0.11
    center = 0.3
    bend = (lambda t: center + 0.04 * (1 - t ** 2) - 0.03) if a["Smiling"] else (lambda t: center + 0.006 * t ** 2)
    lip = np.array(s["lipstick"]) if a["Wearing_Lipstick"] else skin * np.array([0.92, 0.6, 0.58])
    width = 0.045 if a["Big_Lips"] else 0.022
    gap = 0.04 if a["Mouth_Slightly_Open"] else 0.0
    c.paint(c.polyline(curve(du - half, du + half, lambda t: bend(t) - gap / 2 - width / 2), width), lip)
    c.paint(c.polyline(curve(du - half * 0.9, du + half * 0.9, lambda t: bend(t) + gap / 2 + width / 2), width), lip)
    if gap:
        c.paint(c.polyline(curve(du - half * 0.8, du + half * 0.8, bend), gap), (0.25, 0.04, 0.06))
        if a["Smiling"]:
            c.paint(c.polyline(curve(du - half * 0.6, du + half * 0.6, lambda t: bend(t) - gap * 0.25), gap * 0.4), (0.95, 0.95, 0.9))
    else:
        c.paint(c.polyline(curve(du - half, du + half, bend), 0.008), (0.3, 0.08, 0.08))


def _beard(c: Canvas, face: Face, face_sdf: np.ndarray, face_rx: float, beard: np.ndarray, du: float) -> None:
    a, s = face.attributes, face.style
    inside = c.coverage(face_sdf)
    if a["5_o_Clock_Shadow"]:
        speckle = 0.75 + 0.25 * np.cos(c.u * 97.0) * np.cos(c.v * 89.0)
        c.paint(inside * c.coverage(0.19 - c.v) * 0.45 * speckle, (0.25, 0.25, 0.3), mask=True)
    if not a["No_Beard"] and (s["full_beard"] or not any(a[k] for k in BEARD_KINDS)):
        c.paint(inside * c.coverage(0.2 - c.v), beard * _beard_texture(c)[..., None], mask=True)
    if a["Sideburns"]:
        strip = np.maximum(c.box(-face_rx, -0.12, face_rx, 0.22), face_rx - 0.075 - np.abs(c.u))
        c.paint(inside * c.coverage(strip), beard, mask=True)
    if a["Goatee"]:
        c.paint(c.ellipse(du, 0.45, 0.075, 0.085), beard * _beard_texture(c)[..., None])


def _beard_texture(c: Canvas) -> np.ndarray:
    return 0.85 + 0.15 * np.cos(c.u * 61.0 + c.v * 37.0)


def _cheeks(c: Canvas, face: Face, skin: np.ndarray, du: float) -> None:
    a = face.attributes
    for sign in (-1.0, 1.0):
        if a["Rosy_Cheeks"]:
            c.paint(c.ellipse(sign * 0.2 + du, 0.14, 0.07, 0.05), (0.95, 0.38, 0.45), 0.6)
        if a["High_Cheekbones"]:
            c.paint(c.ellipse(sign * 0.21 + du, 0.05, 0.065, 0.03), np.minimum(skin * 1.2 + 0.05, 1.0), 0.85)
            c.paint(c.polyline(np.array([[sign * 0.31 + du, 0.08], [sign * 0.19 + du, 0.22]]), 0.024), skin * 0.7)
        if not a["Young"]:
            fold = np.array([[sign * 0.085 + du, 0.16], [sign * 0.14 + du, 0.3]])
            c.paint(c.polyline(fold, 0.014), skin * 0.68)


def render_face(face: Face, resolution: int) -> np.ndarray:
    """The face as a uint8 image [R, R, 3]; R any power of two >= 16."""
    a, s = face.attributes, face.style
    c = Canvas(resolution, s["cx"], s["cy"], s["scale"])
    gradient = (c.v - c.v.min()) / max(float(np.ptp(c.v)), 1e-6)
    c.image[:] = np.array(s["bg_top"]) + (np.array(s["bg_bottom"]) - np.array(s["bg_top"])) * gradient[..., None]
    skin = _skin(face)
    hair = np.clip(np.array(HAIR_COLORS[face.hair_color()]) * s["hair_shade"], 0, 1).astype(np.float32)
    beard = hair * 0.7 if not a["Bald"] else np.array([0.22, 0.18, 0.15], dtype=np.float32)
    face_rx = 0.37 * (1.16 if a["Chubby"] else 1.0) * (0.9 if a["Oval_Face"] else 1.0) * (1.05 if a["Male"] else 1.0)
    face_ry = 0.47 * (1.12 if a["Oval_Face"] else 1.0)
    chin = 0.05 + face_ry
    du = s["yaw"] * 0.04

    c.paint(c.ellipse(0.0, 1.3, 0.9, 0.5), s["shirt"])
    _hair(c, face, face_rx, hair)
    neck = 0.17 if a["Male"] else 0.14
    c.paint(c.box(-neck, 0.2, neck, 0.95), skin * 0.86)
    if a["Double_Chin"]:
        c.paint(c.ellipse(du * 0.5, chin + 0.01, 0.19, 0.07), skin * 0.95)
        c.paint(c.polyline(curve(-0.16 + du * 0.5, 0.16 + du * 0.5, lambda t: chin + 0.05 - 0.03 * t ** 2), 0.024), skin * 0.6)
    if a["Wearing_Necklace"]:
        c.paint(c.polyline(curve(-0.17, 0.17, lambda t: chin + 0.12 + 0.16 * (1 - t ** 2)), 0.024), s["jewel"])
        c.paint(c.ellipse(0.0, chin + 0.31, 0.035, 0.035), s["jewel"])
    if a["Wearing_Necktie"]:
        tie = max(TIE_COLORS, key=lambda t: float(np.sum((np.array(t) - np.array(s["shirt"])) ** 2)))
        c.paint(c.rhombus(0.0, 0.97, 0.09, 0.21), tie)
        c.paint(c.ellipse(0.0, 0.79, 0.055, 0.04), tie)
    for sign in (-1.0, 1.0):
        c.paint(c.ellipse(sign * (face_rx + 0.015), 0.06, 0.06, 0.1), skin * 0.92)
    power = 2.7 if a["Male"] else 2.0
    face_sdf = c.ellipse(0.0, 0.05, face_rx, face_ry, power)
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
        for y in (-0.21, -0.165):
            c.paint(c.polyline(curve(-0.14 + du, 0.14 + du, lambda t: y + 0.012 * t ** 2), 0.013), skin * 0.68)
    if a["Bald"] and not a["Wearing_Hat"]:
        c.paint(c.ellipse(-0.1, -0.32, 0.08, 0.04), np.minimum(skin * 1.25 + 0.1, 1.0), 0.8)
    _cheeks(c, face, skin, du)
    _beard(c, face, face_sdf, face_rx, beard, du)
    _nose(c, face, skin, du * 1.5)
    _mouth(c, face, skin, du * 1.25)
    if a["Mustache"]:
        c.paint(c.polyline(curve(-0.115 + du * 1.25, 0.115 + du * 1.25, lambda t: 0.235 + 0.03 * t ** 2), 0.048), beard)
    _hair_cap(c, face, face_rx, hair)
    _eyes(c, face, skin, hair, du)
    if a["Eyeglasses"]:
        _glasses(c, face, face_rx, du)
    if a["Wearing_Hat"]:
        c.paint(np.maximum(c.ellipse(0.0, -0.62, 0.36, 0.32, 4.0), c.v + 0.31), s["hat"])
        c.paint(np.maximum(c.box(-0.37, -0.44, 0.37, -0.36), c.ellipse(0.0, -0.62, 0.37, 0.33, 4.0)), np.array(s["hat"]) * 0.5)
        c.paint(c.ellipse(0.0, -0.31, 0.56, 0.075), np.array(s["hat"]) * 0.8)
    x = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution * 2 - 1
    c.image *= (s["brightness"] * (1 + s["light"] * x))[None, :, None]
    if a["Blurry"]:
        c.image = gaussian_blur(c.image, max(1.0, resolution / 40))
    return c.to_uint8()
