"""Resumable runs: a state folder whose manifest holds a run's parameters and whose chunk files hold what each
finished chunk of samples left (saved atomically, checked on load)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from stylegan_core import ranks
from stylegan_core.errors import InputError
from stylegan_core.files import atomic_write


STATE_VERSION = 1
DEFAULT_CHUNK = 4096  # samples per chunk: the unit of sharding and of checkpointing
Payload = dict[str, np.ndarray]


class RunState:
    """A state folder: `manifest.json` (the parameters that fix the result) and `chunk-NNNNNN.npz` files."""

    def __init__(
        self,
        folder: str | os.PathLike,  # Created if missing; reused by a run with the same parameters.
        key: dict,                  # JSON-able parameters; any difference means the saved chunks do not apply.
    ):
        self.folder = Path(folder)
        self.key = json.loads(json.dumps({"state_version": STATE_VERSION, **key}, sort_keys=True))
        self.manifest = self.folder / "manifest.json"
        stored = self._read_manifest()
        if stored is not None and stored != self.key:
            changed = sorted(k for k in set(stored) | set(self.key) if stored.get(k) != self.key.get(k))
            first = changed[0]
            raise InputError(f"{self.folder} holds the state of a run with other parameters ({first}: "
                             f"{_short(stored.get(first))} there, {_short(self.key.get(first))} now"
                             f"{f'; also {len(changed) - 1} more' if len(changed) > 1 else ''}); rerun the same "
                             f"command to resume it, or delete the folder or pass another --state-dir")
        if stored is None:
            for old in self.folder.glob("chunk-*.npz"):  # no valid manifest: nothing here can be trusted
                old.unlink(missing_ok=True)
            with atomic_write(self.manifest) as f:
                f.write(json.dumps(self.key, indent=1, sort_keys=True).encode())
        ranks.barrier()
        self.digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:16]

    def _read_manifest(self) -> dict | None:
        if not self.manifest.is_file():
            return None
        try:
            return json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            warnings.warn(f"{self.manifest} is damaged; starting this run's state afresh", stacklevel=3)
            return None

    def chunk_file(self, chunk: int) -> Path:
        return self.folder / f"chunk-{chunk:06d}.npz"

    def load(self, chunk: int, expected: dict[str, tuple]) -> Payload | None:
        """The saved arrays of `chunk` when present and intact (names and shapes as `expected`, -1 for any
        length), else None."""
        path = self.chunk_file(chunk)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["_run"]) != self.digest:
                    raise ValueError("written by another run")
                payload = {name: np.array(data[name]) for name in expected}
            for name, shape in expected.items():
                got = payload[name].shape
                if len(got) != len(shape) or any(e not in (-1, g) for g, e in zip(got, shape)):
                    raise ValueError(f"{name} has shape {payload[name].shape}, expected {shape}")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            warnings.warn(f"{path} is damaged ({e}); computing that chunk again", stacklevel=2)
            return None
        return payload

    def save(self, chunk: int, payload: Payload) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, _run=np.str_(self.digest), **payload)
        with atomic_write(self.chunk_file(chunk)) as f:
            f.write(buffer.getvalue())

    def remove(self) -> None:
        """After the result is computed: our files go (rank 0, once every rank is done with them), and the
        folder too when nothing else is in it."""
        ranks.barrier()
        if not ranks.is_main():
            return
        for path in [*self.folder.glob("chunk-*.npz"), *self.folder.glob(".chunk-*"), *self.folder.glob(".manifest.json.*"),
                     self.manifest]:
            path.unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:  # the user keeps other files there
            pass


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
