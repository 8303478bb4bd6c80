"""GAN losses of the StyleGAN papers: non-saturating logistic loss and the R1 gradient penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic loss: mean softplus(-D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic loss: mean softplus(D(G(z))) + mean softplus(-D(x))."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_norms(real_images: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """||grad_x D(x)||^2 per real image [N] (the images must require grad); keeps the graph (create_graph)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)  # [N, C, H, W]
    return grad.square().flatten(1).sum(dim=1)


def r1_penalty(real_images: torch.Tensor, real_logits: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1: gamma / 2 * E[ ||grad_x D(x)||^2 ] on real images (which must require grad)."""
    return r1_norms(real_images, real_logits).mean() * (gamma / 2)
