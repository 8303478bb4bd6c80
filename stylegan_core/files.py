"""Atomic file writes: a temporary file beside the target, fsync, then a rename, so no half-written file."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def atomic_write(
    path: str | os.PathLike,   # The file to (re)place.
    suffix: str = ".tmp",      # Ending of the temporary file's name (beside `path`, hidden by a leading dot).
) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces `path`, on any exception it is removed and `path` is untouched.

    A new file gets the permissions open() would give it (0o666 minus the umask); a replaced one keeps its own."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path, suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            if path.is_file():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_temporary(path: Path, suffix: str) -> tuple[int, str]:
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), tmp
        except FileExistsError:
            continue
