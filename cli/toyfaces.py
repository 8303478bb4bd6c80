"""`stylegan-metrics toyfaces`: render the procedural face dataset with its CelebA-style labels."""

from __future__ import annotations

import click

from stylegan_core.data.toyfaces import write_toyfaces
from stylegan_core.data.toyfaces.dataset import MAX_RESOLUTION, MIN_RESOLUTION

from stylegan_metrics.engine.metric import MAX_COUNT  # as many images as a metric may read

from .options import no_progress_option


@click.command()
@click.option("--num", type=click.IntRange(1, MAX_COUNT), required=True, help="Number of images.")
@click.option("--resolution", type=click.IntRange(MIN_RESOLUTION, MAX_RESOLUTION), default=64, show_default=True,
              help=f"Image side, a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION}.")
@click.option("--out", required=True, type=click.Path(), help="A .zip file, or a new (or empty) folder.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="The toyfaces world: image i depends only on (seed, i).")
@no_progress_option
def toyfaces(num, resolution, out, seed, no_progress) -> None:
    """Render toyfaces images plus dataset.json and list_attr_celeba.txt (the 40 CelebA attributes)."""
    path = write_toyfaces(out, num, resolution=resolution, seed=seed, progress=not no_progress)
    click.echo(f"{num} toyfaces at {resolution}x{resolution} -> {path}")
