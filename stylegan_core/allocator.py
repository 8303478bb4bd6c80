"""Keep freed memory in the process heap (glibc): large per-batch tensors then reuse pages instead of
faulting in fresh zeroed ones from the kernel on every batch."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

M_TRIM_THRESHOLD = -1   # mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 2**20   # blocks below this come from the heap, so freed activations are reused
TRIM_THRESHOLD = 1024 * 2**20  # free heap memory kept before giving it back to the kernel
OPT_OUT = "STYLEGAN_METRICS_MALLOPT"


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they are set.

    glibc serves blocks above its mmap threshold (at most 32 MiB when left dynamic) with fresh `mmap`s
    and unmaps them on free, so every batch of a CPU metric zero-fills its activations anew: on a
    2-core machine that kernel time was half of a PPL run. Does nothing off glibc or with
    STYLEGAN_METRICS_MALLOPT=0. Freed memory stays with the process (up to TRIM_THRESHOLD) until it exits.
    """
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT, "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
