"""Per-sample synthesis noise from a counter-based generator: N(0, 1) maps whose values depend only on (sample seed,
layer, pixel), drawn for a whole batch at once on the batch's device, the same numbers on the CPU and a GPU.

The generator is SplitMix64 (Steele, Lea and Flood, 2014) read by position: a sample's seed s gives its key
k = mix64(s + GAMMA) (SplitMix64's first output for s), and pair p of layer l the 64 random bits
mix64(k + (l * 2^40 + p + 1) * GAMMA), the output at that position of the SplitMix64 stream seeded with k. mix64 is
Stafford's 'Mix13' finalizer. All of it is int64 tensor arithmetic: xor, masked shifts (logical shifts of the bit
pattern) and wrapping products, which the CPU and CUDA compute bit for bit alike. Box-Muller then turns the two
32-bit halves of each pair's bits into two normals, in float64 (rounded to float32 last, so that the last-bit
differences between the CPU's and CUDA's log/sin/cos almost never reach the float32 result).

A synthesis network declares that it draws its noise so with the class attribute `per_sample_noise = True`: its
forward takes `noise_seeds` [N] int, and sample n's 'random' noise depends only on noise_seeds[n] (every synthesis
network in stylegan_core does, and so every generator the format loaders build). The metric engine reads this
declaration, never the forward's signature, so wrappers and compiled modules keep it.
"""

from __future__ import annotations

import math

import torch


def _int64(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


GAMMA = _int64(0x9E3779B97F4A7C15)   # SplitMix64's increment (2^64 / golden ratio, odd)
MIX1 = _int64(0xBF58476D1CE4E5B9)    # Stafford's Mix13 multipliers
MIX2 = _int64(0x94D049BB133111EB)
MASK32 = (1 << 32) - 1
LAYER_STRIDE = 1 << 40               # pair positions per layer: layers never share one (maps up to 2^20 px square)
CPU_PAIRS = 1 << 16                  # pairs per elementwise step on the CPU (cache-sized); never changes a value
DEVICE_PAIRS = 1 << 24               # elsewhere: bounds the temporaries (~0.5 GB)


def shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's >> copies the sign bit)."""
    return torch.bitwise_right_shift(x, bits).bitwise_and_((1 << (64 - bits)) - 1)


def mix64_(x: torch.Tensor) -> torch.Tensor:
    """Stafford's Mix13 of int64 bit patterns, in place: a bijection of 64-bit words with full avalanche."""
    x.bitwise_xor_(shift_right(x, 30)).mul_(MIX1)
    x.bitwise_xor_(shift_right(x, 27)).mul_(MIX2)
    return x.bitwise_xor_(shift_right(x, 31))


def sample_keys(seeds: torch.Tensor) -> torch.Tensor:
    """Per-sample keys [N] int64: SplitMix64's first output for each seed (any int64 seeds)."""
    return mix64_(seeds.to(torch.int64) + GAMMA)


def pair_bits(keys: torch.Tensor, first: int, count: int) -> torch.Tensor:
    """Random bits [N, count] int64 of pairs first..first+count-1: outputs first+1..first+count of each key's
    SplitMix64 stream."""
    return mix64_(keys[:, None] + _steps(first, count, keys.device))


def _steps(first: int, count: int, device: torch.device) -> torch.Tensor:
    """(position of pairs first..first+count-1) * GAMMA, [count] int64: what SplitMix64 adds to the key."""
    return torch.arange(first + 1, first + count + 1, dtype=torch.int64, device=device).mul_(GAMMA)


def box_muller(bits: torch.Tensor) -> torch.Tensor:
    """Two standard normals per 64-bit word [..., P] -> float32 [..., 2, P] (cosine half, then sine half).

    The low 32 bits give u in (0, 1) (the radius sqrt(-2 ln u), at most 6.7), the high 32 bits the angle in
    [0, 2 pi); both are exact in float64."""
    u = bits.bitwise_and(MASK32).double().add_(0.5).mul_(2.0 ** -32)           # (0, 1)
    angle = shift_right(bits, 32).double().mul_(2 * math.pi * 2.0 ** -32)       # [0, 2 pi)
    radius = u.log_().mul_(-2.0).sqrt_()
    return torch.stack([radius * torch.cos(angle), radius.mul_(angle.sin_())], dim=-2).float()


def layer_noise(keys: torch.Tensor, layer: int, resolution: int) -> torch.Tensor:
    """Noise [N, 1, r, r] float32 of layer `layer`: pair p gives pixel p (cosine) and pixel p + r*r/2 (sine),
    row-major; the values depend only on (key, layer, pixel), never on N or on the order of the samples."""
    if resolution < 2 or resolution * resolution % 2:
        raise ValueError(f"noise maps need an even number of pixels, got resolution {resolution}")
    n, half = keys.shape[0], resolution * resolution // 2
    out = torch.empty(n, 2, half, dtype=torch.float32, device=keys.device)
    step = CPU_PAIRS if keys.device.type == "cpu" else DEVICE_PAIRS
    rows, cols = max(1, step // half), min(half, step)  # blocks of about `step` pairs: whole rows, or parts of one
    for i in range(0, n, rows):
        for j in range(0, half, cols):
            count = min(cols, half - j)
            out[i:i + rows, :, j:j + count] = box_muller(pair_bits(keys[i:i + rows], layer * LAYER_STRIDE + j, count))
    return out.view(n, 1, resolution, resolution)


def noise_maps(seeds: torch.Tensor, resolutions: list[int],
               device: torch.device | str | None = None) -> list[torch.Tensor]:
    """One N(0, 1) map [N, 1, r, r] per layer (resolutions[l] = r of layer l) for seeds [N] int, on `device` (default:
    the seeds' device); sample n's maps depend only on seeds[n]."""
    if seeds.ndim != 1 or seeds.dtype.is_floating_point or seeds.dtype == torch.bool:
        raise ValueError(f"noise seeds must be integers of shape [N], got {seeds.dtype} {list(seeds.shape)}")
    device = seeds.device if device is None else torch.device(device)
    halves = [r * r // 2 for r in resolutions]
    with torch.autocast(device.type, enabled=False):  # float64 stays float64 under a caller's autocast
        keys = sample_keys(seeds.to(device, non_blocking=True))
        step = CPU_PAIRS if device.type == "cpu" else DEVICE_PAIRS
        if not 0 < sum(halves) <= step or keys.shape[0] == 0 or any(r < 2 or r * r % 2 for r in resolutions):
            return [layer_noise(keys, layer, r) for layer, r in enumerate(resolutions)]  # layer by layer, in blocks
        # every layer in one pass (a few dozen kernels per batch, not a few per layer), `rows` samples at a time
        steps = torch.cat([_steps(layer * LAYER_STRIDE, half, device) for layer, half in enumerate(halves)])
        rows = step // steps.shape[0]
        z = torch.cat([box_muller(mix64_(keys[i:i + rows, None] + steps))
                       for i in range(0, keys.shape[0], rows)])  # [N, 2, sum(halves)]
        return [part.reshape(-1, 1, r, r) for part, r in zip(z.split(halves, dim=2), resolutions)]
