"""One StyleGAN (2019) training step: a discriminator update (logistic loss, R1 folded in) then a generator
update (non-saturating loss), both with style-mixing regularization."""

from __future__ import annotations

import torch
from torch import nn

from stylegan_core.networks.generator import Generator
from stylegan_core.training.losses import discriminator_loss, generator_loss, r1_norms
from stylegan_core.training.updates import Terms, discriminator_terms, generator_terms, optimizer_step, sample_ws


def stylegan_step(
    G: Generator,                      # Trained generator (its w_avg tracks the batch means of w).
    D: nn.Module,                      # Discriminator.
    G_opt: torch.optim.Optimizer,      # Adam of G.
    D_opt: torch.optim.Optimizer,      # Adam of D.
    real: torch.Tensor,                # [N, C, H, W] real images in [-1, 1], this process's share of the batch.
    *,
    step: int,                         # Index of this step in the run (R1 runs when step % r1_interval == 0).
    r1_gamma: float,                   # R1 weight gamma: the penalty is gamma / 2 * ||grad D(x)||^2.
    r1_interval: int,                  # Lazy R1: every this many steps, scaled by the interval.
    style_mixing: float,               # Probability of a mixed-style batch.
) -> Terms:
    """D step then G step, each one Adam step; returns the per-sample loss statistics of both."""
    batch, device = real.shape[0], real.device

    # Discriminator: softplus(D(G(z))) + softplus(-D(x)) [+ R1 on reals, every r1_interval steps].
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad():
        fake = G.synthesis(sample_ws(G, batch, style_mixing, device))
    do_r1 = r1_gamma > 0 and step % r1_interval == 0
    real_in = real.detach().requires_grad_(do_r1)
    real_logits = D(real_in)    # [N, 1]
    fake_logits = D(fake)       # [N, 1]
    d_loss = discriminator_loss(real_logits, fake_logits)
    terms = discriminator_terms(real_logits, fake_logits)
    if do_r1:
        norms = r1_norms(real_in, real_logits)  # [N] ||grad_x D(x)||^2
        d_loss = d_loss + norms.mean() * (r1_gamma / 2) * r1_interval
        terms += [("Loss/r1_penalty", norms.detach()), ("Loss/D/reg", norms.detach() * (r1_gamma / 2))]
    optimizer_step(D_opt, d_loss)

    # Generator: softplus(-D(G(z))) with style mixing; w_avg tracks the batch mean of w.
    G.requires_grad_(True)
    D.requires_grad_(False)
    fake_logits = D(G.synthesis(sample_ws(G, batch, style_mixing, device, update_w_avg=True)))
    optimizer_step(G_opt, generator_loss(fake_logits))
    return terms + generator_terms(fake_logits)
