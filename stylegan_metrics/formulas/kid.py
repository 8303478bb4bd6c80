"""Kernel Inception Distance (Binkowski et al. 2018): the unbiased squared MMD with a cubic polynomial kernel,
averaged over random subsets, as NVIDIA's stylegan2-ada-pytorch computes it (with seeded subsets)."""

from __future__ import annotations

import numpy as np

from stylegan_metrics.formulas.arrays import check_count, check_same_width, numpy_matrix


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(a, b) = (a . b / D + 1) ** 3 for every row pair: [m, D] x [n, D] -> [m, n]."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def subset_mmd_sum(x: np.ndarray, y: np.ndarray) -> float:
    """m times the unbiased squared MMD of two equal-size samples x, y [m, D] (NVIDIA's per-subset term):
    (sum of k over distinct pairs within x and within y) / (m - 1) - 2 (sum of k over x, y pairs) / m."""
    m = x.shape[0]
    within = 0.0
    for a in (x, y):
        k = polynomial_kernel(a, a)  # [m, m]; numpy uses a symmetric rank-k update for a @ a.T
        within += k.sum() - np.trace(k)
    between = polynomial_kernel(x, y).sum()
    return float(within / (m - 1) - between * 2 / m)


def kid_from_arrays(
    real,                           # [N, D] features of real images (numpy or torch)
    gen,                            # [M, D] features of generated images
    *,
    num_subsets: int = 100,         # random subsets averaged
    max_subset_size: int = 1000,    # subset size m = min(N, M, max_subset_size)
    seed: int = 0,                  # seeds the subsets (numpy RandomState); same inputs and seed, same value
) -> float:
    """KID: the mean over `num_subsets` of the unbiased squared MMD between m generated and m real features
    drawn without replacement, kernel (a . b / D + 1) ** 3. Computed in float64; it can be slightly negative
    when both sets come from one distribution (the estimator is unbiased)."""
    num_subsets = check_count("num_subsets", num_subsets, 1)
    max_subset_size = check_count("max_subset_size", max_subset_size, 2)
    seed = check_count("seed", seed, 0, 2**32 - 1)
    why = "the unbiased MMD needs two samples on each side"
    real = numpy_matrix("real features", real, min_rows=2, why=why)
    gen = numpy_matrix("generated features", gen, min_rows=2, why=why)
    check_same_width(real.shape, gen.shape)
    m = min(real.shape[0], gen.shape[0], max_subset_size)
    rng = np.random.RandomState(seed)  # per subset: generated indices first, then real ones (NVIDIA's order)
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)]    # [m, D]
        y = real[rng.choice(real.shape[0], m, replace=False)]  # [m, D]
        total += subset_mmd_sum(x, y)
    return total / num_subsets / m
