"""Image datasets: a folder (recursive) or a zip in NVIDIA's dataset_tool layout, optional dataset.json labels."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylegan_core.errors import DatasetError
from stylegan_core.limits import MAX_IMAGE_BYTES

from .decoding import GRAYSCALE_MODES, has_alpha, open_header, to_uint8_array

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}


def _is_image_name(name: str) -> bool:
    parts = Path(name).parts
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS and not any(p.startswith(("__MACOSX", ".")) for p in parts)


def _square_resize(img: Image.Image, resolution: int) -> Image.Image:  # training's --resolution, never metrics
    """Centre-crop to a square, then resize with Lanczos when the size differs."""
    w, h = img.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.LANCZOS)
    return img


def check_labels(values: list, files: list[str], where: str) -> np.ndarray:
    """dataset.json's labels of `files` as an array: [N] int64 classes (integers >= 0) or [N, K] float32 vectors
    (finite numbers); anything else is refused naming the first bad entry."""
    try:
        labels = np.array(values)
    except ValueError:
        labels = np.array([], dtype=object)
    if labels.dtype.kind not in "iubf" or labels.ndim > 2 or len(labels) != len(files):
        raise DatasetError(f"{where}: the labels are not numbers of one shape (an integer class or a vector of "
                           f"numbers per image)")
    if labels.ndim == 1:
        as_float = labels.astype(np.float64)
        bad = ~np.isfinite(as_float) | (as_float < 0) | (as_float >= 2**31) | (as_float != np.floor(as_float))
        if bad.any():
            i = int(np.argmax(bad))
            raise DatasetError(f"{where}: the label of {files[i]} is {values[i]!r}; a class label must be an "
                               f"integer >= 0 (or give every image a vector of numbers)")
        return labels.astype(np.int64)
    bad_rows = ~np.isfinite(labels.astype(np.float64)).all(axis=1)
    if bad_rows.any():
        i = int(np.argmax(bad_rows))
        raise DatasetError(f"{where}: the label of {files[i]} is {values[i]!r}; label vectors must hold finite numbers")
    return labels.astype(np.float32)


class ImageDataset(torch.utils.data.Dataset):
    """uint8 images [C, R, R] from a folder or zip; item i >= len(files) is the x-flip of i - len(files)."""

    def __init__(
        self,
        path: str | os.PathLike,          # Image folder (searched recursively) or .zip file.
        resolution: int | None = None,    # Output side, images centre-cropped and resized to it (unless strict);
                                          # None = the first image's, which must be square, every image that size.
        channels: int = 3,                # 3 = RGB, 1 = grayscale.
        xflip: bool = False,              # Double the dataset with mirrored copies.
        max_items: int | None = None,     # Use only the first this many files (sorted by name).
        strict: bool = False,             # Refuse (not fix) images of another size or of too few channels.
        labels: bool = True,              # Read dataset.json's labels (False: ignore the file, e.g. for statistics).
    ):
        self.path = Path(path)
        self.channels = channels
        self.xflip = xflip
        self.strict = strict
        self._alpha_warned = False
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self.kind = "folder"
            names = sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())
        elif self.path.is_file() and zipfile.is_zipfile(self.path):  # never a device: /dev/zero reads forever
            self.kind = "zip"
            try:
                names = sorted(self._open_zip().namelist())
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise DatasetError(f"{self.path}: damaged zip file ({e})") from None
        else:
            raise DatasetError(f"{self.path}: not an image folder or a zip file")
        self.files = [n for n in names if _is_image_name(n)]
        if max_items is not None:
            self.files = self.files[:max_items]
        if not self.files:
            raise DatasetError(f"{self.path}: no images found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
        self.labels = self._read_labels("dataset.json" in names) if labels else None
        self._fixed_size = resolution is None or strict  # other sizes refused, not resized
        self._size_of_first = resolution is None
        if resolution is None:
            w, h = self._open_image(self.files[0]).size  # the header only
            if w != h:
                raise DatasetError(f"{self.path}: {self.files[0]} is {w}x{h}; images must be square")
            resolution = w
        self.resolution = int(resolution)

    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():  # one handle per DataLoader worker
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def _read_bytes(self, name: str) -> bytes:
        """A file's bytes; its declared size is checked first (a tiny zip member may claim gigabytes)."""
        try:
            if self.kind == "zip":
                size = self._open_zip().getinfo(name).file_size
            else:
                size = (self.path / name).stat().st_size
            if size > MAX_IMAGE_BYTES:
                what = "dataset.json" if name == "dataset.json" else "an image file"
                raise DatasetError(f"{self.path}: {name} declares {size:,} bytes, more than the {MAX_IMAGE_BYTES:,} "
                                   f"{what} may have")
            if self.kind == "zip":
                return self._open_zip().read(name)
            return (self.path / name).read_bytes()
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as e:
            if isinstance(e, DatasetError):
                raise
            raise DatasetError(f"{self.path}: cannot read {name} ({e})") from None

    def _open_image(self, name: str) -> Image.Image:
        """The image `name`, opened lazily: its header is read and checked, no pixel decoded."""
        return open_header(self._read_bytes(name), f"{self.path}: {name}")

    def read_labels(self) -> np.ndarray | None:
        """dataset.json's labels of these files, checked as when opened with labels=True (None: no dataset.json, or
        one without labels); for a dataset opened without its labels."""
        if self.kind == "zip":
            has_json = "dataset.json" in self._open_zip().namelist()
        else:
            has_json = (self.path / "dataset.json").is_file()
        return self._read_labels(has_json)

    def _read_labels(self, has_json: bool) -> np.ndarray | None:
        if not has_json:
            return None
        try:
            meta = json.loads(self._read_bytes("dataset.json"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise DatasetError(f"{self.path}: dataset.json is not valid JSON ({type(e).__name__})") from None
        entries = meta.get("labels") if isinstance(meta, dict) else None
        if entries is None:
            return None
        if not isinstance(entries, list) or not all(isinstance(e, list) and len(e) == 2 for e in entries):
            raise DatasetError(f"{self.path}: dataset.json's labels are not a list of [file name, label] pairs")
        table = {str(name).replace("\\", "/"): label for name, label in entries}
        missing = [f for f in self.files if f not in table]
        if missing:
            raise DatasetError(f"{self.path}: dataset.json has no label for {missing[0]} ({len(missing)} images unlabelled)")
        return check_labels([table[f] for f in self.files], self.files, f"{self.path}: dataset.json")

    def __len__(self) -> int:
        return len(self.files) * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (uint8 image [C, R, R], label tensor; empty when unlabelled)."""
        if not 0 <= index < len(self):
            raise IndexError(f"image {index} of {len(self)}")  # also ends a plain `for` loop over the dataset
        n = len(self.files)
        flip = index >= n
        name = self.files[index % n]
        img = self._open_image(name)
        where = f"{self.path}: {name}"
        if self._fixed_size and img.size != (self.resolution, self.resolution):
            like = f" like the first image, {self.files[0]}" if self._size_of_first else ""
            raise DatasetError(f"{where} is {img.size[0]}x{img.size[1]}, expected {self.resolution}x{self.resolution}"
                               f"{like} (images are never resized to match)")
        if self.strict and self.channels == 3 and img.mode in GRAYSCALE_MODES:
            raise DatasetError(f"{where} is grayscale ({img.mode}); RGB images are needed")
        if self.channels == 3 and not self._alpha_warned and has_alpha(img):
            self._alpha_warned = True
            warnings.warn(f"{self.path}: {name} (and maybe others) has an alpha channel, which is dropped: images "
                          f"are read as RGB", stacklevel=2)
        arr = to_uint8_array(img, self.channels, where)  # [H, W, C]
        if arr.shape[:2] != (self.resolution, self.resolution):
            resized = _square_resize(Image.fromarray(arr[:, :, 0] if self.channels == 1 else arr), self.resolution)
            arr = np.asarray(resized).reshape(self.resolution, self.resolution, self.channels)
        if flip:
            arr = arr[:, ::-1]
        image = torch.from_numpy(arr.transpose(2, 0, 1).copy())
        label = torch.as_tensor(self.labels[index % n]) if self.labels is not None else torch.zeros(0)
        return image, label

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _zip=None, _zip_pid=None)
