"""Resumable runs: a state folder whose manifest holds a run's parameters and whose chunk files hold what each
finished chunk of samples left (saved atomically with a digest of their contents, checked on load)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from stylegan_core import ranks
from stylegan_core.errors import InputError
from stylegan_core.files import atomic_write
from stylegan_core.limits import LimitError, check_array_sizes, npz_headers


STATE_VERSION = 1
DEFAULT_CHUNK = 4096  # samples per chunk: the unit of sharding and of checkpointing
Payload = dict[str, np.ndarray]
RUN, DIGEST = "_run", "_digest"  # a chunk's marker (the run's parameter hash) and the hash of its contents
# the state folders of earlier versions, one per metric kind (now one per metric name): a rerun finds its own there
EARLIER_FOLDERS = ("fid", "kid", "pr", "is", "ls", "fid-reference", "kid-reference", "pr-reference")
CHUNK_NAME = re.compile(r"chunk-\d{6,}\.npz")
TEMPORARY_NAME = re.compile(r"\.(chunk-\d{6,}\.npz|manifest\.json)\.[0-9a-f]{12}\.tmp")  # atomic_write's


class RunState:
    """A state folder: `manifest.json` (the parameters that fix the result) and `chunk-NNNNNN.npz` files.

    Only files that carry this tool's marker are ever replaced or deleted: a manifest that is not a JSON object
    with a `state_version`, or (in a folder without our manifest) a `chunk-*.npz` without the run marker, makes the
    folder refused as it is."""

    def __init__(
        self,
        folder: str | os.PathLike,  # Created if missing; reused by a run with the same parameters.
        key: dict,                  # JSON-able parameters; any difference means the saved chunks do not apply.
    ):
        self.folder = Path(folder)
        self.key = json.loads(json.dumps({"state_version": STATE_VERSION, **key}, sort_keys=True))
        self.manifest = self.folder / "manifest.json"
        if ranks.is_main():
            adopt_earlier_folder(self.folder, self.key)
        ranks.barrier()
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.folder}: the state folder is a file; pass another --state-dir")
        stored = self._read_manifest()
        if stored is not None and stored != self.key:
            changed = sorted(k for k in set(stored) | set(self.key)
                             if (k in stored, stored.get(k)) != (k in self.key, self.key.get(k)))
            first = changed[0]
            raise InputError(f"{self.folder} holds the state of a run with other parameters ({first}: "
                             f"{_short(stored.get(first), first in stored)} there, "
                             f"{_short(self.key.get(first), first in self.key)} now"
                             f"{f'; also {len(changed) - 1} more' if len(changed) > 1 else ''}); rerun the same "
                             f"command to resume it, or delete the folder or pass another --state-dir")
        chunks = sorted(self.folder.glob("chunk-*.npz"))
        # with our manifest the folder is ours (a damaged chunk is recomputed); without it, only marked chunks go
        foreign = [p for p in chunks if not p.is_file() or (stored is None and not _is_our_chunk(p))]
        if foreign:
            raise InputError(f"{self.folder} holds {foreign[0].name}, which is not a chunk file of this tool; "
                             f"pass another --state-dir (nothing in the folder was changed)")
        if stored is None:
            for old in chunks:  # ours, but without a manifest nothing says which run left them
                old.unlink(missing_ok=True)
            with atomic_write(self.manifest) as f:
                f.write(json.dumps(self.key, indent=1, sort_keys=True).encode())
        ranks.barrier()
        self.digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:16]

    def _read_manifest(self) -> dict | None:
        """The stored parameters; None when there is no manifest; an InputError for a file that is not ours."""
        if not self.manifest.exists() and not self.manifest.is_symlink():
            return None
        reason = None
        try:
            stored = json.loads(self.manifest.read_text())
        except IsADirectoryError:
            reason = "a folder"
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
            reason = f"unreadable: {type(e).__name__}"
        else:
            if not isinstance(stored, dict):
                reason = f"a JSON {type(stored).__name__}"
            elif "state_version" not in stored:
                reason = "no state_version"
        if reason:
            raise InputError(f"{self.manifest} is not a state manifest of this tool ({reason}); delete the folder "
                             f"or pass another --state-dir (nothing in it was changed)")
        return stored

    def chunk_file(self, chunk: int) -> Path:
        return self.folder / f"chunk-{chunk:06d}.npz"

    def load(self, chunk: int, expected: dict[str, tuple]) -> Payload | None:
        """The saved arrays of `chunk` when present and intact (names and shapes as `expected`, -1 for any
        length; its digest matches; every float finite), else None: a damaged chunk is deleted with a warning,
        to be computed again."""
        path = self.chunk_file(chunk)
        if not path.is_file():
            return None
        try:
            headers = npz_headers(path)
            for name, shape in expected.items():
                if name not in headers:
                    raise ValueError(f"no array {name}")
                got = headers[name][0]
                if len(got) != len(shape) or any(e not in (-1, g) for g, e in zip(got, shape)):
                    raise ValueError(f"{name} has shape {got}, expected {shape}")
            check_array_sizes(headers)
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: np.array(data[name]) for name in data.files}
            if str(arrays.get(RUN)) != self.digest:
                raise ValueError("written by another run")
            if str(arrays.pop(DIGEST, "")) != payload_digest(arrays):
                raise ValueError("its contents do not match their digest")
            payload = {name: arrays[name] for name in expected}
            for name, a in payload.items():
                if a.dtype.kind in "fc" and not np.isfinite(a).all():
                    raise ValueError(f"{name} holds NaN or Inf")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, LimitError) as e:
            warnings.warn(f"{path} is damaged ({e}); computing that chunk again", stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        return payload

    def save(self, chunk: int, payload: Payload) -> None:
        arrays = {RUN: np.str_(self.digest), **{name: np.asarray(a) for name, a in payload.items()}}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, **{DIGEST: np.str_(payload_digest(arrays))})
        with atomic_write(self.chunk_file(chunk)) as f:
            f.write(buffer.getvalue())

    def remove(self) -> None:
        """After the result is computed (rank 0, once every rank is done with them): the files this run wrote go
        (the manifest, chunks carrying this run's marker, our temporary files); any other file stays, and then
        the folder stays too, with a warning naming what is in it."""
        ranks.barrier()
        if not ranks.is_main() or not self.folder.is_dir():
            return
        for path in sorted(self.folder.iterdir()):
            if self._wrote(path):
                path.unlink(missing_ok=True)
        others = sorted(p.name for p in self.folder.iterdir())
        if not others:
            self.folder.rmdir()
            return
        warnings.warn(f"{self.folder} is kept: it holds {len(others)} file(s) this tool did not write "
                      f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); the run's own files are "
                      f"removed", stacklevel=2)

    def _wrote(self, path: Path) -> bool:
        """A file of this run: the manifest with this run's parameters, a chunk with this run's marker, or a
        temporary file of an atomic write (`.chunk-NNNNNN.npz.<hex>.tmp`, `.manifest.json.<hex>.tmp`)."""
        if not path.is_file() or path.is_symlink():
            return False
        if path == self.manifest:
            try:
                return self._read_manifest() == self.key
            except InputError:
                return False
        if CHUNK_NAME.fullmatch(path.name):
            return _marker(path) == self.digest
        return TEMPORARY_NAME.fullmatch(path.name) is not None


def adopt_earlier_folder(folder: Path, key: dict) -> Path | None:
    """When `folder` does not exist and a sibling named as an earlier version named state folders (EARLIER_FOLDERS,
    one per metric kind) holds a manifest of exactly `key` (the same run: its chunks carry the same marker), that
    sibling is renamed to `folder` and returned; otherwise nothing changes and the result is None."""
    if folder.exists() or folder.is_symlink() or not folder.parent.is_dir():
        return None
    for name in EARLIER_FOLDERS:
        earlier = folder.parent / name
        if earlier == folder or earlier.is_symlink() or not earlier.is_dir():
            continue
        try:
            stored = json.loads((earlier / "manifest.json").read_text())
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            continue
        if stored == key:
            try:
                earlier.rename(folder)
            except OSError:
                return None
            return folder
    return None


def payload_digest(arrays: Payload) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _is_our_chunk(path: Path) -> bool:
    """A chunk file this tool wrote: a zip holding the run marker (its contents are checked on load)."""
    return _marker(path) is not None


def _marker(path: Path) -> str | None:
    """The run marker stored in a chunk file, or None when it has none (not a zip, no marker, not a short
    string)."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{RUN}.npy")
            if info.file_size > 1024:
                return None
            array = np.lib.format.read_array(io.BytesIO(zf.read(info)), allow_pickle=False)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return str(array) if array.dtype.kind == "U" and array.ndim == 0 else None


def _short(value, present: bool = True) -> str:
    if not present:
        return "absent"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
