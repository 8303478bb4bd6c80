"""The Generator: mapping + synthesis behind NVIDIA's generator protocol, and style mixing."""

from __future__ import annotations

import torch
from torch import nn

from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork, num_ws_for
from .synthesis2 import SkipSynthesisNetwork

# arch -> (synthesis class, default channel_base, w_avg beta).
ARCHITECTURES: dict[str, tuple[type[nn.Module], int, float]] = {
    "stylegan": (SynthesisNetwork, 16384, 0.995),
    "stylegan2": (SkipSynthesisNetwork, 32768, 0.998),
}


class Generator(nn.Module):
    """z [N, z_dim] -> images [N, img_channels, R, R] in nominal range [-1, 1]."""

    def __init__(
        self,
        z_dim: int = 512,                 # Input latent width.
        w_dim: int = 512,                 # Intermediate latent width.
        img_resolution: int = 1024,       # Output side, a power of two >= 4.
        img_channels: int = 3,            # Output channels.
        mapping_layers: int = 8,          # Dense layers in the mapping network.
        channel_base: int | None = None,  # Channels at resolution r: min(channel_base // r, channel_max); None = arch default.
        channel_max: int = 512,           # Upper bound on channels.
        arch: str = "stylegan",           # 'stylegan' (AdaIN, the 2019 paper) or 'stylegan2'.
        conv_clamp: float | None = None,  # stylegan2 only: clamp conv outputs to +-X (NVIDIA's conv_clamp); None = off.
    ):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {arch!r}; available: {', '.join(sorted(ARCHITECTURES))}")
        synthesis_cls, default_base, w_avg_beta = ARCHITECTURES[arch]
        channel_base = default_base if channel_base is None else channel_base
        self.config = dict(
            z_dim=z_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            mapping_layers=mapping_layers, channel_base=channel_base, channel_max=channel_max, arch=arch,
        )
        clamp = {} if conv_clamp is None else {"conv_clamp": conv_clamp}  # stylegan configs stay as they were
        if clamp and arch != "stylegan2":
            raise ValueError("conv_clamp applies to arch='stylegan2' only")
        self.config.update(clamp)
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.c_dim = 0
        self.arch = arch
        self.synthesis = synthesis_cls(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            channel_base=channel_base, channel_max=channel_max, **clamp,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, num_layers=mapping_layers, w_avg_beta=w_avg_beta)

    def forward(
        self,
        z: torch.Tensor,                       # [N, z_dim]
        c: torch.Tensor | None = None,         # Unconditional: None.
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
    ) -> torch.Tensor:                         # [N, img_channels, R, R]
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)


def mix_styles(ws: torch.Tensor, ws_other: torch.Tensor, crossover: int | torch.Tensor) -> torch.Tensor:
    """Style mixing: layers [0, crossover) from `ws`, layers [crossover, num_ws) from `ws_other`.

    `crossover` is one int for the batch or a tensor [N] of per-sample crossover points.
    """
    if ws.shape != ws_other.shape:
        raise ValueError(f"ws shapes differ: {list(ws.shape)} vs {list(ws_other.shape)}")
    layer = torch.arange(ws.shape[1], device=ws.device).view(1, -1, 1)  # [1, num_ws, 1]
    cut = torch.as_tensor(crossover, device=ws.device).reshape(-1, 1, 1)
    return torch.where(layer < cut, ws, ws_other)


__all__ = ["ARCHITECTURES", "Generator", "mix_styles", "num_ws_for"]
