"""Selecting attributes by count or by name (the 40 CelebA names live in stylegan_core.data.celeba)."""

from __future__ import annotations

from stylegan_core.data.celeba import CELEBA_ATTRIBUTES
from stylegan_core.errors import InputError

__all__ = ["CELEBA_ATTRIBUTES", "select_attributes"]


def select_attributes(spec: int | str | list[str], available: list[str] | None = None) -> list[str]:
    """`40` or '40' -> the first 40 (the StyleGAN paper's order, or `available`'s order); 'Male,Smiling' -> those names."""
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
