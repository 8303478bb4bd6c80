"""The registry of networks: feature networks (uint8 images -> features) and similarity networks
(image pairs -> distances), by name or a user's own module or callable."""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from stylegan_core.errors import InputError

from stylegan_metrics.networks.dinov2 import ARCHS as DINOV2_ARCHS, build_dinov2
from stylegan_metrics.networks.inception import build_inception_v3
from stylegan_metrics.networks.lpips_vgg import build_lpips_vgg16
from stylegan_metrics.precision import check_precision, precision_context
from stylegan_metrics.networks.batching import in_slices
from stylegan_metrics.networks.toyfaces_nets import build_toyfaces_features, build_toyfaces_lpips
from stylegan_metrics.networks.vgg16_fc2 import build_vgg16_fc2

CPU_MAX_ROWS = 16  # images (pairs) per network call on the CPU: bounds activation memory, costs no speed there


FEATURE_NETWORKS: dict[str, Callable[[str | os.PathLike | None, torch.device], tuple[nn.Module, str]]] = {
    # one pass gives (pool [N, 2048], unbiased logits [N, 1008]): FID and KID read the first, IS the second
    "inception-v3": functools.partial(build_inception_v3, logits=True),
    # (stage means [N, 240], hair logits [N, 6]) with the bundled classifier
    "toyfaces": build_toyfaces_features,
    "vgg16-fc2": build_vgg16_fc2,
    # Meta's DINOv2 CLS token [N, 384 / 768 / 1024 / 1536] (EDM2's FD_DINOv2 uses vit-l14); -pil: dgm-eval's resize
    **{f"dinov2-{arch}{suffix}": functools.partial(build_dinov2, arch=arch, resize=resize)
       for arch in DINOV2_ARCHS for suffix, resize in (("", "torch"), ("-pil", "pil"))},
}


def max_rows_for(device: torch.device) -> int | None:
    return CPU_MAX_ROWS if device.type == "cpu" else None


def module_fingerprint(module) -> str:
    """Class name and a hash of the state dict: what makes a user network's features what they are. A generator
    that is not a Module (NVIDIA's protocol on a plain object) is hashed through its `mapping` and `synthesis`
    Modules; when those are not Modules either, its class name is all there is to name."""
    parts = {"": module} if isinstance(module, nn.Module) else \
        {name: getattr(module, name, None) for name in ("mapping", "synthesis")}
    parts = {name: part for name, part in parts.items() if isinstance(part, nn.Module)}
    if not parts:
        return type(module).__qualname__
    h = hashlib.sha256(type(module).__qualname__.encode())
    for prefix, part in parts.items():
        for key, value in part.state_dict().items():
            h.update(f"{prefix}.{key}".encode() if prefix else key.encode())  # a Module's hash as before
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return f"{type(module).__qualname__}:{h.hexdigest()[:16]}"


@dataclass
class FeatureExtractor:
    """A feature network ready to run: uint8 [N, 3, H, W] -> float [N, D] (its first output); `outputs` gives every
    output of one pass (Inception: pool features and logits)."""

    name: str
    module: nn.Module
    fingerprint: str              # changes whenever the features would (weights, class, precision)
    max_rows: int | None = None   # images per call of the module; None = the whole batch
    precision: str = "fp32"       # 'fp32', 'tf32' or 'bf16' (see precision.py)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.outputs(images)[0]

    @torch.inference_mode()
    def outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every output of the network, float32 [N, D_k] each, from one call per slice of images."""
        widths: list[int] = []

        def joined(x: torch.Tensor) -> torch.Tensor:  # outputs side by side, so slicing and padding treat them as one
            out = self.module(x)
            out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
            if any(o.ndim != 2 for o in out):
                raise InputError(f"feature network {self.name!r} returned shapes {[list(o.shape) for o in out]}, "
                                 f"expected [N, D]")
            widths[:] = [o.shape[1] for o in out]
            return torch.cat([o.float() for o in out], dim=1)

        with precision_context(self.precision, images.device.type):
            out = in_slices(joined, self.max_rows, images)
        return tuple(out.split(widths, dim=1))


def build_feature_extractor(features: str | nn.Module | FeatureExtractor, *, weights: str | os.PathLike | None = None,
                            device: torch.device, precision: str = "fp32") -> FeatureExtractor:
    """A registered name, a user's module (uint8 images -> [N, D]), or an extractor already built (returned as is)."""
    if isinstance(features, FeatureExtractor):
        return features
    check_precision(precision)
    if isinstance(features, nn.Module):
        module = features.to(device).eval()
        name, fingerprint = type(features).__name__, module_fingerprint(module)
    elif features in FEATURE_NETWORKS:
        module, fingerprint = FEATURE_NETWORKS[features](weights, device)
        name, module = features, module.eval()
    else:
        raise InputError(f"unknown feature network {features!r}; available: {', '.join(sorted(FEATURE_NETWORKS))}")
    return FeatureExtractor(name, module, with_precision(fingerprint, precision), max_rows_for(device), precision)


def with_precision(fingerprint: str, precision: str) -> str:
    """Results of another precision are other numbers: statistics and states keep them apart."""
    return fingerprint if precision == "fp32" else f"{fingerprint}@{precision}"


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
    max_rows: int | None = None   # pairs per call of fn; None = the whole batch

    @torch.inference_mode()
    def __call__(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        """Always fp32 (TF32 off): PPL's epsilon-sized differences drown in reduced-precision rounding."""
        with precision_context("fp32", img0.device.type):
            out = in_slices(self.fn, self.max_rows, img0, img1)
        out = out.reshape(out.shape[0], -1)
        if out.shape != (img0.shape[0], 1):
            raise InputError(f"similarity {self.name!r} returned shape {list(out.shape)}, expected one value per pair")
        return out[:, 0].float()


def build_similarity(similarity: str | Callable, *, weights: str | os.PathLike | None = None,
                     device: torch.device) -> Similarity:
    if callable(similarity) and not isinstance(similarity, str):
        if isinstance(similarity, nn.Module):
            fn = similarity.to(device).eval()
            name, fingerprint = type(similarity).__name__, module_fingerprint(fn)
        else:
            fn, name = similarity, getattr(similarity, "__name__", "callable")
            fingerprint = getattr(similarity, "__qualname__", "callable")
    elif similarity in SIMILARITY_NETWORKS:
        module, fingerprint = SIMILARITY_NETWORKS[similarity](weights, device)
        fn, name = module.eval(), similarity
    else:
        raise InputError(f"unknown similarity {similarity!r}; available: {', '.join(sorted(SIMILARITY_NETWORKS))}")
    return Similarity(name, fn, fingerprint, max_rows_for(device))
