"""The sampling engine every metric shares: per-index latents and noise, batched generation to uint8."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from stylegan_core import ranks
from stylegan_core.errors import InputError
from stylegan_core.data.images import to_uint8

from stylegan_metrics.networks.batching import batch_invariant
from stylegan_metrics.precision import precision_context

from .metric import MetricWarning

BLOCK = 256  # rows per seeded block of every stream's table; any batch size slices the same table
# Every random stream of the metrics: a stream id keys its own endless table (table_rows), so two draws never share
# numbers. The ids fix every sample: changing one changes every result drawn from it.
STREAMS = {
    "z": 0,               # latents [dim] per sample index (latents): every generated image's z
    "noise": 1,           # one int64 seed of the synthesis noise per sample index (noise_seeds)
    "label": 3,           # a row index into the reference labels per sample index (engine.labels)
    "ppl_z0": 10,         # PPL: the first endpoint's z per pair index (metrics.ppl)
    "ppl_z1": 11,         # PPL: the second endpoint's z per pair index
    "ppl_t": 12,          # PPL: the interpolation point t in [0, 1) per pair index
    "eq_transform": 20,   # equivariance: two uniform numbers in [0, 1) per group index, sample index // GROUP of
                          # metrics.equivariance (one transform per group)
}
# What a generated sample is, given (seed, index): recorded in every result and state key, so that numbers and saved
# chunks of two schemes never mix. 1: noise maps from one CPU torch.Generator per sample; 2: the counter-based noise
# of stylegan_core.networks.noise, drawn on the generator's device.
SAMPLING_VERSION = 2


def _block_generator(seed: int, stream: int, block: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, stream, block]).generate_state(2, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


def table_rows(seed: int, stream: int, start: int, count: int,
               draw: Callable[[torch.Generator], torch.Tensor]) -> torch.Tensor:
    """Rows [start, start + count) of the endless table of `stream` (an id of STREAMS): the table is cut into blocks
    of BLOCK rows, block b drawn by `draw(generator)` (BLOCK rows) from a generator seeded by (seed, stream, b) alone,
    so row i depends only on (seed, stream, i), never on where a batch starts or how long it is."""
    first, last = start // BLOCK, (start + count - 1) // BLOCK
    table = torch.cat([draw(_block_generator(seed, stream, b)) for b in range(first, last + 1)])
    offset = start - first * BLOCK
    return table[offset:offset + count]


def latents(seed: int, start: int, count: int, dim: int, stream: int = STREAMS["z"]) -> torch.Tensor:
    """Rows [start, start + count) of an endless N(0, I) table; row i depends only on (seed, stream, i)."""
    return table_rows(seed, stream, start, count, lambda g: torch.randn(BLOCK, dim, generator=g))


def noise_seeds(seed: int, start: int, count: int) -> torch.Tensor:
    """Per-sample seeds of the synthesis noise, [count] int64, from the same per-index table."""
    return table_rows(seed, STREAMS["noise"], start, count,
                      lambda g: torch.randint(0, 2**62, (BLOCK,), generator=g, dtype=torch.int64))


NOISE_DECLARATION = "per_sample_noise"  # attribute of a synthesis network (see stylegan_core.networks.noise)
# Where a wrapper keeps the module it wraps: torch.compile's OptimizedModule, DataParallel / DistributedDataParallel,
# functools' convention. A wrapper that declares NOISE_DECLARATION itself is taken at its word instead.
WRAPPED_ATTRIBUTES = ("_orig_mod", "module", "__wrapped__")
MAX_WRAPPERS = 32  # wrappers followed before giving up (a chain that long, or a cycle, declares nothing)


def declares_per_sample_noise(synthesis) -> bool:
    """Whether `synthesis` declares per-sample noise (`per_sample_noise = True`: its forward takes noise_seeds [N]
    and sample n's noise depends only on noise_seeds[n]): the first declaration found on it or on the modules it
    wraps (WRAPPED_ATTRIBUTES, followed in that order); False where none declares. Never reads a signature. A
    declaration that is not True or False is an InputError."""
    module, seen = synthesis, set()
    while module is not None and id(module) not in seen and len(seen) < MAX_WRAPPERS:
        seen.add(id(module))
        declared = getattr(module, NOISE_DECLARATION, None)
        if declared is not None:
            if not isinstance(declared, bool):
                raise InputError(f"the synthesis network's {NOISE_DECLARATION} is {declared!r}, not True or False")
            return declared
        module = next((w for w in (getattr(module, a, None) for a in WRAPPED_ATTRIBUTES) if w is not None), None)
    return False


def supports_noise_seeds(G) -> bool:
    """Whether G's synthesis network declares per-sample noise (`declares_per_sample_noise`)."""
    return declares_per_sample_noise(G.synthesis)


class GlobalNoiseWarning(MetricWarning):
    """The generator does not declare per-sample noise: its noise comes from the global RNG."""


_warned: set[str] = set()  # synthesis classes warned about in this process


def warn_global_noise(G) -> None:
    """One warning line per synthesis class (or function) and process, on the main rank: G's noise comes from the
    global RNG, so results may depend on the batch size."""
    what = G.synthesis if hasattr(G.synthesis, "__qualname__") else type(G.synthesis)  # a method, or a module's class
    name = f"{getattr(what, '__module__', None) or '?'}.{what.__qualname__}"
    if name in _warned or not ranks.is_main():
        return
    _warned.add(name)
    warnings.warn(f"the generator's synthesis network ({name}) does not declare per-sample noise "
                  f"({NOISE_DECLARATION} = True): its noise comes from the global RNG seeded per batch, so results "
                  f"may depend on the batch size", GlobalNoiseWarning, stacklevel=3)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`t` on `device`; a CPU tensor bound for a GPU goes through pinned memory without blocking the host (a copy
    from ordinary memory would wait for the GPU's queued work first)."""
    if t.device.type == "cpu" and torch.device(device).type == "cuda":
        return t.contiguous().pin_memory().to(device, non_blocking=True)
    return t.to(device)


def synthesize(G, ws: torch.Tensor, seeds: torch.Tensor, noise_mode: str = "random", *, precision: str = "fp32",
               check_finite: bool = True) -> torch.Tensor:
    """G.synthesis with noise fixed per sample (seeds [N] int on any device) where it declares per-sample noise
    (`supports_noise_seeds`); other generators (foreign code) get the global RNG seeded from the batch's first seed,
    deterministic for a fixed batch size only, with one warning (`warn_global_noise`).
    `precision`: the generator's arithmetic; fp32 (TF32 off) unless a feature metric asks for tf32 or bf16 (never
    PPL: TF32 convolutions would swamp its epsilon steps). The images are checked (`check_images`): the declared
    shape, and finite values unless `check_finite=False` (the caller counts them, `count_non_finite`)."""
    with precision_context(precision, ws.device.type):
        if supports_noise_seeds(G):
            seeds = to_device(seeds, ws.device)
            images = batch_invariant(lambda w, s: G.synthesis(w, noise_mode=noise_mode, noise_seeds=s), ws, seeds)
        else:
            warn_global_noise(G)
            with torch.random.fork_rng(devices=[ws.device] if ws.device.type == "cuda" else []):
                torch.manual_seed(int(seeds[0]))
                images = G.synthesis(ws, noise_mode=noise_mode)
    return check_images(G, images, ws.shape[0], check_finite=check_finite)


def check_images(G, images, count: int, *, check_finite: bool = True) -> torch.Tensor:
    """`images` as G declares them, [count, img_channels, img_resolution, img_resolution] with finite values, else
    an InputError: a NaN would become a black pixel and a wrong size a resized image, both plausible numbers.
    `check_finite=False` leaves the values to the caller (reading them back would wait for the GPU)."""
    expected = (count, int(G.img_channels), int(G.img_resolution), int(G.img_resolution))
    if not isinstance(images, torch.Tensor) or tuple(images.shape) != expected:
        got = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputError(f"the generator returned images of shape {got}, not the {list(expected)} it declares "
                         f"(img_channels, img_resolution)")
    if check_finite:
        raise_if_non_finite(count_non_finite(images), count)
    return images


def count_non_finite(images: torch.Tensor) -> torch.Tensor:
    """Images [N, ...] with a NaN or Inf pixel: a 0-d int64 tensor on the images' device (not read back)."""
    return (~torch.isfinite(images)).flatten(1).any(dim=1).sum()


def raise_if_non_finite(bad: torch.Tensor | int, count: int) -> None:
    """InputError when `bad` (count_non_finite, summed over `count` images) is not 0; reads it once."""
    bad = int(bad)
    if bad:
        raise InputError(f"the generator produced NaN or Inf pixels in {bad} of {count} images (check the "
                         f"truncation psi and the checkpoint's weights)")


MAX_TRUNCATION_PSI = 10.0  # |psi| above it: w far beyond any the mapping makes (the papers use -1..1); 1e308 overflowed


def check_truncation(truncation_psi) -> float:
    """A finite truncation psi with |psi| <= MAX_TRUNCATION_PSI (NaN or Inf would make every image NaN)."""
    if isinstance(truncation_psi, bool) or not isinstance(truncation_psi, numbers.Real) \
            or not math.isfinite(truncation_psi):
        raise InputError(f"the truncation psi must be a finite number, not {truncation_psi!r}")
    if abs(truncation_psi) > MAX_TRUNCATION_PSI:
        raise InputError(f"the truncation psi must lie in [-{MAX_TRUNCATION_PSI:g}, {MAX_TRUNCATION_PSI:g}], "
                         f"not {truncation_psi!r}")
    return float(truncation_psi)


def map_latents(G, z: torch.Tensor, truncation_psi: float = 1.0, c: torch.Tensor | None = None) -> torch.Tensor:
    """G.mapping(z, c) [N, num_ws, w_dim], batch-invariant; c [N, c_dim] for a conditional generator."""
    check_truncation(truncation_psi)
    if c is None:
        return batch_invariant(lambda x: G.mapping(x, None, truncation_psi=truncation_psi), z)
    return batch_invariant(lambda x, y: G.mapping(x, y, truncation_psi=truncation_psi), z, c)


def check_generator(G) -> None:
    missing = [a for a in ("z_dim", "w_dim", "num_ws", "img_resolution", "img_channels", "mapping", "synthesis")
               if not hasattr(G, a)]
    if missing:
        raise InputError(f"not a generator of NVIDIA's protocol: missing {', '.join(missing)}")
    for a in ("z_dim", "img_resolution", "img_channels"):
        value = getattr(G, a)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise InputError(f"the generator's {a} is {value!r}, not a positive integer")


@dataclass
class GeneratedBatch:
    start: int                # index of the first sample
    z: torch.Tensor           # [B, z_dim]
    ws: torch.Tensor          # [B, num_ws, w_dim]
    images: torch.Tensor      # [B, C, H, W] uint8, or float in [-1, 1] with uint8=False


def grouped(batches: Iterable[GeneratedBatch], rows: int) -> Iterator[GeneratedBatch]:
    """Consecutive batches joined until each holds at least `rows` samples (the last may hold fewer): feature
    networks then run on more images per call than the generator makes at once."""
    group: list[GeneratedBatch] = []
    for batch in batches:
        group.append(batch)
        if sum(b.z.shape[0] for b in group) >= rows:
            yield _joined(group)
            group = []
    if group:
        yield _joined(group)


def _joined(group: list[GeneratedBatch]) -> GeneratedBatch:
    if len(group) == 1:
        return group[0]
    return GeneratedBatch(group[0].start, *(torch.cat([getattr(b, k) for b in group]) for k in ("z", "ws", "images")))


def generate_batches(G, num: int, *, batch_size: int, seed: int, device: torch.device, truncation_psi: float = 1.0,
                     noise_mode: str = "random", uint8: bool = True, first: int = 0,
                     labels: Callable[[int, int], torch.Tensor] | None = None, precision: str = "fp32",
                     check_each_batch: bool | None = None) -> Iterator[GeneratedBatch]:
    """Samples first..first+num-1 in batches under inference mode; sample i depends only on (seed, i).
    `labels(start, count)` gives a conditional generator's c [count, c_dim] (engine.labels); `precision` is the
    generator's arithmetic (`synthesize`). Nothing is read back from the device per batch: latents, seeds and labels
    go to it without blocking, and images with NaN or Inf pixels are counted there and raise an InputError once
    the last batch has been taken (`check_each_batch`, default on the CPU only, where it costs nothing: at once)."""
    check_generator(G)
    check_truncation(truncation_psi)
    if num < 1 or batch_size < 1:
        raise InputError("the number of samples and the batch size must be >= 1")
    each = torch.device(device).type == "cpu" if check_each_batch is None else check_each_batch
    bad = 0  # images with NaN or Inf pixels so far (a tensor on the device when not checked per batch)
    for start in range(first, first + num, batch_size):
        count = min(batch_size, first + num - start)
        with torch.inference_mode():  # not held across the yield: it is thread-local state
            z = to_device(latents(seed, start, count, G.z_dim), device)
            ws = map_latents(G, z, truncation_psi, to_device(labels(start, count), device) if labels else None)
            images = synthesize(G, ws, noise_seeds(seed, start, count), noise_mode, precision=precision,
                                check_finite=each)
            if not each:
                bad = count_non_finite(images) + bad
            images = to_uint8(images.float()) if uint8 else images.float()  # bf16 output: converted in fp32
        yield GeneratedBatch(start, z, ws, images)
    raise_if_non_finite(bad, num)
