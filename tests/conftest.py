"""Shared fixtures: tiny CPU-sized networks and small image datasets written on the fly."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core import Generator

FLAT_COLOR = np.array([200, 60, 90])


def tiny_generator(resolution: int = 16, seed: int = 0, **overrides) -> Generator:
    kwargs = dict(z_dim=16, w_dim=16, img_resolution=resolution, channel_base=256, channel_max=16, mapping_layers=2)
    kwargs.update(overrides)
    torch.manual_seed(seed)
    return Generator(**kwargs).eval()


def write_flat_images(folder: Path, num: int = 32, size: int = 8, seed: int = 0) -> Path:
    """Flat-colour PNGs around FLAT_COLOR (+-20 per channel), in two sub-folders."""
    rng = np.random.RandomState(seed)
    for i in range(num):
        color = (FLAT_COLOR + rng.randint(-20, 21, 3)).astype(np.uint8)
        path = folder / f"part{i % 2}" / f"img{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.broadcast_to(color, (size, size, 3)).copy()).save(path)
    return folder


def write_zip_dataset(path: Path, images: list[np.ndarray], labels: list | None) -> Path:
    """NVIDIA dataset_tool layout: 00000/img00000000.png ... plus dataset.json."""
    names = [f"{i // 1000:05d}/img{i:08d}.png" for i in range(len(images))]
    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in zip(names, images):
            import io

            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            zf.writestr(name, buf.getvalue())
        meta = {"labels": [[n, l] for n, l in zip(names, labels)] if labels is not None else None}
        zf.writestr("dataset.json", json.dumps(meta))
    return path


@pytest.fixture
def flat_folder(tmp_path: Path) -> Path:
    return write_flat_images(tmp_path / "flat")
