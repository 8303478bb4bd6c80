"""LPIPS with the lpips package's VGG16 linear heads and a torchvision VGG16 trunk from our weights resolution."""

from __future__ import annotations

import os
import re
import warnings

import torch
from torch import nn

from stylegan_core.errors import InputError

from .weights import load_state_dict, resolve_weights, sha256_of

# torchvision's vgg16.features index -> the lpips package's slice holding it
_SLICES = [(1, range(0, 4)), (2, range(4, 9)), (3, range(9, 16)), (4, range(16, 23)), (5, range(23, 30))]
SLICE_OF_LAYER = {i: s for s, layers in _SLICES for i in layers}


def trunk_state_from_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """'features.{i}.weight' of torchvision's VGG16 -> 'slice{k}.{i}.weight' of lpips.pretrained_networks.vgg16."""
    out = {}
    for key, value in state.items():
        m = re.fullmatch(r"features\.(\d+)\.(weight|bias)", key)
        if m and int(m.group(1)) in SLICE_OF_LAYER:
            out[f"slice{SLICE_OF_LAYER[int(m.group(1))]}.{m.group(1)}.{m.group(2)}"] = value
    return out


class LPIPSDistance(nn.Module):
    """d(img0, img1) -> [N]: LPIPS v0.1 on images in [-1, 1], both inputs through the trunk in one batch."""

    def __init__(self, trunk_state: dict[str, torch.Tensor]):
        super().__init__()
        import lpips

        with warnings.catch_warnings():  # torchvision deprecates lpips's `pretrained=False` spelling
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(net="vgg", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        missing, unexpected = self.model.net.load_state_dict(trunk_state_from_torchvision(trunk_state), strict=False)
        if missing or unexpected:
            raise InputError(f"VGG16 weights do not match torchvision's vgg16 (missing {len(missing)} tensors, "
                             f"e.g. {(missing or unexpected)[0]})")
        self.requires_grad_(False).eval()
        self._normalize = lpips.normalize_tensor

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        if min(img0.shape[2:]) < 16:
            raise InputError(f"LPIPS-VGG16 needs images of at least 16x16 pixels after cropping, got "
                             f"{img0.shape[2]}x{img0.shape[3]} (use a larger generator or --no-crop)")
        n = img0.shape[0]
        outs = self.model.net(self.model.scaling_layer(torch.cat([img0, img1])))
        total = torch.zeros(n, device=img0.device, dtype=img0.dtype)
        for feats, lin in zip(outs, self.model.lins):
            diff = (self._normalize(feats[:n]) - self._normalize(feats[n:])).square()
            total = total + lin(diff).mean(dim=(1, 2, 3))
        return total


def build_lpips_vgg16(weights: str | os.PathLike | None, device: torch.device) -> tuple[nn.Module, str]:
    path = resolve_weights("vgg16", weights)
    return LPIPSDistance(load_state_dict(path)).to(device), f"lpips-vgg16:{sha256_of(path)[:16]}"
