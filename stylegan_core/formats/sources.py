"""Tell checkpoint sources apart by content, reading only pickle opcodes (nothing is unpickled or run, and no opcode
reads more bytes than its file holds)."""

from __future__ import annotations

import itertools
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

from stylegan_core.limits import LimitError, check_zip_members, pickle_opcodes

STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def _strings(f: BinaryIO, size: int) -> set[str]:
    """Short string constants of one pickle (e.g. dict keys), read opcode by opcode up to its STOP."""
    return {arg for name, arg in pickle_opcodes(f, size) if name in STRING_OPS and isinstance(arg, str) and len(arg) < 64}


def _is_legacy_torch(f: BinaryIO, size: int) -> bool:
    """torch.save's pre-zip format starts with a pickled magic number: PROTO, an int, STOP."""
    try:
        ops = [name for name, _ in itertools.islice(pickle_opcodes(f, size), 3)]
    except ValueError:
        return False
    return len(ops) == 3 and ops[0] == "PROTO" and ops[1] in ("LONG1", "BININT", "BININT1", "BININT2") and ops[2] == "STOP"


def _is_tensorflow(f: BinaryIO, size: int, opcodes: int = 64) -> bool:
    """NVIDIA's TensorFlow pickles name `dnnlib.tflib.network.Network` (ProGAN: `tfutil.Network`) near the start."""
    for _, arg in itertools.islice(pickle_opcodes(f, size), opcodes):
        if isinstance(arg, str) and (arg.startswith("dnnlib.tflib.network") or arg == "tfutil Network"):
            return True
    return False


def detect_source(path: Path) -> str:
    """'nvidia' (a plain network pickle), 'tensorflow' (NVIDIA's TF network pickles), 'rosinality' (a torch file
    with a 'g_ema' key) or 'native' (anything else)."""
    try:
        with open(path, "rb") as f:
            pickled = f.read(1) == b"\x80"  # a pickle may hold a zip (an embedded storage) that is_zipfile finds
        if not pickled and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                check_zip_members(zf, os.stat(path).st_size)  # no member inflates past the budget while sniffing
                name = next((n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
                if name is None:
                    return "native"
                with zf.open(name) as f:
                    return "rosinality" if "g_ema" in _strings(f, zf.getinfo(name).file_size) else "native"
        if not pickled:
            return "native"
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not _is_legacy_torch(f, size):
                f.seek(0)
                try:
                    return "tensorflow" if _is_tensorflow(f, size) else "nvidia"
                except ValueError:
                    return "nvidia"  # its loader reports the problem
            for _ in range(2):  # protocol version, system info
                _strings(f, size)
            return "rosinality" if "g_ema" in _strings(f, size) else "native"
    except (OSError, ValueError, zipfile.BadZipFile, LimitError):
        return "native"  # the native loader reports the problem
