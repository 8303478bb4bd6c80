"""Improved precision and recall (Kynkaanniemi et al. 2019): k-nearest-neighbour balls around feature vectors,
distances in row x column blocks so that memory stays bounded by one block, never N x M (the block helpers also
serve formulas.density_coverage)."""

from __future__ import annotations

import torch

from stylegan_core.errors import InputError

from stylegan_metrics.formulas.arrays import check_count, check_same_width, torch_matrix
from stylegan_metrics.precision import precision_context


def nth_smallest_distances(
    points: torch.Tensor,       # [N, D]
    others: torch.Tensor,       # [M, D]
    n: int,                     # 1: the nearest, 2: the second nearest, ... (n <= M)
    row_batch_size: int,
    col_batch_size: int,
) -> torch.Tensor:              # [N]
    """Each point's n-th smallest distance to the rows of `others`. Per row block of points, only the n smallest
    distances seen so far are kept while the column blocks of `others` pass."""
    found = []
    for rows in points.split(row_batch_size):
        best = None  # [r, <= n] smallest distances so far, ascending
        for cols in others.split(col_batch_size):
            dist = torch.cdist(rows, cols)  # [r, c]
            nearest = dist.topk(min(n, dist.shape[1]), dim=1, largest=False).values
            del dist
            merged = nearest if best is None else torch.cat([best, nearest], dim=1)
            best = merged.topk(min(n, merged.shape[1]), dim=1, largest=False).values
        found.append(best[:, n - 1])
    return torch.cat(found)


def knn_radii(
    manifold: torch.Tensor,     # [N, D]
    k: int,                     # neighbourhood size
    row_batch_size: int,
    col_batch_size: int,
) -> torch.Tensor:              # [N]
    """Each point's distance to its k-th nearest neighbour other than itself: the (k+1)-th smallest distance
    of its row, the row including the (zero) distance to itself."""
    return nth_smallest_distances(manifold, manifold, k + 1, row_batch_size, col_batch_size)


def manifold_coverage(
    manifold: torch.Tensor,     # [N, D] points whose k-NN balls make the manifold
    probes: torch.Tensor,       # [M, D]
    k: int,
    row_batch_size: int,
    col_batch_size: int,
) -> float:
    """The fraction of probes at a distance <= the k-NN radius of at least one manifold point. Once every probe
    of a row block is inside, the remaining column blocks are skipped (they cannot change the answer); every
    distance computed is computed on whole blocks, so a probe's verdict never depends on the others'."""
    radii = knn_radii(manifold, k, row_batch_size, col_batch_size)  # [N]
    covered = 0
    for rows in probes.split(row_batch_size):
        inside = torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)  # [r]
        for cols, col_radii in zip(manifold.split(col_batch_size), radii.split(col_batch_size)):
            inside |= (torch.cdist(rows, cols) <= col_radii).any(dim=1)  # [r, c] -> [r]
            if bool(inside.all()):
                break
        covered += int(inside.sum())
    return covered / probes.shape[0]


def knn_features(
    real,                       # [N, D] numpy or torch, any device
    gen,                        # [M, D]
    *,
    k: int,                     # checked already
    device: torch.device | str | None,  # None: the device of `real` when it is a tensor, else the CPU
    min_gen: int | None = None,  # generated rows needed (None: k + 1, a generated manifold)
    gen_why: str = "",          # why min_gen of them
) -> tuple[torch.Tensor, torch.Tensor, torch.device]:
    """(real [N, D], gen [M, D], device): float32 tensors on one device, checked (finite, one width, real at least
    k + 1 rows, each real point's k neighbours besides itself)."""
    if device is None:
        device = real.device if isinstance(real, torch.Tensor) else torch.device("cpu")
    device = torch.device(device)
    why = f"each manifold point needs k={k} neighbours besides itself"
    real = torch_matrix("real features", real, min_rows=k + 1, why=why, device=device)
    gen = torch_matrix("generated features", gen, min_rows=k + 1 if min_gen is None else min_gen,
                       why=why if min_gen is None else gen_why, device=device)
    check_same_width(real.shape, gen.shape)
    check_distance_range(real, gen)
    return real, gen, device


def check_distance_range(real: torch.Tensor, gen: torch.Tensor, rows: int = 1024) -> None:
    """InputError when float32 distances between these features could overflow to Inf (every ball infinite or empty:
    a wrong number, silently): |x| <= m in D dimensions bounds every squared distance (and cdist's squared norms) by
    4 m^2 D, which must stay below float32's largest number (network features are far smaller)."""
    largest = max(float(part.abs().max()) for t in (real, gen) for part in t.split(rows))
    if 4 * largest ** 2 * real.shape[1] >= float(torch.finfo(torch.float32).max):
        raise InputError(f"features hold values up to {largest:.3g}; the distances between such {real.shape[1]}-wide "
                         f"features overflow float32 (not features of a network)")


def precision_recall_from_arrays(
    real,                               # [N, D] features of real images (numpy or torch, any device)
    gen,                                # [M, D] features of generated images
    *,
    k: int = 3,                         # neighbourhood size: a ball reaches a point's k-th nearest neighbour
    row_batch_size: int = 10_000,       # rows per distance block
    col_batch_size: int = 10_000,       # columns per distance block
    device: torch.device | str | None = None,  # None: the device of `real` when it is a tensor, else the CPU
) -> tuple[float, float]:
    """(precision, recall): precision = fraction of generated features inside the real manifold (the union of
    balls around real features, each reaching its k-th nearest real neighbour), recall = fraction of real
    features inside the generated manifold. Euclidean distances in float32 (TF32 off); peak memory is a
    few row_batch_size x col_batch_size blocks."""
    k = check_count("k", k, 1)
    row_batch_size = check_count("row_batch_size", row_batch_size, 1)
    col_batch_size = check_count("col_batch_size", col_batch_size, 1)
    real, gen, device = knn_features(real, gen, k=k, device=device)
    with torch.inference_mode(), precision_context("fp32", device.type):
        precision = manifold_coverage(real, gen, k, row_batch_size, col_batch_size)
        recall = manifold_coverage(gen, real, k, row_batch_size, col_batch_size)
    return precision, recall
