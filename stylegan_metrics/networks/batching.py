"""Network calls whose per-sample results do not depend on how many samples share a call."""

from __future__ import annotations

import torch

MIN_ROWS = 16  # CPU BLAS switches kernels below ~12 rows; padding to 16 keeps every row's result batch-independent


def batch_invariant(fn, *tensors: torch.Tensor, min_rows: int = MIN_ROWS):
    """fn(*tensors) with fewer than `min_rows` rows padded (last row repeated) and the padding dropped,
    so that a sample's result does not depend on how many others share its batch."""
    n = tensors[0].shape[0]
    if n >= min_rows:
        return fn(*tensors)
    padded = [torch.cat([t, t[-1:].expand(min_rows - n, *t.shape[1:])]) for t in tensors]
    return fn(*padded)[:n]


def in_slices(fn, max_rows: int | None, *tensors: torch.Tensor) -> torch.Tensor:
    """fn over row slices of at most `max_rows` (None: all at once), each batch-invariant, concatenated."""
    n = tensors[0].shape[0]
    step = max_rows or n
    if n <= step:
        return batch_invariant(fn, *tensors)
    return torch.cat([batch_invariant(fn, *(t[i:i + step] for t in tensors)) for i in range(0, n, step)])
