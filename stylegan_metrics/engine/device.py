"""Choosing the device a metric runs on."""

from __future__ import annotations

import torch

from stylegan_core.errors import InputError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None picks CUDA when available, else the CPU; an unusable device is an InputError."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available")
    return dev
