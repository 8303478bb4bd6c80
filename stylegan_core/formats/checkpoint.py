"""The one-file checkpoint format: tagged, versioned, loaded with weights_only=True, written atomically."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stylegan_core.errors import CheckpointError, InputError
from stylegan_core.limits import LimitError, build_within
from stylegan_core.files import atomic_write, check_output_name
from stylegan_core.networks.generator import Generator
from stylegan_core.formats.nvidia_pickle import load_nvidia_generator
from stylegan_core.formats.rosinality import load_rosinality_generator
from stylegan_core.formats.safe_load import load_weights_only
from stylegan_core.formats.sources import detect_source
from stylegan_core.formats.tf_pickle import load_tf_discriminator, load_tf_generator
from stylegan_core.networks.discriminator import Discriminator
from stylegan_core.networks.residual_discriminator import ResidualDiscriminator

FORMAT_TAG = "stylegan-metrics-checkpoint"
SOURCE_KINDS = {"native": "checkpoint", "nvidia": "NVIDIA network pickle", "rosinality": "rosinality checkpoint",
                "tensorflow": "NVIDIA TensorFlow pickle"}
FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    if isinstance(value, (nn.Module, torch.optim.Optimizer)):
        return value.state_dict()
    return value


def check_checkpoint_out(path: str | os.PathLike) -> Path:
    """A checkpoint about to be written (convert's OUT, train-classifier's --out): its name ends in .pt and its
    place can be written, checked before the work. The checkpoint replaces whatever file has the name, so another
    kind of file (`data.zip`, `dataset.json`) is refused, as `stats --out` refuses all but .npz."""
    return check_output_name(path, ".pt", "checkpoints are written to a name ending in .pt (refusing to replace "
                                          "another kind of file)")


def save_checkpoint(path: str | os.PathLike, **parts: Any) -> Path:
    """Write `parts` (state dicts, `config`, `step`, ...) with the format tag, via temp file + rename.

    Modules and optimizers given directly are stored as their state dicts; when `G` is a module
    and no `config` is given, the config is taken from the modules' `.config`.
    """
    path = Path(path)
    if "config" not in parts and isinstance(parts.get("G"), nn.Module):
        parts["config"] = {k: parts[k].config for k in ("G", "D") if hasattr(parts.get(k), "config")}
    try:
        json.dumps(parts.get("config", {}))
    except TypeError as e:
        raise CheckpointError(f"{path}: config must be JSON-serializable ({e})") from None
    payload = {"format": FORMAT_TAG, "version": FORMAT_VERSION}
    payload.update({k: _plain(v) for k, v in parts.items()})
    with atomic_write(path) as f:
        torch.save(payload, f)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with `torch.load(weights_only=True)`; any problem is a `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    data = load_weights_only(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT_TAG:
        raise CheckpointError(f"{path}: not a stylegan-metrics checkpoint (no '{FORMAT_TAG}' format tag)")
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version!r}; this release reads up to {FORMAT_VERSION}")
    return data


def build_module(path: Path, cls: type[nn.Module], config: Any, state: Any, name: str) -> nn.Module:
    """Construct `cls(**config)` and load `state` strictly, turning every mismatch into a CheckpointError. The
    construction may allocate only a bounded multiple of the stored weights (`limits.build_within`), so a config
    such as img_resolution 65536 beside a 16 px generator's weights is refused before the memory is taken."""
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise CheckpointError(f"{path}: no constructor config for {name}")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no {name} weights")
    try:
        module = build_within(lambda: cls(**config), state)
    except LimitError as e:
        raise CheckpointError(f"{path}: {name} config does not fit its stored weights: {e}") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError,
            RuntimeError) as e:
        raise CheckpointError(f"{path}: bad {name} config ({e})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise CheckpointError(f"{path}: {name} weights do not fit its config ({detail[:300]})") from None
    return module


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """The EMA generator of a checkpoint, rebuilt from its config, in eval mode on `device`.

    Also reads, by content, NVIDIA network pickles (`G_ema`, see `nvidia_pickle`: no code from the file
    runs; StyleGAN2 / ADA as arch='stylegan2', conditional ones too; StyleGAN3 as 'stylegan3-t' / 'stylegan3-r')
    and rosinality `.pt` checkpoints (`g_ema`, see `rosinality`), as arch='stylegan2'; and
    NVIDIA's TensorFlow pickles (Gs of a (G, D, Gs) tuple, see `tf_pickle`), as 'stylegan' or 'stylegan2'.
    """
    path = Path(path)
    source = detect_source(path) if path.is_file() else "native"
    with _malformed_is_checkpoint_error(path, source):
        G = _load_generator(path, source)
    return G.eval().requires_grad_(False).to(device)


def _own_checkpoint(path: Path, network: str) -> tuple[dict, dict | None]:
    """This project's checkpoint: its parts and the config of one network ('G' or 'D'), None when unrecorded."""
    data = load_checkpoint(path)
    config = data.get("config")
    return data, config.get(network) if isinstance(config, dict) else None


def _load_generator(path: Path, source: str) -> Generator:
    if source == "tensorflow":
        G = load_tf_generator(path)
    elif source == "nvidia":
        G = load_nvidia_generator(path)
    elif source == "rosinality":
        G = load_rosinality_generator(path)
    else:
        data, g_config = _own_checkpoint(path, "G")
        G = build_module(path, Generator, g_config, data.get("G_ema", data.get("G")), "generator")
    return G


@contextmanager
def _malformed_is_checkpoint_error(path: Path, source: str):
    """A crafted or damaged file that a loader trips over (a string z_dim, a record of the wrong type, a cycle)
    is one CheckpointError naming the file, never a traceback."""
    try:
        yield
    except InputError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RuntimeError, OverflowError,
            RecursionError, MemoryError) as e:
        detail = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{path}: malformed {SOURCE_KINDS.get(source, source)} ({type(e).__name__}"
                              f"{': ' + detail if detail else ''})") from None


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The discriminator of a checkpoint (`D(images, c) -> [N, 1]`), in eval mode on `device`.

    Reads this project's checkpoints ('D' with its config: Discriminator, or ResidualDiscriminator when
    its blocks have skip layers) and, by content, NVIDIA's TensorFlow pickles (D of a (G, D, Gs) tuple,
    or a file of one discriminator network such as an attribute classifier; see `tf_pickle`).
    """
    path = Path(path)
    source = detect_source(path) if path.is_file() else "native"
    if source in ("nvidia", "rosinality"):
        raise CheckpointError(f"{path}: reading the discriminator of this file ({source}) is not supported; "
                              "this project's checkpoints and NVIDIA's TensorFlow pickles are")
    with _malformed_is_checkpoint_error(path, source):
        if source == "tensorflow":
            D = load_tf_discriminator(path)
        else:
            data, d_config = _own_checkpoint(path, "D")
            state = data.get("D")
            residual = isinstance(state, dict) and any(k.endswith(".skip.weight") for k in state)
            D = build_module(path, ResidualDiscriminator if residual else Discriminator, d_config, state,
                             "discriminator")
    return D.eval().requires_grad_(False).to(device)
