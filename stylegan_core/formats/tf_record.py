"""One `dnnlib.tflib.Network` of a TensorFlow pickle, as inert data: hyper-parameters, variables, sub-networks.

NVIDIA's tflib pickles a network as its `__getstate__` dict: `version`, `name`, `static_kwargs` (the
build function's keyword arguments), `components` (sub-networks), `build_module_src` (the Python
source of its module), `build_func_name` and `variables` ((name, array) pairs in creation order).
`TFNetwork.__setstate__` checks and stores those values; the source is kept as text and never run.
Converters read variables with `take` (which records what was used) and hyper-parameters with `kwarg`
(which refuses values we do not implement), and end with `check_all_used`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from stylegan_core.errors import CheckpointError
from stylegan_core.formats.numpy_data import Refused

TF_PICKLE_VERSIONS = (2, 3, 4)
FLOAT32 = ("float32",)  # the only activation dtype read: float16 networks compute differently
PLAIN_TYPES = (bool, int, float, str, type(None))


def _plain(value: Any) -> bool:
    """Hyper-parameters are plain data: numbers, strings, None and lists / tuples / dicts of them."""
    if isinstance(value, PLAIN_TYPES):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


class TFNetwork:
    """An unpickled `dnnlib.tflib.network.Network` record (also ProGAN's `tfutil.Network`): data only."""

    name: str
    version: int
    static_kwargs: dict
    components: dict
    build_module_src: str
    build_func_name: str
    variables: dict[str, np.ndarray]

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise Refused("a network record without a state dict")
        version = state.get("version")
        if version not in TF_PICKLE_VERSIONS:
            known = ", ".join(map(str, TF_PICKLE_VERSIONS))
            raise Refused(f"tflib network pickle version {version!r} (known: {known})")
        name, func, src = state.get("name"), state.get("build_func_name"), state.get("build_module_src")
        if not isinstance(name, str) or not isinstance(func, str) or not isinstance(src, str):
            raise Refused("a network record without name, build_func_name and build_module_src strings")
        kwargs = state.get("static_kwargs") or {}
        if not isinstance(kwargs, dict) or not _plain(kwargs):
            raise Refused(f"network {name}: static_kwargs hold more than plain data")
        components = state.get("components") or {}
        if not isinstance(components, dict) or not all(isinstance(c, TFNetwork) for c in components.values()):
            raise Refused(f"network {name}: components that are not networks")
        variables = {}
        for item in state.get("variables") or []:
            if not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[0], str):
                raise Refused(f"network {name}: a malformed variable entry")
            value = item[1]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = np.asarray(value, dtype=np.float32)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
                raise Refused(f"network {name}: variable {item[0]} is not a numeric array")
            variables[item[0]] = np.array(value)  # a plain ndarray (the reader's array class is only for checking)
        self.name, self.version, self.static_kwargs = name, version, dict(kwargs)
        self.components, self.build_module_src, self.build_func_name = dict(components), src, func
        self.variables = variables
        self.used: set[str] = set()

    def __repr__(self) -> str:
        return f"TFNetwork({self.name!r}, {self.build_func_name}, {len(self.variables)} variables)"

    # ---- reading, for the converters ----------------------------------------------------------------
    def defines_build_func(self) -> bool:
        """Whether the recorded source text defines a top-level function of the recorded name (read, not run)."""
        return re.search(rf"^def {re.escape(self.build_func_name)}\(", self.build_module_src, re.M) is not None

    def kwarg(self, name: str, default: Any, allowed: tuple | None = None) -> Any:
        """A static kwarg (or NVIDIA's default); a value outside `allowed` raises Unsupported."""
        value = self.static_kwargs.get(name, default)
        if allowed is not None and value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            raise Unsupported(f"network {self.name} ({self.build_func_name}): {name}={value!r} is not supported "
                              f"(supported: {shown})")
        return value

    def has(self, name: str) -> bool:
        return name in self.variables

    def take(self, name: str, shape: tuple | None = None) -> np.ndarray:
        """Variable `name` as float32, marked used; a missing one or another shape raises Unsupported."""
        if name not in self.variables:
            raise Unsupported(f"network {self.name} ({self.build_func_name}): missing variable {name}")
        value = self.variables[name]
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise Unsupported(f"network {self.name}: variable {name} has shape {list(value.shape)}, "
                              f"expected {list(shape)}")
        self.used.add(name)
        return np.asarray(value, dtype=np.float32)

    def check_all_used(self, ignore: tuple[str, ...] = ()) -> None:
        """Unsupported if a variable was neither read nor ignored (a layer we would silently drop)."""
        extra = [k for k in self.variables if k not in self.used and k not in ignore]
        if extra:
            raise Unsupported(f"network {self.name} ({self.build_func_name}): unexpected variables "
                              f"{', '.join(extra[:4])}{' ...' if len(extra) > 4 else ''}")

    def component(self, key: str, build_funcs: tuple[str, ...]) -> TFNetwork:
        """Sub-network `key`, which must have been built by one of `build_funcs`."""
        net = self.components.get(key)
        if net is None:
            raise Unsupported(f"network {self.name}: no '{key}' component")
        if net.build_func_name not in build_funcs:
            raise Unsupported(f"network {self.name}: component '{key}' is built by {net.build_func_name}, "
                              f"expected {' or '.join(build_funcs)}")
        return net


class Unsupported(Exception):
    """A well-formed network this reader does not implement (unknown build function or hyper-parameter)."""


def runtime_coef(fan_in: int, gain: float, use_wscale: bool, lrmul: float = 1.0) -> float:
    """The factor NVIDIA's TF `get_weight` multiplies a stored weight by: he_std * lrmul, or lrmul without wscale."""
    he_std = gain / math.sqrt(fan_in)
    return he_std * lrmul if use_wscale else lrmul


def to_tensor(value: np.ndarray, ratio: float = 1.0) -> torch.Tensor:
    """float32 tensor of `value` * ratio, the product taken in float64 (ratio 1 copies exactly)."""
    if ratio != 1.0:
        value = (value.astype(np.float64) * ratio).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))


def tf_kernel(value: np.ndarray) -> np.ndarray:
    """TF conv kernel [k, k, in, out] -> torch [out, in, k, k]."""
    return value.transpose(3, 2, 0, 1)


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """module.load_state_dict(state, strict=True), a mismatch as a CheckpointError naming `where`."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{where}: weights do not fit ({' '.join(str(e).split())[:300]})") from None


__all__ = ["FLOAT32", "TFNetwork", "Unsupported", "load_strict", "runtime_coef", "tf_kernel", "to_tensor"]
