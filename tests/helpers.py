"""Helpers the tests share: tiny CPU-sized generators, tiny feature and attribute networks (and versions of them that
crash part way through a run), reference statistics, small image datasets written on the fly, and CLI calls."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan_core import Generator
from stylegan_metrics.stats import FeatureStats, ReferenceStats
from stylegan_metrics_cli.main import main

FLAT_COLOR = np.array([200, 60, 90])


def tiny_generator(resolution: int = 16, seed: int = 0, **overrides) -> Generator:
    kwargs = dict(z_dim=16, w_dim=16, img_resolution=resolution, channel_base=256, channel_max=16, mapping_layers=2)
    kwargs.update(overrides)
    torch.manual_seed(seed)
    return Generator(**kwargs).eval()


class Quadrants(torch.nn.Module):
    """uint8 images -> channel means and 2x2 quadrant means (15-d): a feature network cheap enough for any test."""

    def forward(self, x):
        x = x.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)], dim=1)


class Colours(torch.nn.Module):
    """An attribute classifier read straight off the image: logits of a weighted channel mean (three attributes)."""

    attributes = ["Red", "Green", "Blue"]

    def forward(self, x):
        return x.mean(dim=(2, 3)) * 8 + x[:, :, 0, 0] * 4


class Crash(RuntimeError):
    """What a crashing network raises: a failure part way through a run."""


class Crashing:
    """Put before a network class (`class CrashingQuadrants(Crashing, Quadrants)`): counts its calls in `calls` and,
    with `fail_at` set, raises `error` on every call from the `fail_at`-th (1-based) on; chunks finished before
    it stay saved. Set `fail_at = None` to let a rerun through."""

    def __init__(self, *args, fail_at: int | None = None, error: type[BaseException] = Crash, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.fail_at, self.error = 0, fail_at, error

    def forward(self, x):
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise self.error
        return super().forward(x)


class CrashingQuadrants(Crashing, Quadrants):
    """Quadrants that crash from call `fail_at` on."""


class CrashingColours(Crashing, Colours):
    """Colours that crash from call `fail_at` on."""


def feature_stats(extractor, batches) -> FeatureStats:
    """Float64 statistics of `extractor`'s features of uint8 image batches [B, C, H, W], in one process and without
    the engine (what a pass should sum)."""
    acc = None
    for images in batches:
        features = extractor(images)  # [B, D]
        if acc is None:
            acc = FeatureStats(features.shape[1], device=features.device)
        acc.update(features)
    return acc


def quadrant_reference(dim: int = 15, features: str = "Quadrants") -> ReferenceStats:
    """Statistics of 100 seeded normal rows, named as Quadrants' features (or `features`: a subclass's name)."""
    x = np.random.default_rng(0).normal(0.5, 0.1, size=(100, dim))
    return ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=100, features=features)


def mean_squared_l2(a, b):
    """A perceptual distance stand-in for PPL: the mean squared difference of each pair, [N]."""
    return (a - b).square().mean(dim=(1, 2, 3))


def tiny_stylegan2(resolution: int = 16, seed: int = 0, **overrides) -> Generator:
    """A tiny arch='stylegan2' generator with visible noise, non-trivial biases and w_avg (for import round trips)."""
    G = tiny_generator(resolution, seed=seed, arch="stylegan2", **overrides)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith(("strength", ".bias")):
                p.copy_(torch.randn_like(p) * 0.3)
        G.mapping.w_avg.normal_()
    return G


def same_images(A, B, psi: float = 1.0, noise_seeds: bool = False) -> None:
    """A and B draw the same images (5 seeded z, 'const' and 'none' noise; with noise_seeds also seeded noise)."""
    z = torch.randn(5, A.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        for mode in ("const", "none"):
            torch.testing.assert_close(A(z, truncation_psi=psi, noise_mode=mode), B(z, truncation_psi=psi, noise_mode=mode),
                                       rtol=1e-5, atol=1e-5)
        if noise_seeds:
            seeds = torch.arange(5)
            torch.testing.assert_close(A.synthesis(A.mapping(z), noise_seeds=seeds),
                                       B.synthesis(B.mapping(z), noise_seeds=seeds), rtol=1e-5, atol=1e-5)


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
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            zf.writestr(name, buf.getvalue())
        meta = {"labels": [[n, l] for n, l in zip(names, labels)] if labels is not None else None}
        zf.writestr("dataset.json", json.dumps(meta))
    return path


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


def invoke(*args, **kwargs):
    """The CLI run in this process with `args` (each turned into a string); click's Result."""
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def one_line_error(result, *fragments, last_line: bool = False) -> None:
    """Exit status 2, no traceback, and an error line ('Error: ...') holding every fragment. By default that line is
    the whole output; with `last_line` it is the last line, after whatever came before it (click's usage line and
    hint, warnings, a progress line)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), result.output
    if not last_line:
        assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[-1], result.output


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s children (Linux /proc)."""
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def workers_inside_the_run(launcher, manifest: Path, *, timeout: float = 120) -> list[int]:
    """The worker pids of a `--gpus N` launcher once they are inside the run (its state `manifest` exists), or
    whatever children it has when it ended or `timeout` s passed."""
    deadline = time.time() + timeout
    while not manifest.exists() and launcher.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    return children(launcher.pid)


def labels_of(G, *, data, seed: int = 0, class_index: int | None = None):
    """The labels an evaluation draws for a conditional G, (start, count) -> c [count, c_dim] (None: unconditional)."""
    from stylegan_metrics.engine.context import Context
    from stylegan_metrics.engine.options import EvaluationOptions

    return Context(G, torch.device("cpu"), EvaluationOptions(data=data, seed=seed, class_index=class_index)
                   ).conditioning()[0]


ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"


def architecture_example():
    """The code blocks of docs/architecture.md's "Adding a metric", run as one module (BRIGHTNESS, EDGE_FD, ...)."""
    import re
    import types

    text = ARCHITECTURE.read_text()
    section = text[text.index("## Adding a metric"):]
    module = types.ModuleType("architecture_example")
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        exec(compile(block, str(ARCHITECTURE), "exec"), module.__dict__)
    return module


DINOV2_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "dinov2_tiny.npz"


def tiny_dinov2_state(fixture: dict, model: str) -> dict[str, torch.Tensor]:
    """The DINOv2 fixture's state dict of `model` ('mlp' or 'swiglu'), Meta's layout: base + int8 q * step, exact in
    float32 (`fixture`: the arrays of tests/fixtures/dinov2_tiny.npz)."""
    state = {}
    for name, q in fixture.items():
        if name.startswith(f"state:{model}:"):
            key = name.split(":", 2)[2]
            base, step = fixture[f"affine:{model}:{key}"]
            state[key] = torch.from_numpy(q).to(torch.float32) * float(step) + float(base)
    return state


def recorded_cdist_shapes(monkeypatch) -> list[tuple[int, int]]:
    """The (rows, columns) of every torch.cdist call from now on, recorded in the returned list."""
    shapes, cdist = [], torch.cdist

    def recording(a, b, *args, **kwargs):
        shapes.append((a.shape[0], b.shape[0]))
        return cdist(a, b, *args, **kwargs)
    monkeypatch.setattr(torch, "cdist", recording)
    return shapes
