"""The sampling engine every metric shares: per-index latents and noise, batched generation to uint8."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from stylegan_core.errors import InputError
from stylegan_core.data.images import to_uint8

from stylegan_metrics.networks.precision import precision_context

BLOCK = 256  # rows per seeded block of the latent table; any batch size slices the same table
MIN_ROWS = 16  # CPU BLAS switches kernels below ~12 rows; padding to 16 keeps every row's result batch-independent
STREAM_Z, STREAM_NOISE = 0, 1


def _block_generator(seed: int, stream: int, block: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, stream, block]).generate_state(2, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


def _table_rows(seed: int, stream: int, start: int, count: int, draw) -> torch.Tensor:
    first, last = start // BLOCK, (start + count - 1) // BLOCK
    table = torch.cat([draw(_block_generator(seed, stream, b)) for b in range(first, last + 1)])
    offset = start - first * BLOCK
    return table[offset:offset + count]


def latents(seed: int, start: int, count: int, dim: int, stream: int = STREAM_Z) -> torch.Tensor:
    """Rows [start, start + count) of an endless N(0, I) table; row i depends only on (seed, stream, i)."""
    return _table_rows(seed, stream, start, count, lambda g: torch.randn(BLOCK, dim, generator=g))


def noise_seeds(seed: int, start: int, count: int) -> torch.Tensor:
    """Per-sample seeds of the synthesis noise, [count] int64, from the same per-index table."""
    return _table_rows(seed, STREAM_NOISE, start, count,
                       lambda g: torch.randint(0, 2**62, (BLOCK,), generator=g, dtype=torch.int64))


def batch_invariant(fn, *tensors: torch.Tensor, min_rows: int = MIN_ROWS):
    """fn(*tensors) with fewer than `min_rows` rows padded (last row repeated) and the padding dropped,
    so that a sample's result does not depend on how many others share its batch."""
    n = tensors[0].shape[0]
    if n >= min_rows:
        return fn(*tensors)
    padded = [torch.cat([t, t[-1:].expand(min_rows - n, *t.shape[1:])]) for t in tensors]
    return fn(*padded)[:n]


def supports_noise_seeds(G) -> bool:
    fn = getattr(G.synthesis, "forward", G.synthesis)  # an nn.Module's own signature is (*args, **kwargs)
    try:
        return "noise_seeds" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def synthesize(G, ws: torch.Tensor, seeds: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
    """G.synthesis with noise fixed per sample; generators without `noise_seeds` (foreign code) get
    the global RNG seeded from the batch's first seed, deterministic for a fixed batch size only."""
    with precision_context("fp32", ws.device.type):  # TF32 convolutions would swamp PPL's epsilon steps
        if supports_noise_seeds(G):
            return batch_invariant(lambda w, s: G.synthesis(w, noise_mode=noise_mode, noise_seeds=s), ws, seeds)
        with torch.random.fork_rng(devices=[ws.device] if ws.device.type == "cuda" else []):
            torch.manual_seed(int(seeds[0]))
            return G.synthesis(ws, noise_mode=noise_mode)


def map_latents(G, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
    """G.mapping(z) [N, num_ws, w_dim], batch-invariant."""
    return batch_invariant(lambda x: G.mapping(x, None, truncation_psi=truncation_psi), z)


def check_generator(G) -> None:
    missing = [a for a in ("z_dim", "w_dim", "num_ws", "img_resolution", "img_channels", "mapping", "synthesis")
               if not hasattr(G, a)]
    if missing:
        raise InputError(f"not a generator of NVIDIA's protocol: missing {', '.join(missing)}")


@dataclass
class GeneratedBatch:
    start: int                # index of the first sample
    z: torch.Tensor           # [B, z_dim]
    ws: torch.Tensor          # [B, num_ws, w_dim]
    images: torch.Tensor      # [B, C, H, W] uint8, or float in [-1, 1] with uint8=False


def generate_batches(G, num: int, *, batch_size: int, seed: int, device: torch.device, truncation_psi: float = 1.0,
                     noise_mode: str = "random", uint8: bool = True, first: int = 0) -> Iterator[GeneratedBatch]:
    """Samples first..first+num-1 in batches under inference mode; sample i depends only on (seed, i).
    (Progress is shown by the caller: metrics count finished samples per chunk, see run_state.run_chunks.)"""
    check_generator(G)
    if num < 1 or batch_size < 1:
        raise InputError("the number of samples and the batch size must be >= 1")
    for start in range(first, first + num, batch_size):
        count = min(batch_size, first + num - start)
        with torch.inference_mode():  # not held across the yield: it is thread-local state
            z = latents(seed, start, count, G.z_dim).to(device)
            ws = map_latents(G, z, truncation_psi)
            images = synthesize(G, ws, noise_seeds(seed, start, count), noise_mode)
            images = to_uint8(images) if uint8 else images.float()
        yield GeneratedBatch(start, z, ws, images)
