"""LPIPS v0.1 (VGG16): torchvision's VGG16 trunk from our weights resolution, the lpips package's linear heads."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import nn

from stylegan_core.errors import InputError

from stylegan_metrics.networks.weights import WeightsError, load_state_dict, resolve_weights, sha256_of

TAPS = (3, 8, 15, 22, 29)                   # vgg16.features indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)             # lpips' ScalingLayer: (x - shift) / scale, x in [-1, 1]
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10                                  # lpips' normalize_tensor: x / (|x| + eps) over channels


def lpips_heads_file() -> Path:
    """The lpips package's shipped v0.1 VGG heads (`lin{k}.model.1.weight`), found without importing lpips."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("lpips-vgg16 needs the lpips package for its linear heads: pip install lpips")
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "vgg.pth"


def vgg16_trunk(state: dict[str, torch.Tensor]) -> nn.Sequential:
    """torchvision's vgg16().features[:30] holding `state`'s 'features.*' tensors (no random init)."""
    import torchvision

    with torch.device("meta"):
        trunk = torchvision.models.vgg16().features[:TAPS[-1] + 1]
    wanted = {k for k in trunk.state_dict()}
    given = {k.removeprefix("features."): v for k, v in state.items() if k.removeprefix("features.") in wanted}
    missing = sorted(wanted - set(given))
    if missing:
        raise InputError(f"VGG16 weights do not match torchvision's vgg16 (missing {len(missing)} tensors, "
                         f"e.g. features.{missing[0]})")
    trunk.load_state_dict(given, assign=True)
    return trunk


class LPIPSDistance(nn.Module):
    """d(img0, img1) -> [N]: LPIPS v0.1 on images in [-1, 1], both inputs through the trunk in one batch."""

    def __init__(
        self,
        trunk_state: dict[str, torch.Tensor],   # torchvision vgg16 state dict ('features.*' used)
        heads_state: dict[str, torch.Tensor],   # lpips v0.1 vgg.pth: 'lin{k}.model.1.weight' [1, C_k, 1, 1]
    ):
        super().__init__()
        self.trunk = vgg16_trunk(trunk_state)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        try:
            for k, lin in enumerate(self.lins):
                lin.weight.data.copy_(heads_state[f"lin{k}.model.1.weight"])
        except (KeyError, RuntimeError) as e:
            raise InputError(f"not lpips v0.1 VGG heads ({type(e).__name__}: {e})") from None
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:  # [N, 3, H, W] -> five [N, C_k, H_k, W_k]
        out = []
        x = ((x - self.shift) / self.scale).contiguous(memory_format=torch.channels_last)
        for i, layer in enumerate(self.trunk):
            x = layer(x)
            if i in TAPS:
                out.append(x)
        return out

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] x2 -> [N]
        if min(img0.shape[2:]) < 16:
            raise InputError(f"LPIPS-VGG16 needs images of at least 16x16 pixels after cropping, got "
                             f"{img0.shape[2]}x{img0.shape[3]} (use a larger generator or --no-crop)")
        n = img0.shape[0]
        total = torch.zeros(n, device=img0.device, dtype=img0.dtype)
        for feats, lin in zip(self.features(torch.cat([img0, img1])), self.lins):
            unit = feats / (feats.square().sum(dim=1, keepdim=True).sqrt() + EPS)
            total = total + lin((unit[:n] - unit[n:]).square()).mean(dim=(1, 2, 3))
        return total


def build_lpips_vgg16(weights: str | os.PathLike | None, device: torch.device) -> tuple[nn.Module, str]:
    path = resolve_weights("vgg16", weights)
    heads = lpips_heads_file()
    try:
        heads_state = load_state_dict(heads)
    except WeightsError as e:
        raise InputError(f"the lpips package's VGG heads could not be read: {e}") from None
    module = LPIPSDistance(load_state_dict(path), heads_state).to(device, memory_format=torch.channels_last)
    return module, f"lpips-vgg16:{sha256_of(path)[:16]}"
