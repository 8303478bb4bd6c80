"""Safe file writes: atomic replacement (temporary file, fsync, rename), all-or-nothing locked appends, and early
checks that an output can be written; failures are OutputError, and a SIGTERM or SIGHUP leaves no temporary file."""

from __future__ import annotations

import errno
import os
import secrets
import signal
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

from stylegan_core.errors import OutputError

# errno values of a refused write to an open file (an OSError of other code inside the block, such as a failed
# download, stays what it is)
FILE_SYSTEM_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}
CLEANUP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)

LOCK_TIMEOUT_SECONDS = 60  # the longest an append waits for another process's append to the same file
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


def append_atomically(
    path: str | os.PathLike,                       # A regular file (created if missing), or a device such as /dev/null.
    data: bytes,                                   # Whole lines, each ending in a newline.
    *,
    check: Callable[[Path], None] | None = None,   # Run under the lock before writing; raises to refuse the file.
) -> Path:
    """Append `data` to `path`, all or nothing, beside other processes appending to the same file.

    An exclusive lock (flock) is held from before the old length is read until the new lines are on disk, so a
    failed write (a full disk part way through) truncates the file back to its old length, removing this call's
    bytes only (or removes the file when this call created it). A file whose last line lacks its newline gets
    one first, so a new line never joins an old one. Any OSError raises OutputError naming `path`."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, created = _open_locked(path)
    except OSError as e:
        raise output_error(path, e) from None
    size = None
    try:
        if check is not None:
            check(path)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if size is not None:
            os.fsync(fd)  # devices and pipes cannot be synced (EINVAL)
    except BaseException as e:
        _undo_append(fd, path, size, created)
        if isinstance(e, OSError):
            raise output_error(path, e) from None
        raise
    finally:
        os.close(fd)  # releases the lock
    return path


def _open_locked(path: Path) -> tuple[int, bool]:
    """A descriptor of `path` for appending (locked when it is a regular file) and whether this call created it.
    Retries when the file it locked was removed or replaced meanwhile (by a failed append that created it)."""
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    while True:
        try:
            fd, created = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o666), True
        except FileExistsError:
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
                fd, created = os.open(path, (os.O_RDWR if regular else os.O_WRONLY) | os.O_APPEND), False
            except FileNotFoundError:
                continue
        try:
            own = os.fstat(fd)
            if not stat.S_ISREG(own.st_mode):
                return fd, created
            _lock(fd, path, deadline)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (own.st_dev, own.st_ino):
                return fd, created
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _lock(fd: int, path: Path, deadline: float) -> None:
    """An exclusive flock on `fd`, waiting up to LOCK_TIMEOUT_SECONDS for another process to release it."""
    if fcntl is None:  # no flock on this system
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OutputError(f"cannot write {path}: another process has held its lock for "
                                  f"{LOCK_TIMEOUT_SECONDS} s") from None
            time.sleep(0.01)


def _undo_append(fd: int, path: Path, size: int | None, created: bool) -> None:
    """After a failed append: back to the old length (a regular file, still locked), the file gone if this call
    made it; a failure here (a device cannot be truncated) leaves the first error to be reported."""
    if size is None:
        return
    try:
        os.ftruncate(fd, size)
        if created and size == 0:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def check_output_name(path: str | os.PathLike, suffix: str, refusal: str, *, writable: bool = True) -> Path:
    """An output file about to be replaced by a whole new one (a checkpoint, a statistics file, a CSV table),
    checked before the work: its name ends in `suffix`, so that another kind of file (`dataset.json`, `data.zip`,
    an image) is never replaced (OutputError "PATH: `refusal`"), and, with `writable`, its place accepts it."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise OutputError(f"{path}: {refusal}")
    if writable:
        check_writable(path)
    return path


def check_writable(path: str | os.PathLike) -> None:
    """Fail before the work, not after it: `path` must not be a folder, and its folder (or the nearest existing
    parent, when it is still to be made) must accept a new file. A full disk is found only when writing."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if path.exists() and not path.is_file():  # a device (/dev/null) or a pipe: written in place, no file beside it
        if not os.access(path, os.W_OK):
            raise OutputError(f"cannot write {path}: Permission denied")
        return
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
