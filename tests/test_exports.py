"""The array formulas of every metric are importable from the package root, and each gives a value worked out by
hand on a few points."""

import numpy as np
import pytest

import stylegan_metrics
from stylegan_metrics import (density_coverage_from_arrays, inception_score_from_probs, kid_from_arrays,
                              precision_recall_from_arrays)

FORMULAS = ["density_coverage_from_arrays", "frechet_distance", "inception_score_from_probs", "kid_from_arrays",
            "precision_recall_from_arrays", "separability_from_arrays"]


@pytest.mark.parametrize("name", FORMULAS)
def test_each_formula_is_exported_from_the_package_root(name):
    assert name in stylegan_metrics.__all__ and callable(getattr(stylegan_metrics, name))


def test_kid_of_two_point_pairs():
    """D = 1, k(a, b) = (ab + 1)^3; gen {1, 1}, real {0, 0}, one subset of all m = 2 rows:
    k within gen 8 (2 ordered pairs), within real 1 (2 pairs), between 1 (4 pairs):
    16/2 + 2/2 - 2 * 4/4 = 7."""
    assert kid_from_arrays(np.zeros((2, 1)), np.ones((2, 1)), num_subsets=1) == pytest.approx(7.0, abs=1e-12)


def test_precision_recall_of_points_on_a_line():
    """k = 1. Real {0, 1, 10}: radii 1, 1, 9, so the real manifold is [-1, 2] and [1, 19]: of gen {5, 6, 30},
    5 and 6 lie inside (precision 2/3). Gen radii 1, 1, 24: the generated manifold [4, 7] and [6, 54] holds
    real 10 only (recall 1/3)."""
    real, gen = np.array([[0.0], [1.0], [10.0]]), np.array([[5.0], [6.0], [30.0]])
    assert precision_recall_from_arrays(real, gen, k=1) == (2 / 3, 1 / 3)


def test_density_coverage_of_points_on_a_line():
    """k = 1. Real {0, 1, 10}: radii 1, 1, 9, open balls (-1, 1), (0, 2), (1, 19). Gen {0.5, 0.7, 30}: 0.5 and 0.7
    lie in two balls each, 30 in none: density 4 / (1 * 3). Nearest generated: 0.5 for 0 and 1 (0.5 away, below
    their radius 1), 0.7 for 10 (9.3 away, not below 9): coverage 2/3."""
    real, gen = np.array([[0.0], [1.0], [10.0]]), np.array([[0.5], [0.7], [30.0]])
    assert density_coverage_from_arrays(real, gen, k=1) == (4 / 3, 2 / 3)
    # k = 2: radii 10, 9, 10 -> (-10, 10), (-8, 10), (0, 20): 0.5 and 0.7 in three each, density 6 / (2 * 3);
    # 10's nearest generated, 9.3 away, is now below its radius: coverage 1
    assert density_coverage_from_arrays(real, gen, k=2) == (1.0, 1.0)


def test_inception_score_of_two_splits():
    """Split 1: rows [1, 0], [0, 1], marginal [1/2, 1/2], KL log 2 each, score 2. Split 2: rows [1, 0], [1, 0],
    marginal [1, 0], KL 0, score 1. Mean 1.5, std 0.5."""
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    mean, std = inception_score_from_probs(probs, num_splits=2)
    assert mean == pytest.approx(1.5, abs=1e-12) and std == pytest.approx(0.5, abs=1e-12)
