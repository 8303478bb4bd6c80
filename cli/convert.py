"""`stylegan-metrics convert`: an NVIDIA network pickle or a rosinality checkpoint -> this tool's checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import click

from stylegan_core.formats.checkpoint import check_checkpoint_out, load_generator, save_checkpoint
from stylegan_core.errors import InputError
from stylegan_core.formats.sources import detect_source

from .options import NetworkFile

SOURCE_NAMES = {"nvidia": "NVIDIA network pickle", "rosinality": "rosinality checkpoint", "native": "stylegan-metrics checkpoint",
                "tensorflow": "NVIDIA TensorFlow pickle"}


@click.command()
@click.argument("source", type=NetworkFile("generator", dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
def convert(source, out) -> None:
    """Convert SOURCE (NVIDIA .pkl, rosinality .pt) into the checkpoint OUT.pt (its G_ema: StyleGAN2 / ADA,
    conditional or not, or StyleGAN3 configs T and R).

    The source is read without running code from it; OUT gives the same images with any command's --ckpt.
    SOURCE `toyfaces` is the bundled toyfaces generator.
    """
    if same_file(source, out):
        raise InputError(f"{out} is the source file itself; write the checkpoint to another file")
    check_checkpoint_out(out)
    G = load_generator(source)
    kind = detect_source(source)
    save_checkpoint(out, config={"G": G.config}, G_ema=G, converted_from=str(source))
    click.echo(f"wrote {out}: {G.arch} {G.img_resolution}px generator from the {SOURCE_NAMES[kind]} {source}")


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names stand for one file: the same resolved path (symlinks, '..', relative names) or, for
    existing files, the same inode (hard links)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
