"""Inception Score (Salimans et al. 2016): exp of the mean KL divergence between each image's class
probabilities and their mean, over consecutive splits, as NVIDIA's stylegan2-ada-pytorch computes it."""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from stylegan_core.errors import InputError

from stylegan_metrics.formulas.arrays import check_count, numpy_matrix

ROW_SUM_TOLERANCE = 1e-3  # rows of class probabilities must sum to 1 within this


def split_score(probs: np.ndarray) -> float:
    """exp(mean over rows of KL(p(y|x) || p(y))) with p(y) the mean row; 0 log 0 counts as 0. [n, C] -> float."""
    marginal = probs.mean(axis=0, keepdims=True)  # [1, C]
    kl = (xlogy(probs, probs) - xlogy(probs, marginal)).sum(axis=1)  # [n]
    return float(np.exp(kl.mean()))


def inception_score_from_probs(
    probs,                      # [N, C] class probabilities (softmax outputs), numpy or torch
    *,
    num_splits: int = 10,       # consecutive splits: split i holds rows [i N // s, (i + 1) N // s)
) -> tuple[float, float]:
    """(mean, std) of the per-split scores, std with ddof=0; computed in float64."""
    num_splits = check_count("num_splits", num_splits, 1)
    probs = numpy_matrix("class probabilities", probs, min_rows=num_splits, why=f"one per split, {num_splits} splits")
    if (probs < 0).any() or (probs > 1).any():
        raise InputError("class probabilities must lie in [0, 1] (were logits passed instead of softmax outputs?)")
    sums = probs.sum(axis=1)
    worst = int(np.abs(sums - 1).argmax())
    if abs(sums[worst] - 1) > ROW_SUM_TOLERANCE:
        raise InputError(f"class probabilities must sum to 1 per row; row {worst} sums to {sums[worst]:.6g}")
    n = probs.shape[0]
    scores = [split_score(probs[i * n // num_splits:(i + 1) * n // num_splits]) for i in range(num_splits)]
    return float(np.mean(scores)), float(np.std(scores))
