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
from stylegan_core.formats.numpy_data import TORCH_SAFE_GLOBALS, Refused


def load_weights_only(path: Path, allowed: list[type] | None = None) -> Any:
    """`torch.load(weights_only=True)` on the CPU, `allowed` globals (and numeric numpy data) let through for this call only.

    A refused global or a broken file is a CheckpointError naming `path`.
    """
    try:
        with torch.serialization.safe_globals(TORCH_SAFE_GLOBALS + list(allowed or [])):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Refused as e:
        raise CheckpointError(f"{path}: refused to load: {e}; only tensors and plain data are allowed") from None
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"it references {found.group(1)}" if found else "it holds more than tensors and plain data"
        raise CheckpointError(f"{path}: refused to load: {what}; only tensors and plain data are allowed") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: truncated or not a PyTorch file ({type(e).__name__})") from None
