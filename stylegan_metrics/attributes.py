"""The 40 CelebA attributes in the StyleGAN paper's order, and selecting them by count or by name."""

from __future__ import annotations

from stylegan_core.errors import InputError

CELEBA_ATTRIBUTES = [
    "Male", "Smiling", "Attractive", "Wavy_Hair", "Young", "5_o_Clock_Shadow", "Arched_Eyebrows", "Bags_Under_Eyes",
    "Bald", "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Straight_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie",
]


def select_attributes(spec: int | str | list[str], available: list[str] | None = None) -> list[str]:
    """`40` or '40' -> the first 40 (SPEC order, or `available`'s order); 'Male,Smiling' -> those names."""
    available = CELEBA_ATTRIBUTES if available is None else available
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        count = int(spec)
        if not 1 <= count <= len(available):
            raise InputError(f"--attributes {count}: choose between 1 and {len(available)}")
        return list(available[:count])
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise InputError(f"unknown attribute {unknown[0]!r}; known: {', '.join(available)}")
    if len(set(names)) != len(names):
        raise InputError("an attribute is listed twice")
    return names
