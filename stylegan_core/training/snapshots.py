"""Snapshot file names (NVIDIA's whole kimg, with the images past it when that name is taken) and their exclusive
publication: a snapshot never replaces a file."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from stylegan_core.errors import OutputError

PREFIX = "network-snapshot-"
# network-snapshot-KKKKKK[_FFF].pt: KKKKKK the whole kimg (6 digits, NVIDIA's); _FFF the images past it (3 digits),
# present when an earlier snapshot of the run has that whole kimg (1504 images: network-snapshot-000001_504.pt).
NAME = re.compile(r"network-snapshot-(\d+)(?:_(\d{3}))?(?:\.\w+)?$")  # any suffix, or none
STAGED = ".staged"  # hidden copy of a snapshot written before it takes its name: .NAME.staged
# errno values of a file system without hard links (then: check, then rename)
NO_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EPERM),
            getattr(errno, "EOPNOTSUPP", errno.EPERM)}


def snapshot_stem(images: int, previous: int | None) -> str:
    """The name (without suffix) of a snapshot at `images` shown, the previous snapshot of the run (written or
    resumed from) being at `previous` images (None: none). NVIDIA's `network-snapshot-KKKKKK` (KKKKKK = whole
    kimg) when no earlier snapshot of the run can hold it, else `network-snapshot-KKKKKK_FFF` (FFF = images past
    the whole kimg, so 1504 images: 000001_504). Every name of a run is new, and sorting names (by code point)
    sorts snapshots by images: `000001` < `000001_504` < `000001_900` < `000002`."""
    if previous is not None and images <= previous:
        raise ValueError(f"a snapshot at {images} images after one at {previous}")
    kimg, rest = divmod(images, 1000)
    if previous is None or kimg * 1000 > previous:
        return f"{PREFIX}{kimg:06d}"
    return f"{PREFIX}{kimg:06d}_{rest:03d}"


def snapshot_images(name: str) -> int | None:
    """Images shown at a snapshot, from its name: exact for KKKKKK_FFF, the whole kimg (its first possible image
    count) for KKKKKK; None for a name of another pattern. Works for NVIDIA's .pkl names and names without a suffix."""
    match = NAME.search(os.path.basename(name))
    if match is None:
        return None
    return int(match.group(1)) * 1000 + int(match.group(2) or 0)


def grid_name(stem: str) -> str:
    """The sample grid beside a snapshot: fakesKKKKKK.png or fakesKKKKKK_FFF.png."""
    return f"fakes{stem.removeprefix(PREFIX)}.png"


def find_latest_snapshot(run_dir: Path) -> Path | None:
    """The snapshot of `run_dir` with the most images shown (by name: KKKKKK_FFF after KKKKKK), or None."""
    snaps = [(images, p.name, p) for p in run_dir.glob(f"{PREFIX}*.pt")
             if p.suffix == ".pt" and (images := snapshot_images(p.name)) is not None]
    return max(snaps)[2] if snaps else None


def staged_path(path: Path) -> Path:
    """Where a snapshot is written before `publish` gives it its name (hidden; not found by a resume)."""
    return path.with_name(f".{path.name}{STAGED}")


def remove_stale_staged(run_dir: Path) -> None:
    """Remove what a run killed while naming a snapshot left: a staged file that never took its name (the resumed
    run goes on from the snapshot before it), or one whose name links to it already. A staged file kept because
    its name was taken by another file stays."""
    for staged in run_dir.glob(f".{PREFIX}*{STAGED}"):
        named = staged.with_name(staged.name[1:-len(STAGED)])
        try:
            if not os.path.lexists(named) or os.path.samefile(staged, named):
                staged.unlink()
        except OSError:
            pass  # left for the user; never in the way of a resume


def publish(staged: Path, path: Path) -> None:
    """Give the complete file `staged` the name `path`, never replacing a file: a hard link (fails when `path`
    exists), else a check and a rename. When `path` exists, OutputError and `staged` stays."""
    try:
        os.link(staged, path)
    except FileExistsError:
        raise _taken(staged, path) from None
    except OSError as e:
        if e.errno not in NO_LINKS:
            raise OutputError(f"cannot write {path}: {e.strerror or type(e).__name__}") from None
        if os.path.lexists(path):
            raise _taken(staged, path) from None
        try:
            os.rename(staged, path)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or type(e).__name__}") from None
        return
    staged.unlink()


def _taken(staged: Path, path: Path) -> OutputError:
    return OutputError(f"{path} already exists (written by another process?); snapshots never replace a file, "
                       f"so this one is kept as {staged}")
