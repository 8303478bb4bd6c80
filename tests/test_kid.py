"""KID: a hand computation, the unbiased MMD over the whole set, torch-fidelity's subsets, seeding and guards."""

import numpy as np
import pytest
import torch

from stylegan_core.errors import InputError
from stylegan_metrics.formulas.kid import kid_from_arrays


def unbiased_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Squared MMD, unbiased, kernel (a . b / D + 1) ** 3, pair by pair in plain Python."""
    m, d = x.shape

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1) ** 3

    within = sum(k(s[i], s[j]) for s in (x, y) for i in range(m) for j in range(m) if i != j)
    between = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return within / (m * (m - 1)) - 2 * between / (m * m)


def test_two_points_by_hand():
    # k(a, b) = (a b + 1)^3 in 1-D; generated {1, 2}, real {0, 1}:
    # within = 2 k(1, 2) + 2 k(0, 1) = 54 + 2; between = k(1,0) + k(1,1) + k(2,0) + k(2,1) = 1 + 8 + 1 + 27
    # KID = 56 / (2 * 1) - 2 * 37 / 4 = 9.5
    real, gen = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    assert kid_from_arrays(real, gen, num_subsets=3) == pytest.approx(9.5, rel=1e-12)


def test_subsets_covering_the_whole_set_give_the_unbiased_mmd():
    rng = np.random.RandomState(0)
    real, gen = rng.rand(12, 5), rng.rand(12, 5) + 0.2
    expected = unbiased_mmd(gen, real)
    assert expected > 0.01
    for num_subsets in (1, 4):
        got = kid_from_arrays(real, gen, num_subsets=num_subsets, max_subset_size=50)
        assert got == pytest.approx(expected, abs=1e-9)
    assert kid_from_arrays(real, gen, num_subsets=2, max_subset_size=12, seed=9) == pytest.approx(expected, abs=1e-9)


def test_equals_torch_fidelity_with_the_same_seed():
    """torch-fidelity draws generated then real indices from RandomState(seed) per subset, as we do; its mean
    over subsets is NVIDIA's KID. Unequal set sizes: the subset size is capped by the smaller set."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    rng = np.random.RandomState(1)
    real, gen = rng.rand(25, 7), rng.rand(40, 7) * 1.1
    for seed in (0, 2020):
        theirs = kid_features_to_metric(torch.from_numpy(gen), torch.from_numpy(real), kid_subsets=6,
                                        kid_subset_size=25, rng_seed=seed, verbose=False)[KEY_METRIC_KID_MEAN]
        ours = kid_from_arrays(real, gen, num_subsets=6, seed=seed)
        assert ours == pytest.approx(theirs, rel=1e-9)
        # smaller subsets than both sets
        theirs = kid_features_to_metric(torch.from_numpy(gen), torch.from_numpy(real), kid_subsets=6,
                                        kid_subset_size=10, rng_seed=seed, verbose=False)[KEY_METRIC_KID_MEAN]
        ours = kid_from_arrays(real, gen, num_subsets=6, max_subset_size=10, seed=seed)
        assert ours == pytest.approx(theirs, rel=1e-9)


def test_seeded_reproducible_and_input_types():
    rng = np.random.RandomState(2)
    real, gen = rng.randn(60, 4), rng.randn(50, 4) + 0.5
    a = kid_from_arrays(real, gen, num_subsets=5, max_subset_size=20, seed=3)
    assert a == kid_from_arrays(real, gen, num_subsets=5, max_subset_size=20, seed=3)
    assert a != kid_from_arrays(real, gen, num_subsets=5, max_subset_size=20, seed=4)
    tensors = torch.from_numpy(real), torch.from_numpy(gen)
    assert a == kid_from_arrays(*tensors, num_subsets=5, max_subset_size=20, seed=3)
    assert a == kid_from_arrays(real.tolist(), gen.tolist(), num_subsets=5, max_subset_size=20, seed=3)
    assert isinstance(a, float)


def test_same_distribution_near_zero_shifted_far():
    rng = np.random.RandomState(3)
    real, same, shifted = rng.randn(400, 8), rng.randn(400, 8), rng.randn(400, 8) + 0.5
    near = kid_from_arrays(real, same, num_subsets=20, max_subset_size=200)
    far = kid_from_arrays(real, shifted, num_subsets=20, max_subset_size=200)
    assert far > 0.05 and abs(near) < far / 20


@pytest.mark.parametrize("real, gen, kwargs, message", [
    (np.zeros((1, 3)), np.zeros((5, 3)), {}, "real features has 1 rows"),
    (np.zeros((5, 3)), np.zeros((1, 3)), {}, "generated features has 1 rows"),
    (np.zeros((5, 3)), np.zeros((5, 4)), {}, "differ in width"),
    (np.full((5, 3), np.nan), np.zeros((5, 3)), {}, "NaN or Inf"),
    (np.zeros((5, 3)), np.array([[np.inf, 0, 0]] * 5), {}, "NaN or Inf"),
    (np.zeros(5), np.zeros((5, 3)), {}, r"matrix \[N, D\]"),
    (np.array([["a", "b"]] * 3), np.zeros((3, 2)), {}, "real-valued"),
    (np.zeros((5, 3)), np.zeros((5, 3)), {"num_subsets": 0}, "num_subsets"),
    (np.zeros((5, 3)), np.zeros((5, 3)), {"max_subset_size": 1}, "max_subset_size"),
    (np.zeros((5, 3)), np.zeros((5, 3)), {"seed": -1}, "seed"),
    (np.zeros((5, 3)), np.zeros((5, 3)), {"num_subsets": True}, "num_subsets"),
])
def test_bad_input_is_an_input_error(real, gen, kwargs, message):
    with pytest.raises(InputError, match=message):
        kid_from_arrays(real, gen, **kwargs)
