"""atomic_write: all or nothing, no stray temporary files, ordinary permissions."""

import os

import pytest

from stylegan_core.files import atomic_write


def test_new_file_gets_umask_permissions_and_existing_keeps_its_own(tmp_path):
    mask = os.umask(0o022)
    try:
        path = tmp_path / "out.bin"
        with atomic_write(path) as f:
            f.write(b"one")
        assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0o600
        path.chmod(0o640)
        with atomic_write(path) as f:
            f.write(b"two")
        assert path.read_bytes() == b"two" and path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(mask)


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
