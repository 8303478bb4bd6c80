"""Image folders and zips as pass sources: their batches by index range, decoded by DataLoader workers, and a cheap
fingerprint of their content for cache and state keys."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from typing import Callable, Iterable

import torch

from stylegan_core.data.datasets import ImageDataset

from .passes import ImageView


def dataset_fingerprint(dataset: ImageDataset) -> dict:
    """What identifies a dataset's content cheaply: file names with sizes and mtimes (folder) or CRCs (zip)."""
    if dataset.kind == "zip":
        names = set(dataset.files)
        with zipfile.ZipFile(dataset.path) as zf:
            entries = [(i.filename, i.file_size, i.CRC) for i in zf.infolist() if i.filename in names]
    else:
        entries = []
        for name in dataset.files:
            st = (dataset.path / name).stat()
            entries.append((name, st.st_size, st.st_mtime_ns))
    return {"path": str(dataset.path.resolve()), "kind": dataset.kind,
            "entries": hashlib.sha256(json.dumps(entries).encode()).hexdigest()}


def dataset_batches(dataset: ImageDataset, *, batch_size: int, workers: int | None, device: torch.device):
    """(start, count) -> uint8 batches [B, C, H, W] of those images, decoded by `workers` DataLoader processes
    (default `default_workers(device)`)."""
    num_workers = default_workers(device) if workers is None else workers

    def batches_of(start: int, count: int):
        subset = torch.utils.data.Subset(dataset, range(start, start + count))
        yield from (images for images, _ in torch.utils.data.DataLoader(
            subset, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=device.type == "cuda"))
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
