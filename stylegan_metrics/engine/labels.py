"""Labels of conditional generators (c_dim > 0), NVIDIA's rule: each sample's label is drawn from the reference
dataset's labels (dataset.json), here by sample index from a seeded table; or one class for every sample."""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
import torch

from stylegan_core.errors import InputError

from .sampling import BLOCK, STREAMS, table_rows


def label_rows(labels: np.ndarray, c_dim: int) -> torch.Tensor:
    """[L] integer classes -> one-hot [L, c_dim]; [L, c_dim] vectors as they are."""
    if labels.ndim == 1:
        if labels.min() < 0 or labels.max() >= c_dim:
            raise InputError(f"dataset.json's classes run from {labels.min()} to {labels.max()}, but the generator "
                             f"has {c_dim} classes")
        return torch.nn.functional.one_hot(torch.from_numpy(labels.astype(np.int64)), c_dim).float()
    if labels.shape[1] != c_dim:
        raise InputError(f"dataset.json's labels have {labels.shape[1]} values, the generator's c has {c_dim}")
    return torch.from_numpy(labels.astype(np.float32))


def _rows_of(table, c_dim: int) -> torch.Tensor:
    """The label table as rows [L, c_dim]; `table` may be the reason there is none (an InputError), raised here."""
    if isinstance(table, InputError):
        raise table
    return label_rows(table, c_dim)


def conditioning(G, *, table, seed: int, class_index: int | None = None) -> Callable[[int, int], torch.Tensor] | None:
    """(start, count) -> c [count, c_dim] for a conditional G, None for an unconditional one. `table`: the dataset's
    labels ([L] classes or [L, c_dim] vectors; an InputError saying why there are none), unused with `class_index`."""
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        if class_index is not None:
            raise InputError("--class is for conditional generators; this one has no labels (c_dim = 0)")
        return None
    if class_index is not None:
        if not 0 <= class_index < c_dim:
            raise InputError(f"--class {class_index}: the generator has classes 0..{c_dim - 1}")
        one = torch.nn.functional.one_hot(torch.tensor(class_index), c_dim).float()
        return lambda start, count: one.expand(count, c_dim)
    rows_table = _rows_of(table, c_dim)  # [L, c_dim]

    def rows(start: int, count: int) -> torch.Tensor:
        index = table_rows(seed, STREAMS["label"], start, count,
                           lambda g: torch.randint(0, len(rows_table), (BLOCK,), generator=g))
        return rows_table[index]
    return rows


def conditioning_key(G, *, table, class_index: int | None = None) -> dict:
    """What fixes a conditional G's labels, for saved state and results: {} (unconditional), {'class': N}, or
    {'labels': digest of the dataset's label table}."""
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if not c_dim:
        return {}
    if class_index is not None:
        return {"class": int(class_index)}
    return {"labels": hashlib.sha256(_rows_of(table, c_dim).numpy().tobytes()).hexdigest()[:16]}
