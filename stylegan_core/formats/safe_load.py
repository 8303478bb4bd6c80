"""Reading torch files with `torch.load(weights_only=True)`: no code from the file runs; every failure is a CheckpointError.

Numeric numpy arrays, scalars and dtypes inside the file are read as data (see `numpy_data`).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from stylegan_core.errors import CheckpointError
from stylegan_core.limits import LimitError, PickleLengthError, check_pickle_lengths, check_tensor_claims, check_torch_zip

LEGACY_PICKLES = 5  # torch.save's pre-zip format: magic number, protocol, system info, content, storage keys
from stylegan_core.formats.numpy_data import TORCH_SAFE_GLOBALS, Refused


def load_weights_only(path: Path, allowed: list[type] | None = None) -> Any:
    """`torch.load(weights_only=True)` on the CPU, `allowed` globals (and numeric numpy data) let through for this call only.

    A refused global or a broken file is a CheckpointError naming `path`; so is a file that is not a torch file at
    all (an image, text), a zip whose members fail their CRC or declare far more than the file holds, a pickle
    (torch.save's older format) with an opcode that declares more bytes than the file holds, and tensors that claim
    far more memory than the file's size (zero-stride views).
    """
    pickled = _check_kind(path)
    try:
        if pickled:
            with open(path, "rb") as f:
                check_pickle_lengths(f, path.stat().st_size, pickles=LEGACY_PICKLES)
        check_torch_zip(path)  # declared sizes, then CRCs: torch checks neither
        with torch.serialization.safe_globals(TORCH_SAFE_GLOBALS + list(allowed or [])):
            data = torch.load(path, map_location="cpu", weights_only=True)
        check_tensor_claims(data, path.stat().st_size)
        return data
    except PickleLengthError as e:
        raise CheckpointError(f"{path}: truncated or not a PyTorch file ({e})") from None
    except LimitError as e:
        raise CheckpointError(f"{path}: refused: {e}") from None
    except Refused as e:
        raise CheckpointError(f"{path}: refused to load: {e}; only tensors and plain data are allowed") from None
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"it references {found.group(1)}" if found else "it holds more than tensors and plain data"
        raise CheckpointError(f"{path}: refused to load: {what}; only tensors and plain data are allowed") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, RecursionError, MemoryError) as e:
        raise CheckpointError(f"{path}: truncated or not a PyTorch file ({type(e).__name__})") from None


def _check_kind(path: Path) -> bool:
    """A torch file is a zip (torch.save) or a pickle (protocol 2+, older torch.save: True); anything else is
    named."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})") from None
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return head[:1] == b"\x80"
    kinds = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"BM": "a BMP image"}
    kind = next((k for magic, k in kinds.items() if head.startswith(magic)), None)
    if kind is None:
        text = head.lstrip()
        kind = "JSON" if text[:1] in (b"{", b"[") else "text" if text and all(32 <= b < 127 or b in b"\t\r\n"
                                                                            for b in text) else "an unknown format"
    raise CheckpointError(f"{path}: not a checkpoint ({kind}); expected a checkpoint of this tool, an NVIDIA network "
                          f"pickle or a rosinality .pt file")
