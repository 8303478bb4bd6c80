"""Batched torch linear SVMs (stylegan_metrics.formulas.svm) against sklearn's LinearSVC and the exact liblinear objective."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from stylegan_metrics.formulas.svm import fit_linear_svms, predict_linear_svms, svm_objective


def _problem(n: int = 2000, d: int = 32, k: int = 5, seed: int = 0):
    """Partially separable labels (linear + nonlinear + noise) and random masks keeping about half the points."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    score = x @ rng.standard_normal((d, k)) + 1.5 * np.sin(3 * x[:, :k]) + rng.standard_normal((n, k)) + 0.3
    return x, score > 0, rng.random((n, k)) < 0.5


def _sklearn(x: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    W, b = [], []
    for k in range(labels.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm = LinearSVC(random_state=0).fit(x[mask[:, k]], labels[mask[:, k], k])
        W.append(svm.coef_[0])
        b.append(svm.intercept_[0])
    return torch.tensor(np.array(W)), torch.tensor(np.array(b))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_matches_sklearn_linearsvc(dtype):
    x, labels, mask = _problem()
    X, L, M = torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(mask)
    W, b = fit_linear_svms(X.to(dtype), L, M)  # float32 input -> float32 products by default
    assert W.shape == (5, 32) and b.shape == (5,) and W.dtype == b.dtype == torch.float64
    Ws, bs = _sklearn(x, labels, mask)
    f_ours, f_sk = svm_objective(X, L, M, W, b), svm_objective(X, L, M, Ws, bs)
    assert torch.all(f_ours <= f_sk * (1 + 1e-7)), (f_ours, f_sk)
    assert torch.allclose(f_ours, f_sk, rtol=1e-5, atol=0)
    assert torch.allclose(W, Ws, rtol=1e-3, atol=1e-4) and torch.allclose(b, bs, rtol=1e-3, atol=1e-4)
    ours, ref = predict_linear_svms(X, W, b), predict_linear_svms(X, Ws, bs)
    for k in range(5):
        assert (ours[mask[:, k], k] == ref[mask[:, k], k]).float().mean() >= 0.995


def test_separable_data_is_fit_exactly():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1500, 8))
    v = rng.standard_normal(8)
    v /= np.linalg.norm(v)
    y = x @ v + 0.2 > 0
    x += np.where(y, 0.5, -0.5)[:, None] * v  # a clear margin around the hyperplane
    X = torch.from_numpy(x)
    W, b = fit_linear_svms(X, torch.from_numpy(y[:, None]))
    assert bool((predict_linear_svms(X, W, b)[:, 0] == torch.from_numpy(y)).all())


def test_xor_is_not_linearly_separable():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (4000, 2))
    y = (x[:, 0] > 0) ^ (x[:, 1] > 0)
    X = torch.from_numpy(x)
    W, b = fit_linear_svms(X, torch.from_numpy(y[:, None]))
    accuracy = (predict_linear_svms(X, W, b)[:, 0] == torch.from_numpy(y)).double().mean().item()
    assert 0.4 <= accuracy <= 0.76


def test_bias_is_regularized_like_liblinear():
    from scipy.optimize import minimize

    x = np.array([-2.0, -1.0, -0.5, 0.3, 1.0, 1.5, 2.5, 3.0]) + 4  # off-center: the bias must be large
    y = np.array([-1, -1, 1, -1, 1, 1, 1, 1.0])

    def objective(p: np.ndarray, bias_weight: float) -> float:
        return 0.5 * p[0] ** 2 + 0.5 * bias_weight * p[1] ** 2 + np.sum(np.maximum(0, 1 - y * (p[0] * x + p[1])) ** 2)

    options = dict(xatol=1e-12, fatol=1e-14, maxiter=20000)
    exact = minimize(objective, np.zeros(2), args=(1.0,), method="Nelder-Mead", options=options).x
    free = minimize(objective, np.zeros(2), args=(0.0,), method="Nelder-Mead", options=options).x
    W, b = fit_linear_svms(torch.from_numpy(x[:, None]), torch.from_numpy(y[:, None] > 0), tol=1e-10)
    assert abs(W[0, 0].item() - exact[0]) < 1e-6 and abs(b[0].item() - exact[1]) < 1e-6
    assert abs(b[0].item() - free[1]) > 0.1  # the test tells a regularized bias from a free one


def test_degenerate_attributes_predict_their_class():
    x, labels, mask = _problem(n=600, d=6, k=4, seed=3)
    labels[mask[:, 0], 0] = True     # kept labels all positive (unkept ones mixed)
    labels[mask[:, 1], 1] = False    # kept labels all negative
    mask[:, 3] = False               # no kept point
    X = torch.from_numpy(x)
    W, b = fit_linear_svms(X, torch.from_numpy(labels), torch.from_numpy(mask))
    assert torch.isfinite(W).all() and torch.isfinite(b).all()
    pred = predict_linear_svms(X, W, b)
    assert bool(pred[:, 0].all()) and not bool(pred[:, 1].any()) and not bool(pred[:, 3].any())
    acc = (pred[mask[:, 2], 2] == torch.from_numpy(labels[mask[:, 2], 2])).double().mean()
    assert acc > 0.7  # the normal attribute beside them is still fit


def test_batched_equals_one_at_a_time():
    x, labels, mask = _problem(n=1500, d=16, k=6, seed=4)
    X, L, M = torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(mask)
    W, b = fit_linear_svms(X, L, M)
    for k in range(6):
        Wk, bk = fit_linear_svms(X, L[:, k:k + 1], M[:, k:k + 1])
        assert torch.allclose(Wk[0], W[k], rtol=0, atol=1e-8) and abs(bk[0] - b[k]) < 1e-8


def test_mask_none_and_shape_checks():
    x, labels, _ = _problem(n=300, d=4, k=2, seed=5)
    X, L = torch.from_numpy(x), torch.from_numpy(labels)
    W, b = fit_linear_svms(X, L)
    W1, b1 = fit_linear_svms(X, L, torch.ones_like(L))
    assert torch.equal(W, W1) and torch.equal(b, b1)
    assert predict_linear_svms(X, W, b).shape == (300, 2)
    with pytest.raises(ValueError):
        fit_linear_svms(X, L[:-1])
    with pytest.raises(ValueError):
        fit_linear_svms(X, L, torch.ones(300, 3, dtype=torch.bool))
