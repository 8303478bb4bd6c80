"""Safe file writes: atomic replacement (temporary file, fsync, rename), all-or-nothing appends, and early checks
that an output can be written; failures are OutputError, and a SIGTERM or SIGHUP leaves no temporary file."""

from __future__ import annotations

import errno
import os
import secrets
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from stylegan_core.errors import OutputError

# errno values of a refused write to an open file (an OSError of other code inside the block, such as a failed
# download, stays what it is)
FILE_SYSTEM_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}
CLEANUP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)

_pending: set[str] = set()  # temporary files of writes in progress, removed when a signal ends the process


def output_error(path: str | os.PathLike, e: OSError) -> OutputError:
    """'cannot write PATH: No space left on device' (the OS's reason, one line)."""
    reason = e.strerror or type(e).__name__
    return OutputError(f"cannot write {path}: {reason}")


@contextmanager
def atomic_write(
    path: str | os.PathLike,   # The file to (re)place.
    suffix: str = ".tmp",      # Ending of the temporary file's name (beside `path`, hidden by a leading dot).
) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces `path`, on any exception it is removed and `path` is untouched.

    A new file gets the permissions open() would give it (0o666 minus the umask); a replaced one keeps its own.
    File-system failures (full, read-only, a folder in the way, ...) raise OutputError naming `path`; a SIGTERM or
    SIGHUP during the write removes the temporary file before the process ends as the signal says."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    own = True  # the failing call is ours (not the caller's code inside the block)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path, suffix)
        with _removed_on_signals(tmp), os.fdopen(fd, "wb") as f:
            if path.is_file():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            own = False
            yield f
            own = True
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and (own or e.errno in FILE_SYSTEM_ERRORS):
            raise output_error(path, e) from None
        raise


def append_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Append `data` (e.g. JSON lines) to `path`, all or nothing: on any failure (a full disk part way through)
    the file is truncated back to its old length, or removed when this call created it. A file whose last line
    lacks its newline gets one first, so a new line never joins an old one."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as e:
        raise output_error(path, e) from None
    size = None
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException as e:
        if size is not None:
            os.ftruncate(fd, size)
        if not existed:
            path.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise output_error(path, e) from None
        raise
    finally:
        os.close(fd)
    return path


def check_writable(path: str | os.PathLike) -> None:
    """Fail before the work, not after it: `path` must not be a folder, and its folder (or the nearest existing
    parent, when it is still to be made) must accept a new file. A full disk is found only when writing."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: {folder} is not a folder")
    if path.parent.exists():
        try:
            fd, probe = _create_temporary(path, ".probe")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise output_error(path, e) from None
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {folder} is not writable")


def _create_temporary(path: Path, suffix: str) -> tuple[int, str]:
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), tmp
        except FileExistsError:
            continue


@contextmanager
def _removed_on_signals(tmp: str) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP (when nothing else handles them) first remove the pending temporary
    files, then end the process with the signal's own default action (so its exit status still says so)."""
    _pending.add(tmp)
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in CLEANUP_SIGNALS:
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _remove_pending_and_die)
                installed.append(sig)
    try:
        yield
    finally:
        _pending.discard(tmp)
        for sig in installed:
            if signal.getsignal(sig) is _remove_pending_and_die:
                signal.signal(sig, signal.SIG_DFL)


def _remove_pending_and_die(signum, frame) -> None:
    for tmp in list(_pending):
        try:
            os.unlink(tmp)
        except OSError:
            pass
    _pending.clear()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
