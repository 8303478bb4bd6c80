"""Read NVIDIA network pickles (stylegan2-ada-pytorch, stylegan3's 'stylegan2') as data, never as code.

NVIDIA's `torch_utils.persistence` pickles each network as a record: the source code of its Python
module (`module_src`), a class name and the object state; a normal `pickle.load` *executes* that
source and whatever else the file names. Here a restricted unpickler resolves only:

- torch's tensor rebuilders (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter[_with_state]`) and
  `torch.storage._load_from_bytes`, whose bytes are read by `torch.load(weights_only=True)` once what they declare
  (a zip's member sizes and CRCs) fits the budget of the outer file (`limits.ClaimBudget`);
- plain containers (`collections.OrderedDict`, `set`, `dnnlib.util.EasyDict` read as a dict), and numpy
  arrays, scalars and dtypes of numeric / bool type (`numpy_data`; StyleGAN3 records hold arrays);
- `torch_utils.persistence._reconstruct_persistent_obj`, replaced by a function that stores the record
  as data (class name, init kwargs, state): `module_src` is kept as an inert string and never executed.

Every other global (an `os.system` in a crafted file, an unknown class) raises CheckpointError before
anything is called, so no code from the file runs. Before unpickling, every opcode's declared length is checked
against the bytes the file holds (`limits.check_pickle_lengths`). The records are then turned into our Generator:
StyleGAN2 / ADA records (conditional ones too) as arch='stylegan2' by `nvidia_mapping` (the parameter name
table lives there), StyleGAN3 records as arch='stylegan3-t' / 'stylegan3-r' by `nvidia_stylegan3`.
"""

from __future__ import annotations

import _compat_pickle
import functools
import io
import pickle
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stylegan_core.errors import CheckpointError
from stylegan_core.limits import ClaimBudget, LimitError, PickleLengthError, check_embedded_torch_zip, \
    check_pickle_lengths, check_tensor_claims
from stylegan_core.networks.generator import Generator
from stylegan_core.formats.nvidia_mapping import generator_from_nvidia_state
from stylegan_core.formats.nvidia_stylegan3 import stylegan3_generator
from stylegan_core.formats.numpy_data import NUMPY_GLOBALS, Refused

STYLEGAN2_CLASSES = {"Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer",
                     "ToRGBLayer", "FullyConnectedLayer"}
STYLEGAN3_CLASSES = {"SynthesisInput"}  # only in networks_stylegan3 (stylegan3-t / stylegan3-r); the rest share names


class _Refused(Refused):
    """Raised inside the unpickler; turned into a CheckpointError that names the file."""


@dataclass
class PersistentRecord:
    """One `persistence` record read as data: nothing of `module_src` is executed."""

    class_name: str
    version: Any
    module_src: str
    state: dict = field(repr=False)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.state.get(name, default)

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    def items(self, kind: str) -> dict:
        """'_parameters', '_buffers' or '_modules' of the recorded nn.Module, without None entries."""
        value = self.state.get(kind) or {}
        if not isinstance(value, dict):
            raise _Refused(f"{self.class_name}.{kind} is not a mapping")
        return {k: v for k, v in value.items() if v is not None}


class _EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict: the same items, no code."""


def _persistent_record(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise _Refused("a persistent record without type 'class' and a class name")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise _Refused(f"persistent record {meta['class_name']} has no state dict")
    return PersistentRecord(meta["class_name"], meta.get("version"), str(meta.get("module_src", "")), state)


def _load_storage(data: Any, budget: ClaimBudget | None = None):
    """A pickled storage: torch.save bytes (legacy format, or a zip whose member sizes are claimed from `budget`
    and whose CRCs are checked before torch reads it); the storage's own size is claimed too."""
    if not isinstance(data, bytes):
        raise _Refused("a storage record without bytes")
    budget = budget or ClaimBudget(len(data))
    if data[:4] == b"PK\x03\x04":
        check_embedded_torch_zip(data, budget)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage deprecation
        storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if not isinstance(storage, torch.storage.TypedStorage):
            raise _Refused("a storage record that does not hold a storage")
        if data[:4] != b"PK\x03\x04":
            budget.claim(storage.nbytes(), "storages inside the pickle declare that much")
    return storage


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None) -> torch.Tensor:
    ints = (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
            and all(isinstance(v, int) for v in size + stride))
    if not isinstance(storage, torch.storage.TypedStorage) or not ints:
        raise _Refused("a malformed tensor record")
    return torch._utils._rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise _Refused("a parameter record without a tensor")
    return data  # the plain tensor: hooks and extra state are dropped


def _codecs_encode(text, encoding="latin1") -> bytes:  # protocol-2 pickles spell bytes this way
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("a malformed bytes record")
    return text.encode("latin1")


ALLOWED_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("_codecs", "encode"): _codecs_encode,
    **NUMPY_GLOBALS,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS (to our own data-only functions); refuses everything else. Storages are read
    within `budget` (the outer file's: MAX_EXPANSION x its size, see limits.ClaimBudget)."""

    def __init__(self, file, *, budget: ClaimBudget):
        super().__init__(file)
        self.budget = budget

    def find_class(self, module: str, name: str):
        if (module, name) in _compat_pickle.NAME_MAPPING:  # protocol 0-2 spell Python 2 names (__builtin__.set)
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            found = ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"it references {module}.{name}") from None
        return functools.partial(_load_storage, budget=self.budget) if found is _load_storage else found

    def persistent_load(self, pid):
        raise _Refused("it uses persistent ids (not a plain network pickle)")


def read_network_pickle(path: str | Path) -> Any:
    """The pickle's content with records as PersistentRecord; any problem is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            check_pickle_lengths(f, size)  # no opcode may declare more bytes than the file holds
            f.seek(0)
            data = RestrictedUnpickler(f, budget=ClaimBudget(size)).load()
        check_tensor_claims(data, size)  # zero-stride views of tiny storages
        return data
    except PickleLengthError as e:
        raise CheckpointError(f"{path}: truncated or not a network pickle ({e})") from None
    except LimitError as e:
        raise CheckpointError(f"{path}: refused: {e}") from None
    except Refused as e:
        raise CheckpointError(f"{path}: refused to load: {e}; only tensors, plain containers and NVIDIA "
                              "network records are read, no code from the file is run") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            RuntimeError, OSError, MemoryError, RecursionError) as e:
        raise CheckpointError(f"{path}: truncated or not a network pickle ({type(e).__name__})") from None


def _flatten(record: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """NVIDIA's state-dict keys -> tensors; dense layers hold their effective weights (weight * weight_gain)."""
    if not isinstance(record, PersistentRecord):
        raise _Refused(f"{prefix or 'the network'} is not a persistent network record")
    if record.class_name not in STYLEGAN2_CLASSES | STYLEGAN3_CLASSES:
        raise _Refused(f"unsupported network class {record.class_name} at '{prefix or 'G_ema'}'")
    gains = {"weight": 1.0, "bias": 1.0}
    if record.class_name == "FullyConnectedLayer":
        gains = {"weight": float(record.attr("weight_gain", 1.0)), "bias": float(record.attr("bias_gain", 1.0))}
    out = {}
    for kind in ("_parameters", "_buffers"):
        for name, t in record.items(kind).items():
            if not isinstance(t, torch.Tensor):
                raise _Refused(f"{prefix}{name} is not a tensor")
            t = t.detach()  # a plain tensor: no grad, no hooks from the file
            out[prefix + name] = t.float() * gains[name] if name in gains and gains[name] != 1 else t
    for name, child in record.items("_modules").items():
        out.update(_flatten(child, f"{prefix}{name}."))
    return out


def _hyper(record: PersistentRecord, name: str, default: Any = None, required: bool = False) -> Any:
    """A Generator hyper-parameter: its attribute, else its init kwarg (ada nests under synthesis_kwargs)."""
    kwargs = record.init_kwargs
    nested = dict(kwargs.get("synthesis_kwargs") or {})
    for source in (record.state, kwargs, nested):
        if source.get(name) is not None:
            return source[name]
    if required:
        raise _Refused(f"the Generator record does not say its {name}")
    return default


def _is_stylegan3(synthesis: Any) -> bool:
    """networks_stylegan3's synthesis network starts with a SynthesisInput (Fourier features) named 'input'."""
    child = synthesis.items("_modules").get("input") if isinstance(synthesis, PersistentRecord) else None
    return isinstance(child, PersistentRecord) and child.class_name in STYLEGAN3_CLASSES


def generator_from_record(record: Any, path: Path) -> Generator:
    """Our Generator with the weights of an NVIDIA G_ema record: arch 'stylegan2', or 'stylegan3-t' / 'stylegan3-r'."""
    where = f"{path} (G_ema)"
    try:
        if not isinstance(record, PersistentRecord) or record.class_name != "Generator":
            raise _Refused("G_ema is not an NVIDIA Generator record")
        state = _flatten(record)
        dims = {name: int(_hyper(record, name, required=True))
                for name in ("z_dim", "w_dim", "img_resolution", "img_channels")}
        c_dim = int(_hyper(record, "c_dim", 0) or 0)
        mapping = record.items("_modules").get("mapping")
        fcs = [k for k in (mapping.items("_modules") if isinstance(mapping, PersistentRecord) else {}) if k.startswith("fc")]
        synthesis = record.items("_modules").get("synthesis")
        if _is_stylegan3(synthesis):
            return stylegan3_generator(record, state, where, dict(dims, c_dim=c_dim), len(fcs))
        blocks = synthesis.items("_modules") if isinstance(synthesis, PersistentRecord) else {}
        layers = [layer for b in blocks.values() for layer in b.items("_modules").values()]
        if any(b.attr("architecture", "skip") != "skip" for b in blocks.values()):
            raise _Refused("only the 'skip' synthesis architecture (StyleGAN2 config F) is supported")
        if any(layer.attr("activation", "lrelu") != "lrelu" for layer in layers if layer.class_name == "SynthesisLayer"):
            raise _Refused("only leaky-ReLU synthesis layers are supported")
        clamps = {layer.attr("conv_clamp") for layer in layers if layer.class_name in ("SynthesisLayer", "ToRGBLayer")}
        if len(clamps) > 1:
            raise _Refused(f"layers disagree on conv_clamp ({sorted(map(str, clamps))})")
        for block_name, block in blocks.items():  # use_noise=False layers: a zero strength gives the same images
            for name, layer in block.items("_modules").items():
                if layer.class_name == "SynthesisLayer" and not layer.attr("use_noise", True):
                    res = int(layer.attr("resolution"))
                    state.setdefault(f"synthesis.{block_name}.{name}.noise_strength", torch.zeros([]))
                    state.setdefault(f"synthesis.{block_name}.{name}.noise_const", torch.zeros(res, res))
    except Refused as e:
        raise CheckpointError(f"{where}: {e}") from None
    clamp = next(iter(clamps), None)
    return generator_from_nvidia_state(
        state, where=where, **dims, mapping_layers=len(fcs), conv_clamp=None if clamp is None else float(clamp),
        channel_hint=_hyper(record, "channel_base"), c_dim=c_dim,
    )


def load_nvidia_generator(path: str | Path) -> Generator:
    """G_ema of an NVIDIA pickle ({'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'} or a bare network)."""
    path = Path(path)
    data = read_network_pickle(path)
    if isinstance(data, dict):
        if "G_ema" not in data:
            keys = ", ".join(sorted(map(str, data))) or "none"
            raise CheckpointError(f"{path}: no 'G_ema' network in the pickle (keys: {keys})")
        data = data["G_ema"]
    return generator_from_record(data, path)


__all__ = ["ALLOWED_GLOBALS", "PersistentRecord", "RestrictedUnpickler", "load_nvidia_generator", "read_network_pickle"]
