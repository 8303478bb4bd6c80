"""Benchmark the SVM stage of the linear separability metric: sklearn LinearSVC (per attribute) vs the batched
torch solver `stylegan_metrics.formulas.svm.fit_linear_svms` (all attributes at once), on synthetic latents and labels.

Run (from the repository root):
    python benchmarks/bench_ls.py                                  # K=40 attributes, N=100,000 points, D=512
    python benchmarks/bench_ls.py --num 20000                      # smaller
    python benchmarks/bench_ls.py --sklearn-attributes 4           # time sklearn on 4 attributes, extrapolate to K
    python benchmarks/bench_ls.py --dtype float64 --device cuda    # other torch settings

Latents are N(0, I); attribute k's score is a random unit projection plus a nonlinear term plus noise, its label
the score's sign, and the half of the points with the largest |score| is kept (as the metric keeps the most
confident classifier outputs). Prints a markdown table: time, speed ratio, per-attribute prediction agreement
with sklearn on the kept points, and the relative difference of the score 2 ** sum_k H(Y_k | X_k).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from stylegan_metrics.formulas.svm import fit_linear_svms, predict_linear_svms, svm_objective  # noqa: E402


def conditional_entropy_bits(prediction: np.ndarray, label: np.ndarray) -> float:
    """H(Y|X) in bits from the 2x2 joint of (prediction X, label Y) booleans; empty cells contribute 0."""
    joint = np.zeros((2, 2))
    np.add.at(joint, (prediction.astype(int), label.astype(int)), 1)
    joint /= joint.sum()
    px = joint.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log2(px / joint), 0.0)
    return float(terms.sum())


def make_problem(num: int, dims: int, attributes: int, keep: float, seed: int, nonlinear: float = 0.5,
                 noise: float = 0.5):
    """Latents [N, D] float32, labels [N, K] bool and kept indices [K, M] (most confident |score| per attribute)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num, dims), dtype=np.float32)
    proj = rng.standard_normal((dims, attributes)).astype(np.float32)
    proj /= np.linalg.norm(proj, axis=0)
    other = rng.standard_normal((dims, attributes)).astype(np.float32)
    other /= np.linalg.norm(other, axis=0)
    offset = rng.uniform(-0.5, 0.5, attributes).astype(np.float32)
    score = (x @ proj + offset + nonlinear * np.sin(2 * (x @ other))
             + noise * rng.standard_normal((num, attributes), dtype=np.float32))
    labels = score > 0
    num_keep = int(round(num * keep))
    kept = np.argsort(-np.abs(score), axis=0, kind="stable")[:num_keep].T
    return x, labels, kept


def run_sklearn(x: np.ndarray, labels: np.ndarray, kept: np.ndarray, attributes: list[int]):
    """Predictions [len(attributes), M] on the kept points and the coefficients, one LinearSVC per attribute."""
    preds, W, b = [], [], []
    for k in attributes:
        idx = kept[k]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm = LinearSVC(random_state=0).fit(x[idx], labels[idx, k])
        preds.append(svm.predict(x[idx]).astype(bool))
        W.append(svm.coef_[0])
        b.append(svm.intercept_[0])
    return np.array(preds), np.array(W), np.array(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=100_000, help="points N (default 100000)")
    parser.add_argument("--dims", type=int, default=512, help="latent dimension D (default 512)")
    parser.add_argument("--attributes", type=int, default=40, help="attributes K (default 40)")
    parser.add_argument("--keep", type=float, default=0.5, help="fraction kept per attribute (default 0.5)")
    parser.add_argument("--nonlinear", type=float, default=0.5, help="amplitude of the nonlinear label term")
    parser.add_argument("--noise", type=float, default=0.5, help="std of the label noise")
    parser.add_argument("--sklearn-attributes", type=int, default=None,
                        help="time sklearn on the first this many attributes only and extrapolate linearly to K")
    parser.add_argument("--dtype", choices=["both", "float32", "float64"], default="both",
                        help="torch product dtype(s) to time (float32 = the default for float32 latents)")
    parser.add_argument("--device", default=None, help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {platform.machine()}, os.cpu_count()={os.cpu_count()}, torch {torch.__version__} "
          f"(threads {torch.get_num_threads()}), sklearn {sklearn.__version__} (liblinear, 1 thread), "
          f"numpy {np.__version__}, python {platform.python_version()}")
    x, labels, kept = make_problem(args.num, args.dims, args.attributes, args.keep, args.seed,
                                   args.nonlinear, args.noise)
    K = args.attributes
    n_sk = K if args.sklearn_attributes is None else min(args.sklearn_attributes, K)
    lab_kept = np.take_along_axis(labels, kept.T, axis=0).T  # [K, M]
    print(f"problem: N={args.num}, D={args.dims}, K={K}, kept per attribute={kept.shape[1]}, "
          f"positive rate on kept points {lab_kept.mean():.3f}")

    t0 = time.perf_counter()
    sk_pred, sk_W, sk_b = run_sklearn(x, labels, kept, list(range(n_sk)))
    t_sk_measured = time.perf_counter() - t0
    t_sk = t_sk_measured * K / n_sk
    h_sk = [conditional_entropy_bits(sk_pred[j], lab_kept[j]) for j in range(n_sk)]
    score_sk = 2 ** sum(h_sk)

    mask = np.zeros(labels.shape, bool)
    mask[kept.T, np.arange(K)] = True
    X, L, Msk = torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(mask)
    sub = slice(0, n_sk)
    f_sk = svm_objective(X, L[:, sub], Msk[:, sub], torch.from_numpy(sk_W), torch.from_numpy(sk_b))
    rows, notes = [], []
    for name in (["float32", "float64"] if args.dtype == "both" else [args.dtype]):
        t0 = time.perf_counter()
        W, b = fit_linear_svms(X, L, Msk, device=args.device, dtype=getattr(torch, name))
        pred_all = predict_linear_svms(X, W, b).numpy()
        t_torch = time.perf_counter() - t0
        ours_pred = np.take_along_axis(pred_all, kept.T, axis=0).T
        agree = (ours_pred[:n_sk] == sk_pred).mean(1)
        score = 2 ** sum(conditional_entropy_bits(ours_pred[j], lab_kept[j]) for j in range(n_sk))
        rel_f = ((svm_objective(X, L[:, sub], Msk[:, sub], W[sub], b[sub]) - f_sk) / f_sk).numpy()
        rows.append(f"| torch fit_linear_svms ({name} products, {args.device or 'cpu'}) | {t_torch:.1f} | "
                    f"{t_sk / t_torch:.1f}x | {agree.min():.5f} | {agree.mean():.5f} | {score:.6g} | "
                    f"{abs(score / score_sk - 1):.2e} |")
        notes.append(f"{name}: objective (ours - sklearn) / sklearn over {n_sk} attributes: "
                     f"min {rel_f.min():.2e}, max {rel_f.max():.2e}")

    if n_sk < K:
        print(f"NOTE: sklearn timed on {n_sk} of {K} attributes ({t_sk_measured:.1f} s) and EXTRAPOLATED linearly "
              f"to {K}; agreement and scores compare those {n_sk} attributes only.")
    sk_label = "sklearn LinearSVC" + (f" (extrapolated from {n_sk} attributes)" if n_sk < K else "")
    print()
    print("| back end | time s | speed ratio | agreement min | agreement mean | score 2**sum(H) | score rel. diff |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {sk_label} | {t_sk:.1f} | 1.0x | - | - | {score_sk:.6g} | - |")
    print("\n".join(rows))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
