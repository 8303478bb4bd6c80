"""StyleGAN2 path length regularization: ||J_w^T y|| with y ~ N(0, I) / sqrt(H W), pulled toward its running mean."""

from __future__ import annotations

import math

import torch


def path_length_penalty(
    images: torch.Tensor,               # [N, C, H, W], computed from ws with the graph kept
    ws: torch.Tensor,                   # [N, num_ws, w_dim], part of the graph of `images`
    pl_mean: torch.Tensor,              # [] running mean of the path lengths
    decay: float = 0.01,                # pl_mean <- lerp(pl_mean, mean length, decay)
    noise: torch.Tensor | None = None,  # [N, C, H, W] image-space directions y; default N(0, 1) / sqrt(H W)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(penalty [N] = (length - new_mean)^2, lengths [N], new_mean []) as NVIDIA's loss.py.

    length = sqrt(mean over ws of ||d(images . y) / dw||^2); the penalty keeps its graph (create_graph)
    so it can be backpropagated; the returned mean is detached.
    """
    if noise is None:
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)  # [N, num_ws, w_dim]
    lengths = grads.square().sum(dim=2).mean(dim=1).sqrt()                           # [N]
    new_mean = pl_mean.lerp(lengths.mean(), decay)
    return (lengths - new_mean).square(), lengths, new_mean.detach()
