"""The registry of networks: feature networks (uint8 images -> features) and similarity networks
(image pairs -> distances), by name or a user's own module or callable."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from stylegan_core.errors import InputError

from .lpips_vgg import build_lpips_vgg16
from .sampling import batch_invariant
from .toyfaces_nets import build_toyfaces_features, build_toyfaces_lpips
from .weights import resolve_weights, sha256_of


def _inception_v3(weights: str | os.PathLike | None, device: torch.device) -> tuple[nn.Module, str]:
    """torch-fidelity's TF-compatible Inception-v3, pool_3 (2048-d), its TF-exact resize inside."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = resolve_weights("inception-v3", weights)  # explicit files are checked to hold only tensors,
    # cached and downloaded ones match the upstream SHA-256, so torch-fidelity's own unpickling is safe
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    return net.to(device), f"inception-v3:{sha256_of(path)[:16]}"


FEATURE_NETWORKS: dict[str, Callable[[str | os.PathLike | None, torch.device], tuple[nn.Module, str]]] = {
    "inception-v3": _inception_v3,
    "toyfaces": build_toyfaces_features,
}


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


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
        out = batch_invariant(lambda x: _first(self.module(x)), images)
        if out.ndim != 2:
            raise InputError(f"feature network {self.name!r} returned shape {list(out.shape)}, expected [N, D]")
        return out.float()


def build_feature_extractor(features: str | nn.Module | FeatureExtractor, *, weights: str | os.PathLike | None = None,
                            device: torch.device) -> FeatureExtractor:
    """A registered name, a user's module (uint8 images -> [N, D]), or an extractor already built (returned as is)."""
    if isinstance(features, FeatureExtractor):
        return features
    if isinstance(features, nn.Module):
        module = features.to(device).eval()
        return FeatureExtractor(type(features).__name__, module, module_fingerprint(module))
    if features not in FEATURE_NETWORKS:
        raise InputError(f"unknown feature network {features!r}; available: {', '.join(sorted(FEATURE_NETWORKS))}")
    module, fingerprint = FEATURE_NETWORKS[features](weights, device)
    return FeatureExtractor(features, module.eval(), fingerprint)


SIMILARITY_NETWORKS: dict[str, Callable[[str | os.PathLike | None, torch.device], tuple[nn.Module, str]]] = {
    "lpips-vgg16": build_lpips_vgg16,
    "toyfaces-lpips": build_toyfaces_lpips,
}


@dataclass
class Similarity:
    """A perceptual distance ready to run: float images [N, C, H, W] in [-1, 1] (x2) -> [N]."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    fingerprint: str

    @torch.inference_mode()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        out = batch_invariant(self.fn, img0, img1)
        out = out.reshape(out.shape[0], -1)
        if out.shape != (img0.shape[0], 1):
            raise InputError(f"similarity {self.name!r} returned shape {list(out.shape)}, expected one value per pair")
        return out[:, 0].float()


def build_similarity(similarity: str | Callable, *, weights: str | os.PathLike | None = None,
                     device: torch.device) -> Similarity:
    if callable(similarity) and not isinstance(similarity, str):
        if isinstance(similarity, nn.Module):
            similarity = similarity.to(device).eval()
            return Similarity(type(similarity).__name__, similarity, module_fingerprint(similarity))
        return Similarity(getattr(similarity, "__name__", "callable"), similarity, getattr(similarity, "__qualname__", "callable"))
    if similarity not in SIMILARITY_NETWORKS:
        raise InputError(f"unknown similarity {similarity!r}; available: {', '.join(sorted(SIMILARITY_NETWORKS))}")
    module, fingerprint = SIMILARITY_NETWORKS[similarity](weights, device)
    return Similarity(similarity, module.eval(), fingerprint)
