"""The registry of feature networks (uint8 images -> features), by name or a user's own nn.Module."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from stylegan_core.errors import InputError

from .weights import load_state_dict, resolve_weights, sha256_of


def _inception_v3(weights: str | os.PathLike | None, device: torch.device) -> tuple[nn.Module, str]:
    """torch-fidelity's TF-compatible Inception-v3, pool_3 (2048-d), its TF-exact resize inside."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = resolve_weights("inception-v3", weights)
    load_state_dict(path)  # refuses a file with code in it before torch-fidelity unpickles it
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    return net.to(device), f"inception-v3:{sha256_of(path)[:16]}"


FEATURE_NETWORKS: dict[str, Callable[[str | os.PathLike | None, torch.device], tuple[nn.Module, str]]] = {
    "inception-v3": _inception_v3,
}


def module_fingerprint(module: nn.Module) -> str:
    """Class name and a hash of the state dict: what makes a user network's features what they are."""
    h = hashlib.sha256(type(module).__qualname__.encode())
    for key, value in module.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return f"{type(module).__qualname__}:{h.hexdigest()[:16]}"


@dataclass
class FeatureExtractor:
    """A feature network ready to run: uint8 [N, 3, H, W] -> float [N, D]."""

    name: str
    module: nn.Module
    fingerprint: str   # changes whenever the features would (weights, class)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = self.module(images)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.ndim != 2:
            raise InputError(f"feature network {self.name!r} returned shape {list(out.shape)}, expected [N, D]")
        return out.float()


def build_feature_extractor(features: str | nn.Module, *, weights: str | os.PathLike | None = None,
                            device: torch.device) -> FeatureExtractor:
    if isinstance(features, nn.Module):
        module = features.to(device).eval()
        return FeatureExtractor(type(features).__name__, module, module_fingerprint(module))
    if features not in FEATURE_NETWORKS:
        raise InputError(f"unknown feature network {features!r}; available: {', '.join(sorted(FEATURE_NETWORKS))}")
    module, fingerprint = FEATURE_NETWORKS[features](weights, device)
    return FeatureExtractor(features, module.eval(), fingerprint)
