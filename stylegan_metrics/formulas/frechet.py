"""The Fréchet distance between two Gaussians, exactly in float64 and without complex arithmetic."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg.blas import dtrmm

from stylegan_core.errors import InputError


class FrechetOverflow(InputError):
    """Statistics whose Fréchet distance is not a finite float64 number (values far beyond any network's)."""


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(S1 S2) = sum of sqrt(eigenvalues of F^T S2 F) with S1 = F F^T: a symmetric PSD problem.

    F is the Cholesky factor when S1 is positive definite (both products then run as triangular
    BLAS multiplies), else V sqrt(max(lambda, 0)) from S1's eigendecomposition (rank-deficient S1).
    """
    try:
        factor = np.asfortranarray(np.linalg.cholesky(sigma1))
        m = dtrmm(1.0, factor, np.asfortranarray(sigma2), side=1, lower=1)      # S2 F
        m = dtrmm(1.0, factor, m, side=0, lower=1, trans_a=1, overwrite_b=1)   # F^T S2 F
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(sigma1)
        factor = vectors * np.sqrt(np.clip(values, 0, None))
        m = factor.T @ sigma2 @ factor
    eigenvalues = scipy.linalg.eigh(m, eigvals_only=True, check_finite=False, overwrite_a=True, driver="evr")
    return float(np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2), finite and >= 0 even for singular S; FrechetOverflow
    (an InputError) when float64 overflows on the way (no numpy warning, never inf)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu {mu1.shape} {mu2.shape}, sigma {sigma1.shape} {sigma2.shape}")
    for name, a in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(a).all():
            raise FrechetOverflow(f"{name} contains NaN or Inf (float64 sums of features far beyond any network's "
                                  f"overflow)")
    try:
        with np.errstate(over="raise", invalid="raise"):  # an overflow is an error, not a warning and inf
            diff = mu1 - mu2
            value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)
    except (FloatingPointError, np.linalg.LinAlgError, ValueError) as e:
        raise FrechetOverflow(f"the Fréchet distance of these statistics cannot be computed in float64 ({e})") from None
    if not np.isfinite(value):
        raise FrechetOverflow(f"the Fréchet distance of these statistics is {float(value)} in float64 (their values "
                              f"are far beyond any feature network's)")
    return max(float(value), 0.0)
