"""`stylegan-metrics generate`: images of chosen seeds, as one grid or one PNG per seed."""

from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np
import torch

from stylegan_core.formats.checkpoint import load_generator
from stylegan_core.data.images import atomic_save_image, atomic_save_png, image_format, make_grid, to_uint8
from stylegan_metrics.engine.sampling import check_images

from .options import batch_option, ckpt_option, device_option, resolve_device, truncation_option


def parse_seeds(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]."""
    seeds = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise click.BadParameter(f"{part.strip()!r} is not a seed or a range like 0-15", param_hint="--seeds")
        lo = int(m.group(1))
        seeds.extend(range(lo, int(m.group(2) or lo) + 1))
    if max(seeds) >= 2**32:
        raise click.BadParameter("seeds must lie in [0, 2**32)", param_hint="--seeds")
    return seeds


def seed_latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    """z for each seed as NVIDIA's generate.py draws it: RandomState(seed).randn(1, z_dim)."""
    return torch.from_numpy(np.concatenate([np.random.RandomState(s).randn(1, z_dim) for s in seeds])).float()


@click.command()
@ckpt_option
@click.option("--seeds", required=True, help="Seeds, e.g. 0-15 or 1,5,9-12.")
@truncation_option
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--out", required=True, type=click.Path(),
              help="An image file for one grid (grid.png, grid.jpg, ...), or a folder for one PNG per seed.")
@batch_option
@device_option
def generate(ckpt, seeds, truncation_psi, noise_mode, out, batch, device) -> None:
    """Generate images for the given seeds."""
    seed_list = parse_seeds(seeds)
    dev = resolve_device(device)
    G = load_generator(ckpt, device=dev)
    z = seed_latents(seed_list, G.z_dim)
    images = []
    with torch.inference_mode():
        for chunk in z.split(batch):
            ws = G.mapping(chunk.to(dev), None, truncation_psi=truncation_psi)
            fakes = check_images(G, G.synthesis(ws, noise_mode=noise_mode), chunk.shape[0])  # finite, as declared
            images.append(to_uint8(fakes).cpu())
    images = torch.cat(images)  # [N, C, H, W] uint8
    out = Path(out)
    if image_format(out) is not None and not out.is_dir():  # grid.png, grid.jpg, ...: one grid in that format
        atomic_save_image(make_grid(images), out)
        click.echo(f"wrote {out} ({len(seed_list)} images)")
    else:
        for s, img in zip(seed_list, images):
            atomic_save_png(img.permute(1, 2, 0).numpy(), out / f"seed{s:04d}.png")
        click.echo(f"wrote {len(seed_list)} images to {out}")
