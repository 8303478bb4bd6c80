"""Reference images as pass sources: a folder or zip, or a dataset object that names its content; their batches by
index range, decoded by DataLoader workers, and a cheap fingerprint of their content for cache and state keys."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from stylegan_core.data.datasets import ImageDataset
from stylegan_core.errors import InputError

from stylegan_metrics.stats import STATISTICS_SUFFIXES

from .passes import ImageView


def file_entries(dataset: ImageDataset) -> list[tuple]:
    """Each image file's (name, size, mtime) in a folder or (name, size, CRC) in a zip, in the dataset's order."""
    if dataset.kind == "zip":
        names = set(dataset.files)
        with zipfile.ZipFile(dataset.path) as zf:
            return [(i.filename, i.file_size, i.CRC) for i in zf.infolist() if i.filename in names]
    entries = []
    for name in dataset.files:
        st = (dataset.path / name).stat()
        entries.append((name, st.st_size, st.st_mtime_ns))
    return entries


def fingerprint_of(dataset: ImageDataset, entries: list[tuple]) -> dict:
    """What identifies a dataset's content cheaply, from its `file_entries`: for cache and state keys."""
    return {"path": str(dataset.path.resolve()), "kind": dataset.kind,
            "entries": hashlib.sha256(json.dumps(entries).encode()).hexdigest()}


def dataset_fingerprint(dataset: ImageDataset) -> dict:
    """What identifies a dataset's content cheaply: file names with sizes and mtimes (folder) or CRCs (zip)."""
    return fingerprint_of(dataset, file_entries(dataset))


def is_image_dataset(data) -> bool:
    """A dataset object usable as reference images: indexable, sized, and naming its content by `fingerprint()`."""
    return all(callable(getattr(data, name, None)) for name in ("__getitem__", "__len__", "fingerprint"))


def is_images(data) -> bool:
    """Whether `data` names reference images (a folder, a zip or a dataset object) rather than statistics."""
    return is_image_dataset(data) or (isinstance(data, (str, os.PathLike))
                                      and Path(data).suffix.lower() not in STATISTICS_SUFFIXES)


@dataclass
class ReferenceImages:
    """Reference images ready for a pass: the dataset (items (uint8 image [C, H, W], anything)), what identifies its
    content (for cache keys), its side in pixels, a readable name and a short stem for cache file names."""

    dataset: Any
    fingerprint: dict
    resolution: int
    source: str
    stem: str
    entries: list | None = None  # a folder's or zip's file entries (file_entries), for the fingerprints of heads

    def __len__(self) -> int:
        return len(self.dataset)

    def head(self, max_items: int | None) -> "ReferenceImages":
        """The first `max_items` images (None, or as many as there are: these), without opening or fingerprinting
        the data again."""
        if max_items is None or max_items >= len(self):
            return self
        if self.entries is None:  # a dataset object: its fingerprint names the whole; the count is keyed apart
            return dataclasses.replace(self, dataset=torch.utils.data.Subset(self.dataset, range(max_items)))
        dataset = copy.copy(self.dataset)
        dataset.files = self.dataset.files[:max_items]
        if getattr(dataset, "labels", None) is not None:
            dataset.labels = dataset.labels[:max_items]
        kept = set(dataset.files)
        entries = [e for e in self.entries if e[0] in kept]  # a zip's in archive order, as file_entries gives them
        return dataclasses.replace(self, dataset=dataset, fingerprint=fingerprint_of(dataset, entries), entries=entries)


def open_images(data, *, max_items: int | None = None, resolution: int | None = None) -> ReferenceImages:
    """A folder or zip (read as ImageDataset), or a dataset object with `fingerprint()` -> dict (e.g. ToyFaces),
    limited to its first `max_items` images. `resolution`, when given, must be the images' side."""
    if is_image_dataset(data):
        try:
            fingerprint = data.fingerprint()
        except Exception as e:  # a user's dataset: its own failure, named, as one line
            raise InputError(f"{type(data).__name__}.fingerprint() failed: {type(e).__name__}: {e}") from None
        try:
            json.dumps(fingerprint, sort_keys=True)  # it becomes part of cache keys
        except (TypeError, ValueError):
            fingerprint = None
        if not isinstance(fingerprint, dict):
            raise InputError(f"{type(data).__name__}.fingerprint() must return a dict of plain JSON values (str, "
                             f"int, float, bool, None, lists, dicts) naming the dataset's content")
        total = len(data) if max_items is None else min(len(data), max_items)
        if total < 1:
            raise InputError(f"the reference dataset {data!r} holds no images")
        first = _image_of(data[0])
        if not isinstance(first, torch.Tensor) or first.ndim != 3 or first.shape[0] != 3 or first.shape[1] != first.shape[2] or first.dtype != torch.uint8:
            raise InputError(f"the reference dataset {data!r} gives {getattr(first, 'dtype', type(first).__name__)} "
                             f"images of shape {list(getattr(first, 'shape', []))}; expected square uint8 tensors "
                             f"[3, R, R]")
        dataset = data if total == len(data) else torch.utils.data.Subset(data, range(total))
        kind = f"{type(data).__module__}.{type(data).__qualname__}"
        images = ReferenceImages(dataset, {"dataset": kind, "fingerprint": fingerprint}, int(first.shape[-1]),
                                 repr(data), type(data).__name__.lower())
    elif isinstance(data, (str, os.PathLike)):
        dataset = ImageDataset(data, channels=3, max_items=max_items, strict=True, labels=False)
        entries = file_entries(dataset)
        images = ReferenceImages(dataset, fingerprint_of(dataset, entries), dataset.resolution,
                                 str(dataset.path.resolve()), Path(data).stem, entries)
    else:
        raise InputError(f"reference data of type {type(data).__name__}: give an image folder, a zip, statistics "
                         f"(.npz or ReferenceStats), or a dataset object with a fingerprint() method")
    check_resolution(images.source, images.resolution, resolution)
    return images


def check_resolution(source: str, found: int, expected: int | None) -> None:
    """InputError when reference images (or statistics that record their size) of `found` pixels are compared
    with a generator of `expected` pixels (None: no generator)."""
    if expected is not None and found != expected:
        raise InputError(f"{source}: images are {found}x{found} but the generator makes {expected}x{expected}")


def _image_of(item):
    """An item's image: the item itself, or the first element of an (image, label, ...) item."""
    return item[0] if isinstance(item, (tuple, list)) else item


class _Images(torch.utils.data.Dataset):
    """A dataset's images alone; an InputError while decoding one becomes the item, so that it crosses from a
    DataLoader worker as itself (one line) rather than as the worker's traceback."""

    def __init__(self, dataset, indices: range):
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        try:
            return _image_of(self.dataset[self.indices[i]])
        except InputError as e:
            return e


def _collate(items: list):
    """uint8 [B, C, H, W], or the first InputError among the items."""
    return next((x for x in items if isinstance(x, InputError)), None) or torch.utils.data.default_collate(items)


def dataset_batches(dataset, *, batch_size: int, workers: int | None, device: torch.device):
    """(start, count) -> uint8 batches [B, C, H, W] of those images of a dataset (ImageDataset or an object
    `open_images` accepts), decoded by `workers` DataLoader processes (default `default_workers(device)`). An image
    that cannot be decoded stops the batches with its InputError, from whichever process decoded it."""
    num_workers = default_workers(device) if workers is None else workers

    def batches_of(start: int, count: int):
        for batch in torch.utils.data.DataLoader(
                _Images(dataset, range(start, start + count)), batch_size=batch_size, shuffle=False,
                num_workers=num_workers, collate_fn=_collate, pin_memory=device.type == "cuda"):
            if isinstance(batch, InputError):
                raise batch
            yield batch
    return batches_of


def image_views(batches_of: Callable[[int, int], Iterable[torch.Tensor]], device: torch.device):
    """(start, count) -> ImageViews of uint8 batches moved to `device`."""

    def views(start: int, count: int):
        first = start
        for images in batches_of(start, count):
            yield ImageView(first, images.to(device, non_blocking=True))  # pinned by the DataLoader on a GPU
            first += images.shape[0]
    return views


def default_workers(device: torch.device) -> int:
    """Image-decoding processes for reference statistics: on a GPU up to 8 (decoding, not the network, limits
    the speed there), on the CPU none (the network already uses every core; see docs/benchmarks.md)."""
    return min(8, max(1, (os.cpu_count() or 1) - 1)) if device.type == "cuda" else 0
