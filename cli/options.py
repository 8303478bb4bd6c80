"""Options shared by several commands, so each is spelled and documented once."""

from __future__ import annotations

import click
import torch

from .errors import CLIError


def resolve_device(device: str | None) -> torch.device:
    """`None` picks CUDA when available, else the CPU; an unusable device is a CLI error."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise CLIError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"device {device!r} requested but CUDA is not available")
    return dev


ckpt_option = click.option("--ckpt", "ckpt", required=True, type=click.Path(dir_okay=False),
                           help="Generator checkpoint (.pt written by this tool).")
batch_option = click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Batch size.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
device_option = click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available).")
truncation_option = click.option("--truncation", "truncation_psi", type=float, default=1.0, show_default=True,
                                 help="Truncation psi (1 = none).")
no_progress_option = click.option("--no-progress", is_flag=True, help="Hide progress bars.")
