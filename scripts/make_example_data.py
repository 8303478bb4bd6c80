"""Writes examples/discs-16.zip: 512 16x16 images of a coloured disc on a coloured background."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def render(rng: np.random.RandomState, size: int = 16) -> np.ndarray:
    background = tuple(int(v) for v in rng.randint(0, 256, 3))
    disc = tuple(int(v) for v in rng.randint(0, 256, 3))
    scale = 8  # draw large, downsample for smooth edges
    img = Image.new("RGB", (size * scale, size * scale), background)
    r = rng.uniform(3, 6) * scale
    cx, cy = rng.uniform(r, size * scale - r, 2)
    ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=disc)
    return np.asarray(img.resize((size, size), Image.LANCZOS))


def main(out: str = "examples/discs-16.zip", num: int = 512, seed: int = 0) -> None:
    rng = np.random.RandomState(seed)
    names = [f"{i // 1000:05d}/img{i:08d}.png" for i in range(num)]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in names:
            buf = io.BytesIO()
            Image.fromarray(render(rng)).save(buf, format="PNG")
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            zf.writestr(info, buf.getvalue())
        zf.writestr(zipfile.ZipInfo("dataset.json", date_time=(2026, 1, 1, 0, 0, 0)), json.dumps({"labels": None}))


if __name__ == "__main__":
    main(*sys.argv[1:2])
