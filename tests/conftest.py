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


def make_inception_state_dict(seed: int = 0) -> dict:
    """A state dict of torch-fidelity's FeatureExtractorInceptionV3 (same keys and shapes as the release
    file), seeded random values scaled by fan-in so activations neither vanish nor explode."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    with mock.patch.object(tfi, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None):
        net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("conv.weight") or key.startswith("fc.weight"):
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith("bn.weight") or key.endswith("running_var"):
            state[key] = torch.ones_like(value)
        elif key.endswith("num_batches_tracked"):
            state[key] = value.clone()
        else:
            state[key] = torch.zeros_like(value)
    return state


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "inception-test.pth"
    torch.save(make_inception_state_dict(), path)
    return path


@pytest.fixture
def metrics_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("STYLEGAN_METRICS_HOME", str(home))
    monkeypatch.setenv("STYLEGAN_METRICS_OFFLINE", "1")
    return home


def write_disc_images(folder: Path, num: int, size: int = 16, seed: int = 0) -> Path:
    """Coloured discs on coloured backgrounds (varied, natural-ish statistics for feature tests)."""
    from PIL import ImageDraw

    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(num):
        img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.randint(0, 256, 3)))
        r = rng.uniform(size / 6, size / 3)
        cx, cy = rng.uniform(r, size - r, 2)
        ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in rng.randint(0, 256, 3)))
        img.save(folder / f"{i:04d}.png")
    return folder
