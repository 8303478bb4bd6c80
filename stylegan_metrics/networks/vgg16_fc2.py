"""The `vgg16-fc2` feature network of precision/recall: VGG16's second fully connected layer after its ReLU,
[N, 4096], on images resized to 224x224 as torch-fidelity's `vgg16` extractor does (NVIDIA's `vgg16` metric
network gives the same features); torchvision's ImageNet weights, channels-last convolutions."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.errors import InputError

from stylegan_metrics.networks.weights import load_state_dict, resolve_weights, sha256_of

INPUT_SIZE = 224                                       # images are resized to INPUT_SIZE x INPUT_SIZE
MEAN = tuple(255 * m for m in (0.485, 0.456, 0.406))   # torchvision's ImageNet normalisation on [0, 255]
STD = tuple(255 * s for s in (0.229, 0.224, 0.225))
FEATURES = 4096
USED = {"classifier.0": "fc1", "classifier.3": "fc2"}  # torchvision's classifier indices of fc1 and fc2


class VGG16Fc2(nn.Module):
    """uint8 images [N, 3, H, W] -> fc2 activations after ReLU [N, 4096] (torch-fidelity's 'fc2_relu')."""

    def __init__(
        self,
        state: dict[str, torch.Tensor],  # torchvision vgg16 state dict: 'features.*', 'classifier.{0,3}.*' used
    ):
        super().__init__()
        import torchvision

        with torch.device("meta"):
            vgg = torchvision.models.vgg16()
        self.features = vgg.features                    # 13 convolutions, 5 max-pools: [N, 512, 7, 7] at 224
        self.fc1 = vgg.classifier[0]                    # Linear(25088, 4096)
        self.fc2 = vgg.classifier[3]                    # Linear(4096, 4096)
        wanted = {}
        for key in vgg.state_dict():
            if key.startswith("features."):
                wanted[key] = key
            elif key.rsplit(".", 1)[0] in USED:
                prefix, leaf = key.rsplit(".", 1)
                wanted[key] = f"{USED[prefix]}.{leaf}"
        missing = sorted(k for k in wanted if k not in state)
        if missing:
            raise InputError(f"VGG16 weights do not match torchvision's vgg16 (missing {len(missing)} tensors, "
                             f"e.g. {missing[0]})")
        try:
            self.load_state_dict({ours: state[theirs] for theirs, ours in wanted.items()}, assign=True)
        except RuntimeError as e:
            raise InputError(f"VGG16 weights do not match torchvision's vgg16 ({e})") from None
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"vgg16-fc2 takes uint8 images [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        x = images.to(self.mean.dtype)
        x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)
        x = (x - self.mean) / self.std                                             # [N, 3, 224, 224]
        x = self.features(x.contiguous(memory_format=torch.channels_last))         # [N, 512, 7, 7]
        x = x.flatten(1)  # [N, 25088] in (C, H, W) order; torchvision's 7x7 average pool is the identity here
        x = F.relu(self.fc1(x))                                                    # dropout: none at inference
        return F.relu(self.fc2(x))                                                 # [N, 4096]


def build_vgg16_fc2(weights: str | os.PathLike | None, device: torch.device) -> tuple[nn.Module, str]:
    """Features equal torch-fidelity's `vgg16` extractor ('fc2_relu') to float32 rounding."""
    path = resolve_weights("vgg16", weights)  # the same file as lpips-vgg16's trunk; fc1 and fc2 are read too
    module = VGG16Fc2(load_state_dict(path)).to(device, memory_format=torch.channels_last)
    return module, f"vgg16-fc2:{sha256_of(path)[:16]}"
