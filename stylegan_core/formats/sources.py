"""Tell checkpoint sources apart by content, reading only pickle opcodes (nothing is unpickled or run)."""

from __future__ import annotations

import itertools
import pickletools
import zipfile
from pathlib import Path
from typing import BinaryIO

STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def _strings(f: BinaryIO) -> set[str]:
    """Short string constants of one pickle (e.g. dict keys), read opcode by opcode up to its STOP."""
    return {arg for op, arg, _ in pickletools.genops(f) if op.name in STRING_OPS and isinstance(arg, str) and len(arg) < 64}


def _is_legacy_torch(f: BinaryIO) -> bool:
    """torch.save's pre-zip format starts with a pickled magic number: PROTO, an int, STOP."""
    try:
        ops = [op.name for op, _, _ in itertools.islice(pickletools.genops(f), 3)]
    except ValueError:
        return False
    return len(ops) == 3 and ops[0] == "PROTO" and ops[1] in ("LONG1", "BININT", "BININT1", "BININT2") and ops[2] == "STOP"


def _is_tensorflow(f: BinaryIO, opcodes: int = 64) -> bool:
    """NVIDIA's TensorFlow pickles name `dnnlib.tflib.network.Network` (ProGAN: `tfutil.Network`) near the start."""
    for op, arg, _ in itertools.islice(pickletools.genops(f), opcodes):
        if isinstance(arg, str) and (arg.startswith("dnnlib.tflib.network") or arg == "tfutil Network"):
            return True
    return False


def detect_source(path: Path) -> str:
    """'nvidia' (a plain network pickle), 'tensorflow' (NVIDIA's TF network pickles), 'rosinality' (a torch file
    with a 'g_ema' key) or 'native' (anything else)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next((n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
                if name is None:
                    return "native"
                with zf.open(name) as f:
                    return "rosinality" if "g_ema" in _strings(f) else "native"
        with open(path, "rb") as f:
            if f.read(1) != b"\x80":
                return "native"
            f.seek(0)
            if not _is_legacy_torch(f):
                f.seek(0)
                try:
                    return "tensorflow" if _is_tensorflow(f) else "nvidia"
                except ValueError:
                    return "nvidia"  # its loader reports the problem
            for _ in range(2):  # protocol version, system info
                _strings(f)
            return "rosinality" if "g_ema" in _strings(f) else "native"
    except (OSError, ValueError, zipfile.BadZipFile):
        return "native"  # the native loader reports the problem
