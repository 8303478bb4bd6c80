"""The mapping network z -> w, its running average w_avg and the truncation trick."""

from __future__ import annotations

import torch
from torch import nn

from stylegan_core.networks.layers import EqualizedLinear, PixelNorm, leaky_relu


class MappingNetwork(nn.Module):
    """Pixel-normalized z through `num_layers` equalized-lr dense layers, broadcast to `num_ws` copies.

    A conditional network (c_dim > 0) embeds the label c linearly to w_dim, pixel-normalizes the
    embedding and feeds [norm(z), norm(embed(c))] to the dense layers, as NVIDIA's MappingNetwork.
    """

    def __init__(
        self,
        z_dim: int,                 # Input latent width.
        w_dim: int,                 # Intermediate latent width (also the hidden width).
        num_ws: int,                # Copies of w handed to the synthesis network.
        num_layers: int = 8,        # Dense layers.
        lr_mul: float = 0.01,       # Learning-rate multiplier of every dense layer.
        w_avg_beta: float = 0.995,  # Decay of the running average of w, tracked during training.
        c_dim: int = 0,             # Conditioning label width; 0 = unconditional.
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError("mapping network needs at least one layer")
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.c_dim = c_dim
        self.w_avg_beta = w_avg_beta
        self.norm = PixelNorm()
        if c_dim > 0:
            self.embed = EqualizedLinear(c_dim, w_dim, gain=1.0)  # linear, lr multiplier 1
        dims = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor,                         # [N, z_dim]
        c: torch.Tensor | None = None,           # [N, c_dim] labels (e.g. one-hot); unconditional models take None.
        truncation_psi: float = 1.0,             # 1 = no truncation, 0 = every w becomes w_avg.
        truncation_cutoff: int | None = None,    # Truncate only the first this many ws (None = all).
        update_w_avg: bool = False,              # Move w_avg toward this batch's mean w (training).
    ) -> torch.Tensor:                           # [N, num_ws, w_dim]
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        x = self.norm(z)
        if self.c_dim > 0:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                got = "None" if c is None else list(c.shape)
                raise ValueError(f"this generator is conditional: c must have shape [N, {self.c_dim}], got {got}")
            x = torch.cat([x, self.norm(self.embed(c.float()))], dim=1)  # [N, z_dim + w_dim]
        elif c is not None and c.numel() > 0:
            raise ValueError("this generator is unconditional: pass c=None")
        for layer in self.layers:
            x = leaky_relu(layer(x))
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws
