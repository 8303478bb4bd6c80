"""The Generator: mapping + synthesis behind NVIDIA's generator protocol, and style mixing."""

from __future__ import annotations

import torch
from torch import nn

from stylegan_core.networks.mapping import MappingNetwork
from stylegan_core.networks.synthesis import SynthesisNetwork, num_ws_for
from stylegan_core.networks.synthesis2 import SkipSynthesisNetwork
from stylegan_core.networks.synthesis3 import AliasFreeSynthesisNetwork

# Trainable arch -> (synthesis class, default channel_base, w_avg beta).
ARCHITECTURES: dict[str, tuple[type[nn.Module], int, float]] = {
    "stylegan": (SynthesisNetwork, 16384, 0.995),
    "stylegan2": (SkipSynthesisNetwork, 32768, 0.998),
}
# Inference-only arch (StyleGAN3 configs T and R) -> (synthesis class, default channel_base, w_avg beta,
# defaults of the synthesis network that set the config apart).
STYLEGAN3_ARCHITECTURES: dict[str, tuple[type[nn.Module], int, float, dict]] = {
    "stylegan3-t": (AliasFreeSynthesisNetwork, 32768, 0.998, dict(conv_kernel=3, use_radial_filters=False)),
    "stylegan3-r": (AliasFreeSynthesisNetwork, 65536, 0.998, dict(conv_kernel=1, use_radial_filters=True)),
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
        arch: str = "stylegan",           # 'stylegan' (AdaIN, the 2019 paper), 'stylegan2', or 'stylegan3-t' / 'stylegan3-r'
                                          # (alias-free, inference only: no training, no noise).
        conv_clamp: float | None = None,  # stylegan2 / 3: clamp conv outputs to +-X (NVIDIA's conv_clamp); None = off.
        c_dim: int = 0,                   # Conditioning label width (NVIDIA's label embedding in the mapping); 0 = none.
        synthesis_kwargs: dict | None = None,  # stylegan3 only: more AliasFreeSynthesisNetwork arguments (num_layers,
                                               # margin_size, first_cutoff, ...; conv_kernel / use_radial_filters
                                               # override the config's).
        progressive: bool = False,        # stylegan only: one ToRGB per resolution and a `synthesis.lod` buffer.
    ):
        super().__init__()
        if arch not in ARCHITECTURES and arch not in STYLEGAN3_ARCHITECTURES:
            known = sorted(ARCHITECTURES) + sorted(STYLEGAN3_ARCHITECTURES)
            raise ValueError(f"unknown arch {arch!r}; available: {', '.join(known)}")
        stylegan3 = arch in STYLEGAN3_ARCHITECTURES
        table = STYLEGAN3_ARCHITECTURES if stylegan3 else ARCHITECTURES
        synthesis_cls, default_base, w_avg_beta, *arch_kwargs = table[arch]
        channel_base = default_base if channel_base is None else channel_base
        self.config = dict(
            z_dim=z_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            mapping_layers=mapping_layers, channel_base=channel_base, channel_max=channel_max, arch=arch,
        )
        clamp = {} if conv_clamp is None else {"conv_clamp": conv_clamp}  # older configs stay as they were
        if clamp and arch == "stylegan":
            raise ValueError("conv_clamp applies to arch='stylegan2' and 'stylegan3-*' only")
        if synthesis_kwargs and not stylegan3:
            raise ValueError("synthesis_kwargs apply to arch='stylegan3-t' / 'stylegan3-r' only")
        self.config.update(clamp)
        if progressive:  # fixed-resolution configs stay as they were
            if arch != "stylegan":
                raise ValueError("progressive applies to arch='stylegan' only")
            self.config["progressive"] = True
        if c_dim:
            self.config["c_dim"] = c_dim
        if synthesis_kwargs:
            self.config["synthesis_kwargs"] = dict(synthesis_kwargs)
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.c_dim = c_dim
        self.arch = arch
        extra = {**arch_kwargs[0], "conv_clamp": conv_clamp, **(synthesis_kwargs or {})} if stylegan3 else clamp
        if progressive:
            extra = {"progressive": True}
        self.synthesis = synthesis_cls(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            channel_base=channel_base, channel_max=channel_max, **extra,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, num_layers=mapping_layers, w_avg_beta=w_avg_beta,
                                      c_dim=c_dim)

    def forward(
        self,
        z: torch.Tensor,                       # [N, z_dim]
        c: torch.Tensor | None = None,         # [N, c_dim] labels; unconditional: None.
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


__all__ = ["ARCHITECTURES", "STYLEGAN3_ARCHITECTURES", "Generator", "mix_styles", "num_ws_for"]
