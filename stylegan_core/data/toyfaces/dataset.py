"""toyfaces as arrays, as a torch Dataset rendered on the fly, and written to a folder or zip with label files."""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from stylegan_core.data.celeba import CELEBA_ATTRIBUTES
from stylegan_core.errors import InputError
from stylegan_core.files import atomic_write
from stylegan_core.data.toyfaces.face import TOYFACES_VERSION, Face, sample_face
from stylegan_core.data.toyfaces.render import render_face


MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024  # StyleGAN's range; a 1024-px face takes about 5 s to render


def check_resolution(resolution: int) -> int:
    """The resolution as an int, or an InputError unless it is a power of two in [16, 1024]."""
    resolution = int(resolution)
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION or resolution & (resolution - 1):
        raise InputError(f"toyfaces resolution {resolution}: use a power of two from {MIN_RESOLUTION} to "
                         f"{MAX_RESOLUTION}")
    return resolution


def face_at(seed: int, index: int) -> Face:
    """Face `index` of the toyfaces world `seed`: depends on nothing else."""
    if seed < 0 or index < 0:
        raise InputError(f"toyfaces seed and index must be >= 0 (got seed {seed}, index {index})")
    return sample_face(np.random.default_rng([int(seed), int(index)]))


def render_item(seed: int, index: int, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Face `index` of world `seed`: image uint8 [3, R, R] and labels bool [40] (CelebA order)."""
    face = face_at(seed, index)
    return render_face(face, resolution).transpose(2, 0, 1), face.labels()


def render_toyfaces(
    num: int,                  # Number of images.
    *,
    resolution: int = 64,      # Side in pixels, a power of two from 16 to 1024.
    seed: int = 0,             # The world: image i depends only on (seed, i).
    start: int = 0,            # Index of the first image.
    progress: bool = False,    # Progress bar.
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [num, 3, R, R] and labels bool [num, 40] (CelebA order)."""
    resolution = check_resolution(resolution)
    images = np.empty((num, 3, resolution, resolution), dtype=np.uint8)
    labels = np.empty((num, len(CELEBA_ATTRIBUTES)), dtype=bool)
    for k in tqdm(range(num), desc="toyfaces", unit="img", disable=None if progress else True):
        images[k], labels[k] = render_item(seed, start + k, resolution)
    return images, labels


class ToyFaces(torch.utils.data.Dataset):
    """Item i: (uint8 image [3, R, R], float labels [40]) rendered on demand; safe in DataLoader workers."""

    def __init__(
        self,
        num: int,                # Number of items.
        *,
        resolution: int = 64,    # Side in pixels, a power of two from 16 to 1024.
        seed: int = 0,           # The toyfaces world.
        start: int = 0,          # Item i is face start + i of the world.
    ):
        self.num, self.resolution, self.seed, self.start = int(num), check_resolution(resolution), int(seed), int(start)
        self.attributes = list(CELEBA_ATTRIBUTES)

    def __len__(self) -> int:
        return self.num

    def __repr__(self) -> str:
        return f"ToyFaces(num={self.num}, resolution={self.resolution}, seed={self.seed}, start={self.start})"

    def fingerprint(self) -> dict:
        """What fixes every item: the renderer's version, the world, the index range and the size (cache keys)."""
        return {"toyfaces": TOYFACES_VERSION, "seed": self.seed, "start": self.start, "num": self.num,
                "resolution": self.resolution}

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.num:
            raise IndexError(i)
        image, labels = render_item(self.seed, self.start + i, self.resolution)
        return torch.from_numpy(image.copy()), torch.from_numpy(labels.astype(np.float32))


def _png(image_chw: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image_chw.transpose(1, 2, 0)).save(buf, format="PNG")
    return buf.getvalue()


def _label_files(names: list[str], labels: np.ndarray) -> dict[str, bytes]:
    meta = {"attributes": list(CELEBA_ATTRIBUTES), "labels": [[n, row.astype(int).tolist()] for n, row in zip(names, labels)]}
    rows = [" ".join([Path(n).name] + ["1" if v else "-1" for v in row]) for n, row in zip(names, labels)]
    celeba = "\n".join([str(len(names)), " ".join(CELEBA_ATTRIBUTES)] + rows) + "\n"
    return {"dataset.json": json.dumps(meta).encode(), "list_attr_celeba.txt": celeba.encode()}


def _rendered_files(num: int, resolution: int, seed: int, progress: bool):
    """(name, PNG bytes) of every image, then of the two label files."""
    names = [f"img{i:08d}.png" for i in range(num)]
    labels = np.empty((num, len(CELEBA_ATTRIBUTES)), dtype=bool)
    for i, name in enumerate(tqdm(names, desc="toyfaces", unit="img", disable=None if progress else True)):
        image, labels[i] = render_item(seed, i, resolution)
        yield name, _png(image)
    yield from _label_files(names, labels).items()


def write_toyfaces(
    out: str | os.PathLike,    # A .zip file (replaced atomically if it exists), or a new or empty folder.
    num: int,                  # Number of images.
    *,
    resolution: int = 64,      # Side in pixels.
    seed: int = 0,             # The world.
    progress: bool = True,     # Progress bar.
) -> Path:
    """Write images `img00000000.png`... plus `dataset.json` (NVIDIA layout, 0/1 labels, names) and
    `list_attr_celeba.txt` (CelebA's format). Written to a temporary place and renamed when complete."""
    out = Path(out)
    if num < 1:
        raise InputError(f"--num {num}: at least one image")
    resolution = check_resolution(resolution)
    is_zip = out.suffix.lower() == ".zip"
    if is_zip and out.is_dir():
        raise InputError(f"{out}: is a folder; choose a .zip file name or a folder without the .zip ending")
    if not is_zip and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not an empty folder; choose a new path or a .zip name")
    try:
        files = _rendered_files(num, resolution, seed, progress)
        if is_zip:
            with atomic_write(out) as f, zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, data in files:
                    zf.writestr(name, data)
        else:
            _write_folder(out, files)
    except OSError as e:
        raise InputError(f"{out}: cannot write ({e.strerror or e})") from None
    return out


def _write_folder(out: Path, files) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    tmp.mkdir(mode=0o777)  # the umask applies, as for any new folder
    try:
        for name, data in files:
            (tmp / name).write_bytes(data)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
