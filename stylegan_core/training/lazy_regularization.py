"""One StyleGAN2 training step as NVIDIA's phases (Gmain, Gpl, Dmain, Dr1), each its own Adam step, with lazy R1
and path length regularization; and the Adam settings that compensate for the lazy intervals."""

from __future__ import annotations

import torch
from torch import nn

from stylegan_core.networks.generator import Generator
from stylegan_core.training.losses import discriminator_loss, generator_loss, r1_norms
from stylegan_core.training.options import TrainingOptions
from stylegan_core.training.path_length import path_length_penalty
from stylegan_core.training.updates import Terms, discriminator_terms, generator_terms, optimizer_step, sample_ws


def make_optimizers(G: nn.Module, D: nn.Module, options: TrainingOptions) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and D. For stylegan2's lazy regularization every k steps: lr * c and betas ** c, c = k / (k + 1)."""

    def adam(module: nn.Module, interval: int) -> torch.optim.Adam:
        c = interval / (interval + 1) if options.arch == "stylegan2" else 1.0
        betas = tuple(b ** c for b in options.betas) if c != 1 else tuple(options.betas)
        return torch.optim.Adam(module.parameters(), lr=options.lr * c, betas=betas)

    return adam(G, options.pl_interval), adam(D, options.r1_interval)


def stylegan2_phases(
    G: Generator,                      # Trained generator (its w_avg tracks the batch means of w).
    D: nn.Module,                      # Residual discriminator.
    G_opt: torch.optim.Optimizer,      # Adam of G (from make_optimizers).
    D_opt: torch.optim.Optimizer,      # Adam of D (from make_optimizers).
    real: torch.Tensor,                # [N, C, H, W] real images in [-1, 1], this process's share of the batch.
    pl_mean: torch.Tensor,             # [] running mean path length.
    *,
    step: int,                         # Index of this step in the run (lazy phases run when step % interval == 0).
    r1_gamma: float,                   # R1 weight gamma.
    r1_interval: int,                  # Dr1 every this many steps, scaled by the interval.
    style_mixing: float,               # Probability of a mixed-style batch.
    pl_weight: float,                  # Path length regularization weight (0 = off).
    pl_interval: int,                  # Gpl every this many steps, scaled by the interval.
    pl_decay: float,                   # Decay of the running mean path length.
    pl_batch_shrink: int,              # The path length batch is N // pl_batch_shrink.
) -> tuple[Terms, torch.Tensor]:
    """Gmain, Gpl (every pl_interval steps), Dmain, Dr1 (every r1_interval steps), each its own Adam step;
    the lazy penalties are scaled by their interval. Returns (per-sample statistics, new pl_mean)."""
    batch, device = real.shape[0], real.device

    # Gmain: softplus(-D(G(z))) with style mixing; w_avg tracks the batch mean of w.
    G.requires_grad_(True)
    D.requires_grad_(False)
    fake_logits = D(G.synthesis(sample_ws(G, batch, style_mixing, device, update_w_avg=True)))  # [N, 1]
    optimizer_step(G_opt, generator_loss(fake_logits))
    terms = generator_terms(fake_logits)

    # Gpl: path length penalty on a shrunk batch, pulled toward its running mean.
    if pl_weight > 0 and step % pl_interval == 0:
        ws = sample_ws(G, max(1, batch // pl_batch_shrink), style_mixing, device)  # [n, num_ws, w_dim]
        penalty, _lengths, pl_mean = path_length_penalty(G.synthesis(ws), ws, pl_mean, pl_decay)  # [n], [n], []
        optimizer_step(G_opt, penalty.mean() * (pl_weight * pl_interval))
        terms += [("Loss/pl_penalty", penalty.detach()), ("Loss/G/reg", penalty.detach() * pl_weight)]

    # Dmain: softplus(D(G(z))) + softplus(-D(x)).
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad():
        fake = G.synthesis(sample_ws(G, batch, style_mixing, device))
    real_logits = D(real)  # [N, 1]
    fake_logits = D(fake)  # [N, 1]
    optimizer_step(D_opt, discriminator_loss(real_logits, fake_logits))
    terms += discriminator_terms(real_logits, fake_logits)

    # Dr1: gamma / 2 * ||grad_x D(x)||^2 on reals.
    if r1_gamma > 0 and step % r1_interval == 0:
        real_in = real.detach().requires_grad_(True)
        norms = r1_norms(real_in, D(real_in))  # [N]
        optimizer_step(D_opt, norms.mean() * (r1_gamma / 2) * r1_interval)
        terms += [("Loss/r1_penalty", norms.detach()), ("Loss/D/reg", norms.detach() * (r1_gamma / 2))]
    return terms, pl_mean
