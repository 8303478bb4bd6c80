"""StyleGAN2 training phases (NVIDIA's loss.py): main losses and lazy R1 / path length regularization, own Adam steps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from . import distributed
from .losses import discriminator_loss, generator_loss, r1_penalty
from .path_length import path_length_penalty

if TYPE_CHECKING:
    from .trainer import Trainer, TrainingOptions


def make_optimizers(G: nn.Module, D: nn.Module, options: "TrainingOptions") -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G and D. For stylegan2's lazy regularization every k steps: lr * c and betas ** c, c = k / (k + 1)."""

    def adam(module: nn.Module, interval: int) -> torch.optim.Adam:
        c = interval / (interval + 1) if options.arch == "stylegan2" else 1.0
        betas = tuple(b ** c for b in options.betas) if c != 1 else tuple(options.betas)
        return torch.optim.Adam(module.parameters(), lr=options.lr * c, betas=betas)

    return adam(G, options.pl_interval), adam(D, options.r1_interval)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Zero the gradients, backpropagate `loss`, average the gradients over the processes (if several), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(p for group in optimizer.param_groups for p in group["params"])
    optimizer.step()


def stylegan2_phases(trainer: "Trainer", real: torch.Tensor, sample_ws: Callable) -> tuple[dict, torch.Tensor]:
    """Gmain, Gpl (every pl_interval steps), Dmain, Dr1 (every r1_interval steps), each its own Adam step;
    the lazy penalties are scaled by their interval. real [N, C, H, W] in [-1, 1]. Returns (stats, new pl_mean)."""
    opt, G, D, device = trainer.options, trainer.G, trainer.D, trainer.device
    batch = real.shape[0]
    stats = {}
    pl_mean = trainer.pl_mean

    # Gmain: softplus(-D(G(z))) with style mixing; w_avg tracks the batch mean of w.
    G.requires_grad_(True)
    D.requires_grad_(False)
    g_loss = generator_loss(D(G.synthesis(sample_ws(G, batch, opt.style_mixing, device, update_w_avg=True))))
    stats["loss_G"] = float(g_loss.detach())
    optimizer_step(trainer.G_opt, g_loss)

    # Gpl: path length penalty on a shrunk batch, pulled toward its running mean.
    if opt.pl_weight > 0 and trainer.step % opt.pl_interval == 0:
        ws = sample_ws(G, max(1, batch // opt.pl_batch_shrink), opt.style_mixing, device)  # [n, num_ws, w_dim]
        penalty, lengths, pl_mean = path_length_penalty(G.synthesis(ws), ws, pl_mean, opt.pl_decay)
        stats["pl_length"] = float(lengths.detach().mean())
        optimizer_step(trainer.G_opt, penalty.mean() * (opt.pl_weight * opt.pl_interval))

    # Dmain: softplus(D(G(z))) + softplus(-D(x)).
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad():
        fake = G.synthesis(sample_ws(G, batch, opt.style_mixing, device))
    d_loss = discriminator_loss(D(real), D(fake))
    stats["loss_D"] = float(d_loss.detach())
    optimizer_step(trainer.D_opt, d_loss)

    # Dr1: gamma / 2 * ||grad_x D(x)||^2 on reals.
    if opt.r1_gamma > 0 and trainer.step % opt.r1_interval == 0:
        real_in = real.detach().requires_grad_(True)
        r1 = r1_penalty(real_in, D(real_in), opt.r1_gamma)
        stats["r1"] = float(r1.detach())
        optimizer_step(trainer.D_opt, r1 * opt.r1_interval)
    return stats, pl_mean
