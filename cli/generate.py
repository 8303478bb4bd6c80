"""`stylegan-metrics generate`: images of chosen seeds, as one grid or one PNG per seed."""

from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np
import torch

from stylegan_core.errors import InputError
from stylegan_core.formats.checkpoint import load_generator
from stylegan_core.data.images import atomic_save_image, atomic_save_png, image_format, make_grid, to_uint8
from stylegan_metrics.engine.sampling import check_images, map_latents

from .options import MAX_SEED, batch_option, ckpt_option, device_option, resolve_device, truncation_option

MAX_SEEDS = 1_000_000         # seeds in one call (one PNG each in a folder)
MAX_GRID_BYTES = 512 * 2**20  # pixels of one grid image, held in memory whole (about 170 images of 1024 px)


def parse_seeds(text: str, *, limit: int = MAX_SEEDS) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]; ranges are counted before they are expanded."""
    bounds = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise click.BadParameter(f"{part.strip()!r} is not a seed or a range like 0-15", param_hint="--seeds")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi > MAX_SEED:
            raise click.BadParameter(f"seeds must lie in [0, 2**32); {hi} does not", param_hint="--seeds")
        bounds.append((lo, hi))
    count = sum(hi - lo + 1 for lo, hi in bounds)
    if count > limit:
        raise click.BadParameter(f"{count:,} seeds; at most {limit:,} in one call", param_hint="--seeds")
    return [s for lo, hi in bounds for s in range(lo, hi + 1)]


def seed_latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    """z for each seed as NVIDIA's generate.py draws it: RandomState(seed).randn(1, z_dim)."""
    return torch.from_numpy(np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in seeds])).float()


def class_labels(G, class_index: int | None, count: int) -> torch.Tensor | None:
    """c [count, c_dim] (one class for every seed) for a conditional G, None for an unconditional one."""
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        if class_index is not None:
            raise InputError("--class is for conditional generators; this one has no classes (c_dim = 0)")
        return None
    if class_index is None:
        raise InputError(f"the generator is conditional ({c_dim} classes): choose one with --class N "
                         f"(0..{c_dim - 1})")
    if class_index >= c_dim:
        raise InputError(f"--class {class_index}: the generator has classes 0..{c_dim - 1}")
    return torch.nn.functional.one_hot(torch.tensor(class_index), c_dim).float().expand(count, c_dim)


@torch.inference_mode()
def generate_images(G, seeds: list[int], *, truncation_psi: float, noise_mode: str, class_index: int | None,
                    batch: int, device):
    """Yields (seeds, uint8 images [n, C, H, W] on the CPU) batch by batch."""
    for start in range(0, len(seeds), batch):
        part = seeds[start:start + batch]
        z = seed_latents(part, G.z_dim).to(device)  # [n, z_dim]
        c = class_labels(G, class_index, len(part))
        ws = map_latents(G, z, truncation_psi, None if c is None else c.to(device))
        fakes = check_images(G, G.synthesis(ws, noise_mode=noise_mode), len(part))  # finite, as declared
        yield part, to_uint8(fakes).cpu()


@click.command()
@ckpt_option
@click.option("--seeds", required=True, help=f"Seeds, e.g. 0-15 or 1,5,9-12 (at most {MAX_SEEDS:,}).")
@truncation_option
@click.option("--class", "class_index", type=click.IntRange(min=0), default=None,
              help="Conditional generators: this class for every seed (required for them).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--out", required=True, type=click.Path(),
              help="An image file for one grid (grid.png, grid.jpg, ...), or a folder for one PNG per seed.")
@batch_option(32)
@device_option
def generate(ckpt, seeds, truncation_psi, class_index, noise_mode, out, batch, device) -> None:
    """Generate images for the given seeds."""
    seed_list = parse_seeds(seeds)
    if image_format(Path(out)) is None and Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"{out}: exists and is not a folder; --out is an image file for one grid (grid.png, "
                         f"grid.jpg, ...) or a folder for one PNG per seed")
    dev = resolve_device(device)
    G = load_generator(ckpt, device=dev)
    class_labels(G, class_index, 1)  # a conditional G without --class: refused before any image
    out = Path(out)
    grid = image_format(out) is not None and not out.is_dir()  # grid.png, grid.jpg, ...: one grid in that format
    options = dict(truncation_psi=truncation_psi, noise_mode=noise_mode, class_index=class_index, batch=batch,
                   device=dev)
    if grid:
        size = len(seed_list) * int(G.img_channels) * int(G.img_resolution) ** 2
        if size > MAX_GRID_BYTES:
            raise InputError(f"a grid of {len(seed_list):,} images of {G.img_resolution} px would take "
                             f"{size / 2**20:,.0f} MiB (at most {MAX_GRID_BYTES // 2**20} MiB); give a folder as "
                             f"--out for one PNG per seed")
        images = torch.cat([img for _, img in generate_images(G, seed_list, **options)])  # [N, C, H, W] uint8
        atomic_save_image(make_grid(images), out)
        click.echo(f"wrote {out} ({len(seed_list)} images)")
        return
    for part, images in generate_images(G, seed_list, **options):
        for s, img in zip(part, images):
            atomic_save_png(img.permute(1, 2, 0).numpy(), out / f"seed{s:04d}.png")
    click.echo(f"wrote {len(seed_list)} images to {out}")
