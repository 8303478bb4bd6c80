"""Counter-based synthesis noise: SplitMix64's published outputs, Box-Muller by hand, batch composition, standard
normal statistics (scipy's KS test, correlations), determinism, and what the generators draw with it."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from stylegan_core.networks import noise
from stylegan_core.networks.noise import LAYER_STRIDE, box_muller, noise_maps, pair_bits, sample_keys
from stylegan_metrics.engine.sampling import synthesize
from helpers import tiny_generator

M64 = (1 << 64) - 1
RESOLUTIONS = [4, 8, 8, 16, 16, 32, 32]  # a 32-px StyleGAN2's noise inputs

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread of a shared CPU


def mix64_reference(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def splitmix64_reference(seed: int, count: int) -> list[int]:
    """SplitMix64 (Steele, Lea and Flood 2014; Vigna's splitmix64.c) in Python integers: the first `count` outputs."""
    out, state = [], seed & M64
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & M64
        out.append(mix64_reference(state))
    return out


def splitmix64_at(seed: int, position: int) -> int:
    """Output `position` (1 = the first) of SplitMix64 seeded with `seed`: its state then is seed + position * gamma."""
    return mix64_reference((seed + position * 0x9E3779B97F4A7C15) & M64)


def unsigned(t: torch.Tensor) -> list[int]:
    return [v & M64 for v in t.flatten().tolist()]


# ---- the integer generator --------------------------------------------------------------------------------------
def test_splitmix64_published_outputs():
    # splitmix64.c seeded with 0 starts 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f
    assert unsigned(sample_keys(torch.tensor([0]))) == [0xE220A8397B1DCDAF]
    assert unsigned(pair_bits(torch.tensor([0]), 0, 3)) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_bits_equal_python_integers_for_any_seed_and_layer():
    seeds = [0, 1, 7, -1, -(1 << 63), (1 << 63) - 1, (1 << 62) - 12345]
    keys = sample_keys(torch.tensor(seeds))
    for seed, key in zip(seeds, unsigned(keys)):
        assert key == splitmix64_reference(seed, 1)[0]  # the key: the seed's first output
    assert [splitmix64_at(5, p) for p in range(1, 9)] == splitmix64_reference(5, 8)
    for layer in (0, 1, 25):
        first = layer * LAYER_STRIDE + 1000
        got = pair_bits(keys, first, 5)
        for key, row in zip(unsigned(keys), got):  # pair p: position p + 1 of the key's stream
            assert unsigned(row) == [splitmix64_at(key, first + p + 1) for p in range(5)]


def test_box_muller_by_hand():
    lo_max, quarter = (1 << 32) - 1, 1 << 30  # u = 1 - 2^-33; angle pi/2
    words = torch.tensor([0, lo_max, quarter << 32, (quarter << 32) | 0x12345678])
    z = box_muller(words)  # [2, 4]: cosine row, sine row
    assert z.dtype == torch.float32 and z.shape == (2, 4)
    r0 = math.sqrt(66 * math.log(2))        # u = 2^-33: -2 ln u = 66 ln 2 (the largest radius, 6.76)
    r1 = math.sqrt(-2 * math.log1p(-2.0 ** -33))  # ~2^-16
    r2 = math.sqrt(-2 * math.log((0x12345678 + 0.5) / 2 ** 32))
    expected = [[r0, r1, r0 * math.cos(math.pi / 2), r2 * math.cos(math.pi / 2)], [0.0, 0.0, r0, r2]]
    torch.testing.assert_close(z, torch.tensor(expected), rtol=1e-7, atol=1e-12)
    assert z[0, 1].item() == pytest.approx(2.0 ** -16, rel=1e-6)


# ---- the maps ---------------------------------------------------------------------------------------------------
def test_sample_alone_equals_sample_in_a_batch_of_37():
    seeds = torch.randint(0, 2 ** 62, (37,), generator=torch.Generator().manual_seed(0))
    batch = noise_maps(seeds, RESOLUTIONS)
    assert [tuple(m.shape) for m in batch] == [(37, 1, r, r) for r in RESOLUTIONS]
    for i in (0, 17, 36):
        alone = noise_maps(seeds[i:i + 1], RESOLUTIONS)
        assert all(torch.equal(a[0], b[i]) for a, b in zip(alone, batch))
    order = torch.randperm(37, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b[order]) for a, b in zip(noise_maps(seeds[order], RESOLUTIONS), batch))


def test_pixel_layout_and_independence_of_the_step_size(monkeypatch):
    seeds = torch.arange(9)
    ref = noise_maps(seeds, RESOLUTIONS)  # all layers in one pass
    keys = sample_keys(seeds)
    for layer, p in ((0, 3), (4, 100), (6, 511)):  # pair p: pixel p (cosine) and pixel p + r * r / 2 (sine)
        z = box_muller(pair_bits(keys[5:6], layer * LAYER_STRIDE + p, 1))[0, :, 0]
        half = RESOLUTIONS[layer] ** 2 // 2
        assert torch.equal(ref[layer][5].flatten()[[p, p + half]], z)
    monkeypatch.setattr(noise, "CPU_PAIRS", 7)  # layer by layer, in blocks of 7 pairs
    assert all(torch.equal(a, b) for a, b in zip(noise_maps(seeds, RESOLUTIONS), ref))
    monkeypatch.setattr(noise, "CPU_PAIRS", 3000)  # all layers, 2 samples per pass
    assert all(torch.equal(a, b) for a, b in zip(noise_maps(seeds, RESOLUTIONS), ref))


def test_deterministic_and_distinct_per_seed_and_layer():
    a, b = noise_maps(torch.tensor([3, 4]), [8, 8]), noise_maps(torch.tensor([3, 4]), [8, 8])
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0][0], a[0][1])  # two seeds
    assert not torch.equal(a[0], a[1])        # two layers of one resolution
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a caller's bf16 autocast leaves the noise alone
        c = noise_maps(torch.tensor([3, 4]), [8, 8])
    assert all(torch.equal(x, y) and y.dtype == torch.float32 for x, y in zip(a, c))


def test_standard_normal_statistics():
    maps = noise_maps(torch.arange(24), [16, 16, 32])  # consecutive seeds: the most structured input
    x = torch.cat([m.flatten() for m in maps]).double().numpy()  # 24 * (2 * 256 + 1024) = 36,864 values
    big = noise_maps(torch.arange(100, 200), [32])[0].double().numpy().ravel()  # 102,400 values
    n = big.size
    assert abs(big.mean()) < 4 / math.sqrt(n) and abs(big.std() - 1) < 4 / math.sqrt(2 * n)
    assert scipy.stats.kstest(big, "norm").pvalue > 1e-3
    assert scipy.stats.kstest(x, "norm").pvalue > 1e-3
    assert abs(np.mean(np.abs(big) > 3) - 0.0027) < 0.0012     # two-sided 3-sigma tail
    assert abs(scipy.stats.kurtosis(big)) < 0.1

    def corr(a, b):
        return abs(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])

    limit = 5 / math.sqrt(n)  # |r| of independent samples exceeds 5 sigma with probability ~1e-6
    m = noise_maps(torch.arange(100, 200), [32, 32])
    a, b = m[0].numpy(), m[1].numpy()                      # [100, 1, 32, 32] each
    assert corr(a[..., 1:], a[..., :-1]) < limit * 1.01    # horizontal neighbours
    assert corr(a[..., 1:, :], a[..., :-1, :]) < limit * 1.01  # vertical neighbours
    assert corr(a[1:], a[:-1]) < limit * 1.01              # consecutive samples (seeds i, i + 1)
    assert corr(a, b) < limit                              # two layers of one sample
    top, bottom = a[..., :16, :], a[..., 16:, :]           # cosine and sine halves of the same words
    assert corr(top, bottom) < 2 * limit and corr(top ** 2, bottom ** 2) < 2 * limit


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_same_on_cuda():
    seeds = torch.randint(-(2 ** 63), 2 ** 63 - 1, (37,), generator=torch.Generator().manual_seed(2))
    keys = sample_keys(seeds)
    assert torch.equal(pair_bits(keys, 5, 4096), pair_bits(keys.cuda(), 5, 4096).cpu())
    for a, b in zip(noise_maps(seeds, RESOLUTIONS), noise_maps(seeds, RESOLUTIONS, "cuda")):
        torch.testing.assert_close(b.cpu(), a, rtol=2e-7, atol=1e-7)


# ---- the generators ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_generators_draw_these_maps_and_a_sample_alone_equals_it_in_a_batch(arch):
    G = tiny_generator(16, arch=arch)
    noise_layers = [m for m in G.synthesis.modules() if hasattr(m, "noise_const")]
    with torch.no_grad():
        for layer in noise_layers:
            layer.strength.fill_(0.7)
    seeds = torch.randint(0, 2 ** 62, (37,), generator=torch.Generator().manual_seed(3))
    drawn = G.synthesis.draw_noise(seeds, "cpu")
    assert len(drawn) == len(noise_layers)
    assert all(torch.equal(a, b) for a, b in zip(drawn, noise_maps(seeds, G.synthesis.layer_resolutions)))
    with torch.inference_mode():
        ws = G.mapping(torch.randn(37, 16, generator=torch.Generator().manual_seed(4)))
        batch = synthesize(G, ws, seeds)
        for i in (0, 20):
            assert torch.equal(synthesize(G, ws[i:i + 1], seeds[i:i + 1])[0], batch[i])
        assert not torch.equal(synthesize(G, ws[:2], seeds[1:3]), batch[:2])  # the noise shows in the images
