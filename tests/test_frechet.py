"""Fréchet distance and feature statistics against scipy / numpy references."""

import numpy as np
import pytest
import scipy.linalg
import torch

from stylegan_core import InputError
from stylegan_metrics import FeatureStats, ReferenceStats, frechet_distance


def scipy_frechet(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def random_stats(rng, n, d, shift=0.0, scale=1.0):
    x = rng.randn(n, d) @ rng.randn(d, d) * scale / np.sqrt(d) + shift
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("d", [2, 16, 64])
def test_matches_scipy_sqrtm_on_spd(d):
    rng = np.random.RandomState(d)
    mu1, s1 = random_stats(rng, 5 * d, d)
    mu2, s2 = random_stats(rng, 5 * d, d, shift=0.3, scale=1.5)
    ours, ref = frechet_distance(mu1, s1, mu2, s2), scipy_frechet(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(ours, rel=1e-9)  # symmetric


def test_one_dimensional_closed_form():
    # 1-d Gaussians: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1, rel=1e-12)


def test_identical_stats_give_zero_and_rank_deficient_is_finite():
    rng = np.random.RandomState(0)
    mu, s = random_stats(rng, 10, 64)  # N < d: singular covariance
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0, abs=1e-9)
    mu2, s2 = random_stats(rng, 12, 64, shift=0.5)
    value = frechet_distance(mu, s, mu2, s2)
    assert np.isfinite(value) and value > 0


def test_rejects_nan_and_shape_mismatch():
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance([np.nan], [[1.0]], [0.0], [[1.0]])
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance([0.0, 0.0], np.eye(2), [0.0], [[1.0]])


def test_running_sums_equal_numpy_whatever_the_batching():
    rng = np.random.RandomState(1)
    x = rng.randn(101, 7) * 3 + 2
    acc = FeatureStats(7)
    for chunk in np.array_split(x, [1, 5, 50]):
        acc.update(torch.from_numpy(chunk).float())
    x32 = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(acc.mean(), x32.mean(0), rtol=1e-12)
    np.testing.assert_allclose(acc.covariance(), np.cov(x32, rowvar=False), rtol=1e-9)
    np.testing.assert_allclose(acc.covariance("biased"), np.cov(x32, rowvar=False, bias=True), rtol=1e-9)
    with pytest.raises(InputError, match="NaN"):
        acc.update(torch.tensor([[float("nan")] * 7]))


def test_reference_stats_npz_round_trip_and_pytorch_fid_layout(tmp_path):
    stats = ReferenceStats(mu=np.arange(3.0), sigma=np.eye(3) * 2, n=10, features="Means")
    path = stats.save(tmp_path / "ref.npz")
    with np.load(path) as data:  # what pytorch-fid / clean-fid read
        np.testing.assert_array_equal(data["mu"], stats.mu)
        np.testing.assert_array_equal(data["sigma"], stats.sigma)
    back = ReferenceStats.load(path)
    assert back.n == 10 and back.features == "Means"
    np.testing.assert_allclose(back.covariance("biased"), np.eye(3) * 2 * 9 / 10)
    np.savez(tmp_path / "pfid.npz", mu=np.zeros(2048), sigma=np.eye(2048))  # a pytorch-fid file: no n, no features
    assert ReferenceStats.load(tmp_path / "pfid.npz").features == "inception-v3"
    np.savez(tmp_path / "pfid.npz", mu=stats.mu, sigma=stats.sigma)  # ... of 3 features: not inception-v3's
    with pytest.raises(InputError, match="mu has 3 features but inception-v3 features have 2,048"):
        ReferenceStats.load(tmp_path / "pfid.npz")
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="bad.npz"):
        ReferenceStats.load(tmp_path / "bad.npz")


def test_sums_are_bit_identical_for_any_batching():
    x = torch.from_numpy(np.random.RandomState(2).randn(300, 5))
    results = []
    for splits in (7, 32, [1, 299], 300):
        acc = FeatureStats(5)
        for chunk in x.split(splits):
            acc.update(chunk)
        results.append((acc.mean(), acc.covariance(), acc.n))
    for mean, cov, n in results[1:]:
        assert np.array_equal(mean, results[0][0]) and np.array_equal(cov, results[0][1]) and n == 300
