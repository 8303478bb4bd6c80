"""Density and coverage (Naeem et al. 2020): generated features counted in the k-NN balls of real features, with
the block distances of formulas.precision_recall (memory bounded by one block, never N x M)."""

from __future__ import annotations

import torch

from stylegan_metrics.formulas.arrays import check_count
from stylegan_metrics.formulas.precision_recall import knn_features, knn_radii
from stylegan_metrics.precision import precision_context


def balls_and_nearest(
    centres: torch.Tensor,      # [N, D] real features
    probes: torch.Tensor,       # [M, D] generated features
    radii: torch.Tensor,        # [N] one radius per centre
    row_batch_size: int,        # centres per distance block
    col_batch_size: int,        # probes per distance block
) -> tuple[int, torch.Tensor]:
    """One pass over the centre x probe distances, block by block: the number of (probe, centre) pairs whose
    distance is strictly below the centre's radius (a probe on a boundary is outside), and each centre's distance
    to its nearest probe [N]."""
    inside, nearest = 0, []
    for rows, row_radii in zip(centres.split(row_batch_size), radii.split(row_batch_size)):
        best = None                                                       # [r] nearest probe so far
        for cols in probes.split(col_batch_size):
            dist = torch.cdist(rows, cols)                                # [r, c]
            inside += int((dist < row_radii[:, None]).sum())
            closest = dist.min(dim=1).values
            best = closest if best is None else torch.minimum(best, closest)
        nearest.append(best)
    return inside, torch.cat(nearest)


def density_coverage_from_arrays(
    real,                               # [N, D] features of real images (numpy or torch, any device)
    gen,                                # [M, D] features of generated images
    *,
    k: int = 5,                         # neighbourhood size: a ball reaches a real point's k-th nearest real neighbour
    row_batch_size: int = 10_000,       # rows per distance block
    col_batch_size: int = 10_000,       # columns per distance block
    device: torch.device | str | None = None,  # None: the device of `real` when it is a tensor, else the CPU
) -> tuple[float, float]:
    """(density, coverage), as prdc's `compute_prdc`: around each real feature a ball reaching its k-th nearest
    real neighbour (itself not counted). density = (number of (generated, real ball) pairs with the generated
    feature inside) / (k M); coverage = fraction of real features whose nearest generated feature is inside
    their own ball. Inside means a distance strictly below the radius. Euclidean distances in float32 (TF32 off);
    peak memory is a few row_batch_size x col_batch_size blocks."""
    k = check_count("k", k, 1)
    row_batch_size = check_count("row_batch_size", row_batch_size, 1)
    col_batch_size = check_count("col_batch_size", col_batch_size, 1)
    real, gen, device = knn_features(real, gen, k=k, device=device, min_gen=1,
                                     gen_why="density and coverage look at generated samples")
    with torch.inference_mode(), precision_context("fp32", device.type):
        radii = knn_radii(real, k, row_batch_size, col_batch_size)                        # [N]
        inside, nearest = balls_and_nearest(real, gen, radii, row_batch_size, col_batch_size)  # each distance once
        covered = int((nearest < radii).sum())
    return inside / (k * gen.shape[0]), covered / real.shape[0]
