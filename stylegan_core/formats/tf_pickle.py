"""Read NVIDIA's TensorFlow network pickles (NVlabs/stylegan, stylegan2, ProGAN classifiers) as data, never as code.

A normal `pickle.load` of these files imports `dnnlib.tflib`, *executes* each network's recorded module
source and builds a TensorFlow graph. Here a restricted unpickler resolves only:

- `dnnlib.tflib.network.Network` (and ProGAN's `tfutil.Network`) -> `TFNetwork`, an inert record of
  the pickled state (hyper-parameters, variables, sub-networks; the source is kept as text);
- numeric numpy arrays, dtypes and scalars (`numpy_data`: numpy 1 and 2 module names, no object
  dtypes), `dnnlib.util.EasyDict` read as a dict, `collections.OrderedDict`.

Every other global (an `os.system` in a crafted file) raises CheckpointError before anything is called.
The PyTorch network is then chosen by the record's `build_func_name` (NVIDIA's function of that name in
its repository; the function must be defined in the recorded source) and its static kwargs; an unknown
build function, a kwarg naming another function, or a hyper-parameter we do not implement is a
CheckpointError. Generator files are `(G, D, Gs)` tuples: `load_tf_generator` returns Gs,
`load_tf_discriminator` D.
"""

from __future__ import annotations

import _compat_pickle
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from torch import nn

from stylegan_core.errors import CheckpointError
from stylegan_core.formats.numpy_data import NUMPY_GLOBALS, Refused
from stylegan_core.formats.tf_record import TFNetwork, Unsupported
from stylegan_core.formats.tf_stylegan1 import (discriminator_from_d_basic, discriminator_from_d_paper,
                                               generator_from_g_style)
from stylegan_core.formats.tf_stylegan2 import generator_from_g_main, residual_from_d_stylegan2

# build_func_name -> converter(record, where) -> nn.Module
GENERATORS: dict[str, Callable[[TFNetwork, str], nn.Module]] = {
    "G_style": generator_from_g_style,      # NVlabs/stylegan training/networks_stylegan.py
    "G_main": generator_from_g_main,        # NVlabs/stylegan2 training/networks_stylegan2.py
}
DISCRIMINATORS: dict[str, Callable[[TFNetwork, str], nn.Module]] = {
    "D_basic": discriminator_from_d_basic,  # NVlabs/stylegan training/networks_stylegan.py
    "D_paper": discriminator_from_d_paper,  # ProGAN networks.py (also NVlabs/stylegan training/networks_progan.py)
    "D_stylegan2": residual_from_d_stylegan2,  # NVlabs/stylegan2 training/networks_stylegan2.py
}
SUB_NETWORKS = {"G_mapping", "G_synthesis", "G_synthesis_stylegan2"}  # built only as components of a generator
FUNCTION_KWARG = re.compile(r"(^|_)func(_name)?$")  # kwargs that name a build function


class _EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict: the same items, no code."""


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("tfutil", "Network"): TFNetwork,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): OrderedDict,
    **NUMPY_GLOBALS,
}


class TFUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS (to our own data-only records); refuses everything else."""

    def find_class(self, module: str, name: str):
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise Refused(f"it references {module}.{name}") from None

    def persistent_load(self, pid):
        raise Refused("it uses persistent ids (not a TensorFlow network pickle)")


def read_tf_pickle(path: str | Path) -> Any:
    """The pickle's content with networks as TFNetwork records; any problem is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with open(path, "rb") as f:
            return TFUnpickler(f, encoding="latin1").load()
    except Refused as e:
        raise CheckpointError(f"{path}: refused to load: {e}; only TensorFlow network records and numeric arrays "
                              "are read, no code from the file is run") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            RuntimeError, OSError, MemoryError) as e:
        raise CheckpointError(f"{path}: truncated or not a network pickle ({type(e).__name__})") from None


def _check_functions(net: TFNetwork, where: str) -> None:
    """The build function must be known and defined in the recorded source; kwargs naming functions are checked
    by the converters, which accept only NVIDIA's own names, so an unknown key of that kind is refused here."""
    if net.build_func_name not in GENERATORS and net.build_func_name not in DISCRIMINATORS \
            and net.build_func_name not in SUB_NETWORKS:
        known = ", ".join(sorted([*GENERATORS, *DISCRIMINATORS]))
        raise CheckpointError(f"{where}: network {net.name} is built by {net.build_func_name!r}, "
                              f"which this reader does not know (known: {known})")
    if not net.defines_build_func():
        raise CheckpointError(f"{where}: network {net.name}: its recorded source defines no {net.build_func_name}()")
    for key in net.static_kwargs:
        if FUNCTION_KWARG.search(key) and key not in ("mapping_func", "synthesis_func"):
            raise CheckpointError(f"{where}: network {net.name}: kwarg {key}={net.static_kwargs[key]!r} names a "
                                  "function; refused")
    for child in net.components.values():
        _check_functions(child, where)


def module_from_tf_network(
    net: TFNetwork,                                          # The network record.
    where: str,                                              # Names the source in error messages.
    kinds: tuple[str, ...] = ("generator", "discriminator"),  # Which kinds of network are accepted.
) -> nn.Module:
    """The PyTorch module computing what `net` computes, chosen by its build function, in eval mode."""
    _check_functions(net, where)
    table = {**(GENERATORS if "generator" in kinds else {}), **(DISCRIMINATORS if "discriminator" in kinds else {})}
    convert = table.get(net.build_func_name)
    if convert is None:
        raise CheckpointError(f"{where}: network {net.name} ({net.build_func_name}) is not a {' or '.join(kinds)}")
    try:
        module = convert(net, where)
    except Unsupported as e:
        raise CheckpointError(f"{where}: {e}") from None
    return module.eval().requires_grad_(False)


def _networks(path: Path) -> dict[str, TFNetwork]:
    data = read_tf_pickle(path)
    nets = {"network": data} if isinstance(data, TFNetwork) else \
        dict(zip(("G", "D", "Gs"), data)) if isinstance(data, tuple) and len(data) == 3 else {}
    if not nets or not all(isinstance(n, TFNetwork) and hasattr(n, "variables") for n in nets.values()):
        raise CheckpointError(f"{path}: neither a (G, D, Gs) tuple nor one TensorFlow network")
    return nets


def load_tf_generator(path: str | Path) -> nn.Module:
    """Gs of a (G, D, Gs) TensorFlow pickle, or its one generator network, as our Generator."""
    path = Path(path)
    nets = _networks(path)
    key = "Gs" if "Gs" in nets else "network"
    return module_from_tf_network(nets[key], f"{path} ({key})", kinds=("generator",))


def load_tf_discriminator(path: str | Path) -> nn.Module:
    """D of a (G, D, Gs) TensorFlow pickle, or its one discriminator network (e.g. an attribute classifier)."""
    path = Path(path)
    nets = _networks(path)
    key = "D" if "D" in nets else "network"
    return module_from_tf_network(nets[key], f"{path} ({key})", kinds=("discriminator",))


__all__ = ["ALLOWED_GLOBALS", "TFUnpickler", "load_tf_discriminator", "load_tf_generator", "module_from_tf_network",
           "read_tf_pickle"]
