"""Drawing a toyface's description: the 40 CelebA attributes with CelebA-like dependencies, plus unnamed variation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stylegan_core.data.celeba import CELEBA_ATTRIBUTES

TOYFACES_VERSION = 2  # bump whenever a (seed, index) renders differently: it keys cached statistics

HAIR_COLORS = {  # rendered colour of each hair-colour attribute; "other" is auburn/red
    "Black_Hair": (0.08, 0.07, 0.07),
    "Blond_Hair": (0.93, 0.78, 0.38),
    "Brown_Hair": (0.42, 0.24, 0.11),
    "Gray_Hair": (0.72, 0.72, 0.74),
    "other": (0.82, 0.3, 0.07),
}
LIPSTICKS = ((0.9, 0.04, 0.14), (0.96, 0.22, 0.56), (0.78, 0.02, 0.42), (1.0, 0.33, 0.2))
BEARD_KINDS = ("Goatee", "Mustache", "Sideburns")  # with a full beard: No_Beard is the absence of all of them


@dataclass
class Face:
    """What one toyface shows: `attributes` (the 40 names -> bool) and `style` (variation no attribute names)."""

    attributes: dict[str, bool]
    style: dict = field(default_factory=dict)

    def labels(self) -> np.ndarray:
        return np.array([self.attributes[n] for n in CELEBA_ATTRIBUTES], dtype=bool)

    def hair_color(self) -> str:
        for name in ("Gray_Hair", "Blond_Hair", "Black_Hair", "Brown_Hair"):
            if self.attributes[name]:
                return name
        return "other"


def _hue_color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float],
               hue: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float]:
    h, s, v = hue[0] + (hue[1] - hue[0]) * rng.random(), rng.uniform(*sat), rng.uniform(*val)
    rgb = np.clip(np.abs((h * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)  # HSV -> RGB
    return tuple(float(c) for c in v * (1 - s + s * rgb))


def sample_face(rng: np.random.Generator) -> Face:
    """One face. Dependencies follow CelebA's: beards and neckties on men, make-up and lipstick mostly on women,
    gray hair and wrinkles with age, a double chin mostly when chubby, an open mouth mostly when smiling,
    no 5 o'clock shadow under a full beard."""
    b = lambda p: bool(rng.random() < p)  # noqa: E731
    a: dict[str, bool] = {}
    male = a["Male"] = b(0.45)
    young = a["Young"] = b(0.72)
    a["Wearing_Hat"] = b(0.08)
    a["Bald"] = male and not a["Wearing_Hat"] and b(0.06 if young else 0.22)
    a["Receding_Hairline"] = male and not (a["Bald"] or a["Wearing_Hat"]) and b(0.12 if young else 0.3)
    color = "none" if a["Bald"] else rng.choice(
        ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "other"],
        p=[0.3, 0.25, 0.3, 0.02, 0.13] if young else [0.15, 0.1, 0.15, 0.55, 0.05])
    for name in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"):
        a[name] = color == name
    style_kind = "none" if a["Bald"] else rng.choice(
        ["straight", "wavy", "other"], p=[0.45, 0.2, 0.35] if male else [0.4, 0.45, 0.15])
    a["Straight_Hair"] = style_kind == "straight"
    a["Wavy_Hair"] = style_kind == "wavy"
    a["Bangs"] = not a["Bald"] and b(0.18)
    a["Smiling"] = b(0.48)
    a["Mouth_Slightly_Open"] = b(0.65 if a["Smiling"] else 0.3)
    a["High_Cheekbones"] = b(0.7 if a["Smiling"] else 0.2)
    shadow = male and b(0.3)
    full_beard = male and b(0.12)
    a["5_o_Clock_Shadow"] = shadow and not full_beard
    a["Goatee"] = male and b(0.15)
    a["Mustache"] = male and b(0.55 if a["Goatee"] else 0.1)
    a["Sideburns"] = male and not a["Bald"] and b(0.14)
    a["No_Beard"] = not (full_beard or any(a[k] for k in BEARD_KINDS))
    a["Heavy_Makeup"] = not male and b(0.55)
    a["Wearing_Lipstick"] = not male and b(0.85 if a["Heavy_Makeup"] else 0.3)
    a["Wearing_Earrings"] = b(0.03 if male else 0.35)
    a["Wearing_Necklace"] = b(0.02 if male else 0.2)
    a["Wearing_Necktie"] = male and b(0.2)
    a["Attractive"] = b((0.6 if not male else 0.4) if young else 0.15)
    a["Arched_Eyebrows"] = b(0.08 if male else 0.45)
    a["Bushy_Eyebrows"] = b(0.3 if male else 0.06)
    a["Bags_Under_Eyes"] = b(0.15 if young else 0.4)
    a["Big_Lips"] = b(0.25)
    a["Big_Nose"] = b(0.3 if male else 0.15)
    a["Pointy_Nose"] = b(0.28)
    a["Narrow_Eyes"] = b(0.12)
    a["Chubby"] = b(0.08 if young else 0.2)
    a["Double_Chin"] = b(0.6 if a["Chubby"] else 0.04)
    a["Oval_Face"] = b(0.3)
    a["Pale_Skin"] = b(0.06)
    a["Rosy_Cheeks"] = b(0.02 if male else 0.12)
    a["Blurry"] = b(0.06)
    a["Eyeglasses"] = b(0.07 if young else 0.2)
    assert len(a) == len(CELEBA_ATTRIBUTES)

    shirt = _hue_color(rng, (0.2, 0.8), (0.25, 0.9))
    style = dict(
        cx=rng.uniform(-0.08, 0.08), cy=rng.uniform(-0.04, 0.08), scale=rng.uniform(0.84, 1.0),
        yaw=rng.uniform(-1, 1),
        bg_top=_hue_color(rng, (0.0, 0.5), (0.35, 0.95)), bg_bottom=_hue_color(rng, (0.0, 0.5), (0.35, 0.95)),
        skin_tone=rng.uniform(0, 1), long_hair=b(0.12 if male else 0.85), full_beard=full_beard,
        iris=_hue_color(rng, (0.4, 0.8), (0.25, 0.6)), shirt=shirt, hat=_hue_color(rng, (0.3, 0.9), (0.2, 0.8)),
        frame=_hue_color(rng, (0.0, 0.7), (0.05, 0.45)), lipstick=LIPSTICKS[rng.integers(len(LIPSTICKS))],
        eyeshadow=_hue_color(rng, (0.6, 1.0), (0.45, 0.8), (0.45, 0.95)),  # hues away from skin tones
        jewel=(0.95, 0.78, 0.2) if b(0.6) else (0.85, 0.87, 0.92),
        light=rng.uniform(-0.08, 0.08), brightness=rng.uniform(0.92, 1.06), hair_shade=rng.uniform(0.85, 1.1),
        wave_phase=rng.uniform(0, 2 * np.pi),
    )
    return Face(a, style)
