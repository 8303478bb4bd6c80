"""Numpy arrays, scalars and dtypes inside pickles, read as plain data: numeric and bool dtypes only.

A pickled array is `_reconstruct(ndarray, (0,), b'b')` followed by a BUILD with the state
(version, shape, dtype, is_fortran, raw bytes); a scalar is `scalar(dtype, raw bytes)`; protocol 5 writes
`_frombuffer(raw bytes, dtype, shape, order)`. numpy 1.x files name these `numpy.core.*`, numpy 2.x
files `numpy._core.*`; both are mapped here. Nothing of numpy's own unpickling machinery is handed to
a pickle: every global resolves to a function below that checks its arguments, and any dtype that is not
bool, integer, float or complex (object arrays above all, whose items would be arbitrary pickled
objects) raises `Refused`. `NUMPY_GLOBALS` plugs into a restricted `pickle.Unpickler`;
`TORCH_SAFE_GLOBALS` into `torch.serialization.safe_globals` for `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np

DATA_KINDS = "biufc"  # bool, signed and unsigned integers, floats, complex
MAX_DTYPE_LENGTH = 4   # 'f8', '<i4', 'c16', 'b1'


class Refused(Exception):
    """A pickle asks for something that is not plain data; loaders turn it into a CheckpointError."""


class NumpyDtype:
    """A numeric numpy dtype named by a pickle; `.dtype` is the real `np.dtype` once its state is applied."""

    __slots__ = ("dtype",)

    def __new__(cls, spec: Any = None, align: Any = False, copy: Any = False):
        if not isinstance(spec, str) or len(spec) > MAX_DTYPE_LENGTH:
            raise Refused(f"numpy dtype {spec!r} (only numeric and bool dtypes are read as data)")
        try:
            dtype = np.dtype(spec)
        except TypeError:
            raise Refused(f"numpy dtype {spec!r} (not a dtype)") from None
        if dtype.kind not in DATA_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise Refused(f"numpy dtype {spec!r} of kind '{dtype.kind}' (only numeric and bool dtypes are read as data)")
        self = super().__new__(cls)
        self.dtype = dtype
        return self

    def __setstate__(self, state: Any) -> None:
        """numpy's dtype state: (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])."""
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise Refused("a malformed numpy dtype state")
        byteorder = state[1]
        if byteorder not in ("<", ">", "|", "=") or any(v is not None for v in state[2:5] + state[8:]):
            raise Refused("a numpy dtype with fields, subarrays or metadata (only plain numeric dtypes are read)")
        if byteorder in "<>":
            self.dtype = self.dtype.newbyteorder(byteorder)

    def __repr__(self) -> str:
        return f"NumpyDtype({self.dtype.str!r})"


def _dtype_of(value: Any) -> np.dtype:
    if not isinstance(value, NumpyDtype) or not hasattr(value, "dtype"):
        raise Refused("a numpy array or scalar without a numeric dtype")
    return value.dtype


def _shape_of(value: Any) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise Refused("a numpy array with a malformed shape")
    return value


def _raw_bytes(value: Any, dtype: np.dtype, count: int) -> bytes:
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes) or len(value) != count * dtype.itemsize:
        raise Refused("a numpy array whose data is not raw bytes of its shape and dtype")
    return value


class PickledArray(np.ndarray):
    """An ndarray filled from a pickle's BUILD state after checking it (see the module docstring)."""

    def __new__(cls, *args, **kwargs):
        raise Refused("numpy arrays are only read through numpy's array reconstruction")

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1 or not isinstance(state[3], bool):
            raise Refused("a malformed numpy array state (object arrays are not read)")
        shape, dtype = _shape_of(state[1]), _dtype_of(state[2])
        raw = _raw_bytes(state[4], dtype, math.prod(shape))
        super().__setstate__((1, shape, dtype, state[3], raw))


class _NdarrayClass:
    """What the global `numpy.ndarray` resolves to: only a token for `_reconstruct`."""

    def __new__(cls, *args, **kwargs):
        raise Refused("numpy.ndarray is only read through numpy's array reconstruction")


def reconstruct(cls: Any, shape: Any = (0,), typecode: Any = b"b") -> PickledArray:
    """numpy's `_reconstruct(ndarray, (0,), b'b')`: an empty array that the following BUILD fills."""
    if cls is not _NdarrayClass or shape != (0,) or typecode not in (b"b", "b"):
        raise Refused("a numpy array reconstruction of something other than a plain ndarray")
    return np.ndarray.__new__(PickledArray, (0,), dtype=np.uint8)


def frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    """numpy's protocol-5 `_frombuffer(bytes, dtype, shape, order)`: a copy, never a view of the pickle."""
    dtype, shape = _dtype_of(dtype), _shape_of(shape)
    if order not in ("C", "F"):
        raise Refused("a numpy array with an unknown memory order")
    raw = _raw_bytes(buffer.raw() if isinstance(buffer, pickle.PickleBuffer) else buffer, dtype, math.prod(shape))
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order).copy()


def scalar(dtype: Any, data: Any = None) -> int | float | complex | bool:
    """numpy's `scalar(dtype, raw bytes)`: the value as a Python number."""
    dtype = _dtype_of(dtype)
    return np.frombuffer(_raw_bytes(data, dtype, 1), dtype=dtype)[0].item()


def empty_bytes(*args) -> bytes:
    """Protocol 2 spells the raw data of an empty array b'' as `bytes()`."""
    if args:
        raise Refused("a bytes record with arguments")
    return b""


NUMPY_GLOBALS = {("numpy", "dtype"): NumpyDtype, ("numpy", "ndarray"): _NdarrayClass, ("builtins", "bytes"): empty_bytes}
for _core in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x spellings
    NUMPY_GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = reconstruct
    NUMPY_GLOBALS[(f"{_core}.multiarray", "scalar")] = scalar
    NUMPY_GLOBALS[(f"{_core}.numeric", "_frombuffer")] = frombuffer

# For torch.load(weights_only=True): each global under its pickled name, plus the two classes BUILD fills.
TORCH_SAFE_GLOBALS = [(fn, f"{module}.{name}") for (module, name), fn in NUMPY_GLOBALS.items()] + [PickledArray, NumpyDtype]

__all__ = ["NUMPY_GLOBALS", "NumpyDtype", "PickledArray", "Refused", "TORCH_SAFE_GLOBALS"]
