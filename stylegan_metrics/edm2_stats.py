"""NVIDIA EDM2's reference statistics files (.pkl: {'num_images': N, 'fid': {'mu', 'sigma'}, 'fd_dinov2': {...}}),
read as data, never as code, each block checked against the network it belongs to; and written in that layout."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from stylegan_core.errors import InputError, OutputError
from stylegan_core.files import atomic_write
from stylegan_core.formats.nvidia_pickle import read_network_pickle

from .stats import ReferenceStats, check_named_width

EDM2_BLOCKS = {"fid": "inception-v3", "fd_dinov2": "dinov2-vit-l14"}  # block -> the feature network it holds
EDM2_SUFFIX = ".pkl"
MAX_IMAGES = 2**63 - 1  # num_images: an int64, as every count of ours


def is_edm2_stats(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() == EDM2_SUFFIX


def read_edm2_stats(path: str | os.PathLike) -> dict[str, ReferenceStats]:
    """{network name: statistics} of every known block of an EDM2 statistics file (EDM2 writes sigma with N - 1,
    as ours); an unknown block is ignored, a damaged or foreign one refused."""
    path = Path(path)
    data = read_network_pickle(path)  # only plain containers and numeric numpy arrays are let through
    if not isinstance(data, dict):
        raise InputError(f"{path}: not EDM2 statistics (a dict of blocks such as 'fid' and 'fd_dinov2')")
    n = data.get("num_images", 0)
    if isinstance(n, np.ndarray) and n.shape == () and n.dtype.kind in "iu":
        n = int(n)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= MAX_IMAGES:
        raise InputError(f"{path}: num_images = {n!r} is not a whole number of images")
    found = {}
    for block, network in EDM2_BLOCKS.items():
        if block not in data:
            continue
        entry, where = data[block], f"{path}: {block}"
        if not (isinstance(entry, dict) and isinstance(entry.get("mu"), np.ndarray)
                and isinstance(entry.get("sigma"), np.ndarray)):
            raise InputError(f"{where} is not a block of 'mu' and 'sigma' arrays")
        mu, sigma = np.asarray(entry["mu"]), np.asarray(entry["sigma"])
        if mu.ndim == 1:
            check_named_width(where, network, mu.shape[0])
        stats = ReferenceStats(mu=mu, sigma=sigma, n=int(n), features=network).check(where)
        stats.mu, stats.sigma = np.array(mu, np.float64), np.array(sigma, np.float64)
        found[network] = stats
    if not found:
        raise InputError(f"{path}: no statistics block of {' or '.join(repr(b) for b in EDM2_BLOCKS)}")
    return found


def edm2_block(path: str | os.PathLike, network: str) -> ReferenceStats:
    """The statistics of `network` in an EDM2 file, or an InputError naming the blocks it holds."""
    found = read_edm2_stats(path)
    if network not in found:
        held = ", ".join(f"{block} ({net})" for block, net in EDM2_BLOCKS.items() if net in found)
        raise InputError(f"{path} holds statistics of {held}, not of {network!r} features")
    return found[network]


def check_replaceable(path: str | os.PathLike) -> None:
    """OutputError when `path` is an existing file that is not EDM2 statistics (a network pickle named *.pkl, an
    image): only a file of EDM2's layout, a dict holding a 'fid' or 'fd_dinov2' block, is replaced. Its numbers are
    not checked: a damaged statistics file may be rewritten."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        data = read_network_pickle(path)
    except InputError:
        data = None
    if not (isinstance(data, dict) and any(block in data for block in EDM2_BLOCKS)):
        raise OutputError(f"{path}: exists and is not EDM2 statistics (no 'fid' or 'fd_dinov2' block); refusing to "
                          f"replace it: remove it or name another file")


def write_edm2_stats(path: str | os.PathLike, stats: list[ReferenceStats]) -> Path:
    """Write statistics of EDM2's networks in its layout (readable by EDM2's calculate_metrics.py), atomically; an
    existing file is replaced only when it is EDM2 statistics (`check_replaceable`)."""
    path = Path(path)
    if path.suffix.lower() != EDM2_SUFFIX:
        raise InputError(f"{path}: EDM2 statistics files end in .pkl (refusing to write another kind of file)")
    check_replaceable(path)
    blocks = {network: block for block, network in EDM2_BLOCKS.items()}
    content: dict = {"num_images": int(stats[0].n)}
    for s in stats:
        if s.features not in blocks:
            raise InputError(f"EDM2 statistics hold {', '.join(EDM2_BLOCKS)} ({', '.join(blocks)} features), "
                             f"not {s.features!r}")
        if s.n != stats[0].n:
            raise InputError(f"the statistics of one EDM2 file are of one set of images ({stats[0].n} and {s.n})")
        content[blocks[s.features]] = {"mu": np.asarray(s.mu, np.float64), "sigma": np.asarray(s.sigma, np.float64)}
    buffer = io.BytesIO()
    pickle.dump(content, buffer)
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
    return path
