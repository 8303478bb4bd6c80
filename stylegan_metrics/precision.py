"""Arithmetic of the feature and similarity networks and of the formulas' matrix products: fp32 (default,
comparable), tf32 or bf16; apart from both, so that the formulas do not import the networks."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from stylegan_core.errors import InputError

PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


@contextmanager
def precision_context(precision: str, device_type: str) -> Iterator[None]:
    """fp32: TF32 off for matmuls and convolutions (PyTorch leaves it on for cuDNN convolutions by default);
    tf32: on (Ampere and later GPUs; no effect on the CPU); bf16: autocast to bfloat16 (GPU or CPU)."""
    if precision == "bf16":
        with torch.autocast(device_type, dtype=torch.bfloat16):
            yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
