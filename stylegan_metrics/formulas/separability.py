"""Linear separability (StyleGAN1 rules) as pure functions on arrays: confidence pruning, SVMs, H(Y|X)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def conditional_entropy(joint: np.ndarray) -> float:
    """H(Y|X) in bits of a 2x2 joint p[x, y] (x: SVM prediction, y: label); zero cells contribute 0."""
    p = np.asarray(joint, np.float64)
    p = p / p.sum()
    h = 0.0
    for x in range(p.shape[0]):
        px = p[x].sum()
        for y in range(p.shape[1]):
            if p[x, y] > 0:
                h += p[x, y] * np.log2(px / p[x, y])
    return float(h)


def joint_of(prediction: np.ndarray, label: np.ndarray) -> np.ndarray:
    """2x2 joint frequency of (prediction, label) booleans."""
    joint = np.zeros((2, 2))
    np.add.at(joint, (prediction.astype(int), label.astype(int)), 1)
    return joint / len(label)


def most_confident(logits: np.ndarray, keep: float) -> np.ndarray:
    """Indices [K, M] of the `keep` fraction with the highest confidence sigmoid(2|logit|) per attribute,
    ties broken by sample index (a stable sort, as NVIDIA's Python `sorted`)."""
    num_keep = int(round(logits.shape[0] * keep))
    order = np.argsort(-np.abs(logits), axis=0, kind="stable")  # |logit| orders like sigmoid(2|logit|)
    return order[:num_keep].T


def _sklearn_predictions(latents: np.ndarray, labels: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Per attribute k: LinearSVC (defaults, random_state=0) fit and predicted on latents[kept[k]]."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    out = np.empty(kept.shape, bool)
    for k, idx in enumerate(kept):
        y = labels[idx, k]
        if y.all() or not y.any():
            out[k] = y  # one class only: the SVM cannot be fit; NVIDIA then takes the labels as predictions
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm = LinearSVC(random_state=0).fit(latents[idx], y)
        out[k] = svm.predict(latents[idx]).astype(bool)
    return out


def _torch_predictions(latents: np.ndarray, labels: np.ndarray, kept: np.ndarray, device=None) -> np.ndarray:
    """All attributes as one batched L2-regularized squared-hinge problem (same objective as LinearSVC)."""
    import torch

    from stylegan_metrics.formulas.svm import fit_linear_svms, predict_linear_svms

    n, k = labels.shape
    mask = np.zeros((n, k), bool)
    mask[kept.T, np.arange(k)] = True
    X, Y = torch.from_numpy(latents), torch.from_numpy(labels)
    W, b = fit_linear_svms(X, Y, torch.from_numpy(mask), device=device)
    pred = predict_linear_svms(X, W, b).numpy()
    out = np.take_along_axis(pred, kept.T, axis=0).T
    degenerate = [j for j in range(k) if labels[kept[j], j].all() or not labels[kept[j], j].any()]
    for j in degenerate:
        out[j] = labels[kept[j], j]
    return out


def separability_from_arrays(
    latents: np.ndarray,                 # [N, D] z or w of each sample
    logits: np.ndarray,                  # [N, K] attribute classifier logits
    *,
    keep: float = 0.5,                   # fraction of most confident samples kept per attribute
    svm: str = "sklearn",                # 'sklearn' (reference LinearSVC) or 'torch' (batched, same objective)
    attributes: list[str] | None = None,  # K names for the table (default attr0, attr1, ...)
    device=None,                         # torch back end only
) -> tuple[float, pd.DataFrame]:
    """Score 2 ** sum_k H(Y_k | X_k) and a per-attribute table; deterministic for the same input."""
    latents = np.asarray(latents, np.float32)
    logits = np.asarray(logits, np.float64)
    if latents.ndim != 2 or logits.ndim != 2 or latents.shape[0] != logits.shape[0]:
        raise ValueError(f"latents [N, D] and logits [N, K] must share N: got {latents.shape} and {logits.shape}")
    if not (np.isfinite(latents).all() and np.isfinite(logits).all()):
        raise ValueError("latents or logits contain NaN or Inf")
    if not 0 < keep <= 1:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    k = logits.shape[1]
    names = attributes or [f"attr{i}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} attribute names for {k} logit columns")
    labels = logits > 0
    kept = most_confident(logits, keep)
    if svm == "sklearn":
        predictions = _sklearn_predictions(latents, labels, kept)
    elif svm == "torch":
        predictions = _torch_predictions(latents, labels, kept, device=device)
    else:
        raise ValueError(f"svm must be 'sklearn' or 'torch', not {svm!r}")
    rows = []
    for j in range(k):
        y = labels[kept[j], j]
        x = predictions[j]
        rows.append(dict(attribute=names[j], entropy_bits=conditional_entropy(joint_of(x, y)),
                         svm_accuracy=float((x == y).mean()), positive_rate=float(y.mean()), kept=len(y)))
    table = pd.DataFrame(rows)
    return float(2 ** table.entropy_bits.sum()), table
