"""Inception Score: analytic cases, scipy's KL divergence per split, torch-fidelity's computation, guards."""

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from stylegan_core.errors import InputError
from stylegan_metrics.formulas.inception_score import inception_score_from_probs


def scipy_reference(probs: np.ndarray, num_splits: int) -> tuple[float, float]:
    """Consecutive splits [i N // s, (i + 1) N // s); per split exp(mean_x KL(p(y|x) || p(y))) via scipy."""
    n = len(probs)
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        marginal = part.mean(axis=0)
        scores.append(np.exp(np.mean([entropy(p, marginal) for p in part])))
    return float(np.mean(scores)), float(np.std(scores))


def dirichlet_probs(n: int, c: int, seed: int) -> np.ndarray:
    return np.random.RandomState(seed).dirichlet(np.full(c, 0.3), size=n)


def test_analytic_cases():
    assert inception_score_from_probs(np.full((20, 7), 1 / 7), num_splits=4) == pytest.approx((1.0, 0.0), abs=1e-12)
    # one-hot predictions, every class equally often in every split: IS = number of classes
    one_hot = np.eye(5)[np.arange(40) % 5]
    assert inception_score_from_probs(one_hot, num_splits=8) == pytest.approx((5.0, 0.0), rel=1e-12)
    # split 0 sees classes {0, 1} equally (IS 2), split 1 only class 2 (IS 1): mean 1.5, std 0.5
    labels = np.array([0, 1, 0, 1, 2, 2, 2, 2])
    assert inception_score_from_probs(np.eye(3)[labels], num_splits=2) == pytest.approx((1.5, 0.5), rel=1e-12)


@pytest.mark.parametrize("n, num_splits", [(100, 10), (103, 10), (37, 1), (24, 12)])
def test_equals_scipy_entropy_per_split(n, num_splits):
    probs = dirichlet_probs(n, 9, seed=n)
    expected = scipy_reference(probs, num_splits)
    assert expected[0] > 1.5 and (num_splits == 1 or expected[1] > 0)
    got = inception_score_from_probs(probs, num_splits=num_splits)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_equals_torch_fidelity_without_shuffling():
    """torch-fidelity takes logits and shuffles by default; unshuffled, its splits are NVIDIA's."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    logits = torch.randn(203, 1008, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    theirs = isc_features_to_metric(logits, splits=10, shuffle=False)
    ours = inception_score_from_probs(torch.softmax(logits, dim=1), num_splits=10)
    assert ours == pytest.approx((theirs[KEY_METRIC_ISC_MEAN], theirs[KEY_METRIC_ISC_STD]), rel=1e-9)


def test_zero_probabilities_count_as_zero():
    probs = dirichlet_probs(30, 6, seed=1)
    probs[:, 5] = 0  # a class never predicted: 0 log 0 = 0, no NaN
    probs /= probs.sum(axis=1, keepdims=True)
    got = inception_score_from_probs(probs, num_splits=3)
    assert got == pytest.approx(scipy_reference(probs[:, :5], 3), rel=1e-9)
    assert got == inception_score_from_probs(torch.from_numpy(probs), num_splits=3)


@pytest.mark.parametrize("probs, kwargs, message", [
    (np.full((9, 4), 0.25), {"num_splits": 10}, "9 rows, at least 10"),
    (np.full((9, 4), 0.25), {"num_splits": 0}, "num_splits"),
    (np.full(9, 0.25), {}, r"matrix \[N, D\]"),
    (np.full((20, 4), np.nan), {}, "NaN or Inf"),
    (np.full((20, 4), 0.3), {}, "sums to 1.2"),
    (np.tile([2.0, -1.0], (20, 1)), {}, r"\[0, 1\]"),
])
def test_bad_input_is_an_input_error(probs, kwargs, message):
    with pytest.raises(InputError, match=message):
        inception_score_from_probs(probs, **kwargs)
