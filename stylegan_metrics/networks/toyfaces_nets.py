"""The bundled toyfaces generator and classifier, and the `toyfaces` / `toyfaces-lpips` domain networks
built from the classifier's layers (not comparable to Inception-FID or VGG-LPIPS)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from stylegan_core.formats.checkpoint import load_generator
from stylegan_core.errors import InputError
from stylegan_core.data.images import from_uint8

from stylegan_metrics.networks.classifier import AttributeClassifier, load_classifier
from stylegan_metrics.networks.weights import sha256_of

ASSETS = Path(__file__).parent.parent / "assets"
GENERATOR_FILE = "toyfaces-generator.pt"
CLASSIFIER_FILE = "toyfaces-classifier.pt"
BUNDLED_NAME = "toyfaces"  # what `--ckpt toyfaces` and `--classifier toyfaces` name


def bundled_path(name: str) -> Path:
    """The path of a file shipped in stylegan_metrics/assets, or an InputError if the install lacks it."""
    path = ASSETS / name
    if not path.is_file():
        raise InputError(f"the bundled file {path} is missing; reinstall stylegan-metrics")
    return path


def bundled_files() -> dict[str, Path]:
    """The bundled networks' files: {'generator': ..., 'classifier': ...}, what the name `toyfaces` stands for
    in the CLI's --ckpt and --classifier (give these paths to load_generator / load_classifier)."""
    return {"generator": bundled_path(GENERATOR_FILE), "classifier": bundled_path(CLASSIFIER_FILE)}


def load_toyfaces_generator(device: str | torch.device = "cpu"):
    """The small StyleGAN this project trained on toyfaces (scripts/train_toyfaces_generator.py)."""
    return load_generator(bundled_path(GENERATOR_FILE), device=device)


def load_toyfaces_classifier(device: str | torch.device = "cpu") -> AttributeClassifier:
    """The 40-attribute toyfaces classifier (scripts/train_toyfaces_classifier.py)."""
    return load_classifier(bundled_path(CLASSIFIER_FILE), device=device)


HAIR_STATES = ("Bald", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")  # exclusive in toyfaces; else "other"


class ToyfacesFeatures(nn.Module):
    """uint8 images [N, 3, H, W] -> features [N, sum(channels)], the global average of each classifier stage; and,
    when the classifier knows the five hair states, hair logits [N, 6]: the classifier's logits of HAIR_STATES and
    a zero logit for "other hair" (toyfaces' auburn), whose softmax is a distribution over six exclusive classes
    (what an Inception Score needs)."""

    def __init__(self, classifier: AttributeClassifier):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        names = list(getattr(classifier, "attributes", []))
        self.hair = [names.index(a) for a in HAIR_STATES] if all(a in names for a in HAIR_STATES) else None

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        stages = self.classifier.stage_outputs(from_uint8(images))
        features = torch.cat([f.mean(dim=(2, 3)) for f in stages], dim=1)  # [N, D]
        if self.hair is None:
            return features
        pooled = self.classifier.features[-1](stages[-1]).mean(dim=(2, 3))  # the classifier's own last step
        logits = self.classifier.head(pooled)[:, self.hair]                   # [N, 5]
        return features, torch.cat([logits, torch.zeros_like(logits[:, :1])], dim=1)  # [N, 6]


class ToyfacesLPIPS(nn.Module):
    """(img0, img1) in [-1, 1] -> [N], LPIPS without learned weights (the lpips package's `lpips=False`):
    per stage, unit-normalise each position's channel vector, sum the squared differences over channels,
    average over positions; add the stages. The convolutions run on the images at their own size."""

    def __init__(self, classifier: AttributeClassifier):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.min_side = 2 ** (len(classifier.features) // 5)  # every stage ends in a 2x2 pooling

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] x2 -> [N]
        if min(img0.shape[2:]) < self.min_side:
            raise InputError(f"toyfaces-lpips needs images of at least {self.min_side}x{self.min_side} pixels after "
                             f"cropping, got {img0.shape[2]}x{img0.shape[3]} (use a larger generator or --no-crop)")
        n = img0.shape[0]
        total = torch.zeros(n, device=img0.device, dtype=img0.dtype)
        for f in self.classifier.stage_outputs(torch.cat([img0, img1]), resize=False):
            f = f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + (f[:n] - f[n:]).square().sum(dim=1).mean(dim=(1, 2))
        return total


def _classifier_for(weights: str | os.PathLike | None, device: torch.device) -> tuple[AttributeClassifier, str]:
    path = Path(weights) if weights is not None else bundled_path(CLASSIFIER_FILE)
    return load_classifier(path, device=device), sha256_of(path)[:16]


def build_toyfaces_features(weights: str | os.PathLike | None, device: torch.device) -> tuple[nn.Module, str]:
    classifier, digest = _classifier_for(weights, device)
    return ToyfacesFeatures(classifier), f"toyfaces:{digest}"


def build_toyfaces_lpips(weights: str | os.PathLike | None, device: torch.device) -> tuple[nn.Module, str]:
    classifier, digest = _classifier_for(weights, device)
    return ToyfacesLPIPS(classifier), f"toyfaces-lpips:{digest}"
