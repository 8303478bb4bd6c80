"""What every architecture's update step shares: style-mixed latents, an optimizer step averaged over
processes, the generator EMA, and the per-sample loss values that the tick statistics report."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core import ranks
from stylegan_core.networks.generator import Generator, mix_styles
from stylegan_core.training.options import TrainingOptions


def active_ws(G: Generator) -> int:
    """Style inputs the synthesis network uses: all, or at a progressive generator's lod those of the blocks up to
    R / 2^floor(lod) (NVIDIA's cur_layers = num_layers - 2 floor(lod))."""
    synthesis = G.synthesis
    if not getattr(synthesis, "progressive", False):
        return G.num_ws
    return G.num_ws - 2 * math.floor(float(synthesis.lod))


def sample_ws(G: Generator, batch: int, mixing_prob: float, device: torch.device, update_w_avg: bool = False) -> torch.Tensor:
    """Latents for one batch with style-mixing regularization: a second w from crossover ~ U{1..active-1}, where
    `active` = active_ws(G) (num_ws but for a progressive generator at a coarser level of detail)."""
    z = torch.randn(batch, G.z_dim, device=device)
    ws = G.mapping(z, None, update_w_avg=update_w_avg)  # [N, num_ws, w_dim]
    if mixing_prob > 0 and torch.rand(()) < mixing_prob:
        crossover = int(torch.randint(1, active_ws(G), ()))
        ws = mix_styles(ws, G.mapping(torch.randn_like(z), None), crossover)
    return ws


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Zero the gradients, backpropagate `loss`, average the gradients over the processes (if several), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    ranks.average_gradients(p for group in optimizer.param_groups for p in group["params"])
    optimizer.step()


def ema_beta(options: TrainingOptions, batch: int, images_seen: int) -> float:
    """0.5 ** (batch / half-life), half-life ema_kimg * 1000 images (optionally ramped up)."""
    half_life = options.ema_kimg * 1000
    if options.ema_rampup is not None:
        half_life = min(half_life, max(images_seen, batch) * options.ema_rampup)
    return 0.5 ** (batch / half_life)


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """G_ema <- beta * G_ema + (1 - beta) * G for parameters; buffers (w_avg, const noise, lod) copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


Terms = list[tuple[str, torch.Tensor]]  # (statistic name, per-sample values), reported as NVIDIA's training_stats


def generator_terms(fake_logits: torch.Tensor) -> Terms:
    """NVIDIA's per-sample statistics of a generator pass: scores, signs and softplus(-D(G(z))); each [N, 1]."""
    fake_logits = fake_logits.detach()
    return [("Loss/scores/fake", fake_logits), ("Loss/signs/fake", fake_logits.sign()),
            ("Loss/G/loss", F.softplus(-fake_logits))]


def discriminator_terms(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> Terms:
    """Per-sample statistics of a discriminator pass: scores and signs of both, and
    softplus(D(G(z_i))) + softplus(-D(x_i)), whose mean is the discriminator loss; each [N, 1]."""
    real_logits, fake_logits = real_logits.detach(), fake_logits.detach()
    return [("Loss/scores/fake", fake_logits), ("Loss/signs/fake", fake_logits.sign()),
            ("Loss/scores/real", real_logits), ("Loss/signs/real", real_logits.sign()),
            ("Loss/D/loss", F.softplus(fake_logits) + F.softplus(-real_logits))]
