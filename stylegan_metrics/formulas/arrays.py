"""Input checks shared by the metric formulas: feature matrices [N, D] given as numpy arrays or torch tensors."""

from __future__ import annotations

import numpy as np
import torch

from stylegan_core.errors import InputError


def check_count(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """An integer option (not a bool) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum \
            or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise InputError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def _check_matrix(name: str, shape: tuple[int, ...], finite: bool, min_rows: int, why: str) -> None:
    if len(shape) != 2 or shape[1] < 1:
        raise InputError(f"{name} must be a matrix [N, D], got shape {list(shape)}")
    if shape[0] < min_rows:
        raise InputError(f"{name} has {shape[0]} rows, at least {min_rows} needed ({why})")
    if not finite:
        raise InputError(f"{name} contains NaN or Inf")


def _real_array(name: str, x) -> np.ndarray:
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise InputError(f"{name} is not a numeric array ({e})") from None
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"{name} is not a real-valued array (dtype {a.dtype})")
    return a


def _real_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    if x.is_complex() or x.dtype == torch.bool:
        raise InputError(f"{name} is not a real-valued array (dtype {x.dtype})")
    return x.detach()


def numpy_matrix(name: str, x, *, min_rows: int, why: str) -> np.ndarray:
    """x (numpy array, torch tensor on any device, nested lists) as a float64 array [N, D], checked."""
    if isinstance(x, torch.Tensor):
        a = _real_tensor(name, x).to("cpu", torch.float64).numpy()
    else:
        a = _real_array(name, x).astype(np.float64, copy=False)
    _check_matrix(name, a.shape, a.ndim != 2 or bool(np.isfinite(a).all()), min_rows, why)
    return a


def torch_matrix(name: str, x, *, min_rows: int, why: str, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """x (numpy array or torch tensor) as a `dtype` tensor [N, D] on `device`, checked after the conversion
    (values beyond the range of `dtype` become Inf and are refused)."""
    if isinstance(x, torch.Tensor):
        t = _real_tensor(name, x)
    else:
        t = torch.from_numpy(np.ascontiguousarray(_real_array(name, x)))
    t = t.to(device=device, dtype=dtype)
    _check_matrix(name, tuple(t.shape), t.ndim != 2 or _all_finite(t), min_rows, why)
    return t


def _all_finite(t: torch.Tensor, rows: int = 1024) -> bool:
    """torch.isfinite of a float tensor allocates |t| and two masks (6 bytes per float32 entry), more than t
    itself: checked `rows` rows at a time, so that the check of a large feature matrix costs a few MB."""
    return all(bool(torch.isfinite(part).all()) for part in t.split(rows))


def check_same_width(real_shape, gen_shape) -> None:
    if real_shape[1] != gen_shape[1]:
        raise InputError(f"real and generated features differ in width: {real_shape[1]} vs {gen_shape[1]} "
                         f"(computed with different feature networks?)")
