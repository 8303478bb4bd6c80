"""Public helpers (like numpy.testing): seeded random weight files in the exact upstream formats of Inception-v3,
VGG16 and DINOv2, for offline tests, benchmarks and smoke runs where the pretrained files cannot be downloaded."""

from __future__ import annotations

import os
from pathlib import Path
import tempfile

import torch

from stylegan_core.files import atomic_write


def _inception_v3_skeleton() -> torch.nn.Module:
    """torch-fidelity's Inception-v3 module with its constructor's initial values: built from an empty weights file,
    whose (missing) tensors it is told to skip, so nothing is downloaded."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None  # the architecture is all that is wanted

    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.pth"
        torch.save({}, empty)
        return Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))


def inception_v3_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Keys and shapes of torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`, seeded random values:
    convolutions scaled by fan-in and BatchNorm close to identity, so activations neither vanish nor explode; the
    output layer's bias is non-zero, so that logits with and without it differ."""
    net = _inception_v3_skeleton()
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("conv.weight") or key == "fc.weight":
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5
        elif key.endswith("bn.weight"):
            state[key] = 0.8 + 0.4 * torch.rand(value.shape, generator=g)
        elif key.endswith("running_var"):
            state[key] = 0.5 + 1.5 * torch.rand(value.shape, generator=g)
        elif key.endswith("running_mean") or key.endswith("bn.bias") or key == "fc.bias":
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
        elif key.endswith("num_batches_tracked"):
            state[key] = value.clone()
        else:
            state[key] = torch.zeros_like(value)
    return state


def _save(path: str | os.PathLike, state: dict[str, torch.Tensor]) -> Path:
    """`state` saved with torch.save, atomically (temp file, then rename), its folder created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        torch.save(state, f)
    return path


def write_inception_v3_weights(path: str | os.PathLike, seed: int = 0) -> Path:
    """A seeded random `inception_v3_state_dict` in the upstream file format, at `path`."""
    return _save(path, inception_v3_state_dict(seed))


def _hankel(shape: tuple[int, int], generator: torch.Generator, std: float) -> torch.Tensor:
    """A [rows, cols] view with W[i, j] = v[i + j] of rows + cols - 1 seeded normal values: full-size and
    unstructured enough for a layer, yet saved as its small storage."""
    rows, cols = shape
    values = torch.randn(rows + cols - 1, generator=generator) * std
    return values.as_strided((rows, cols), (1, 1))


def vgg16_state_dict(seed: int = 0, *, classifier: bool = False) -> dict[str, torch.Tensor]:
    """Keys and shapes of torchvision's `vgg16-397923af.pth`; seeded fan-in-scaled convolutions. The classifier
    (unused by LPIPS) is stored as zero-stride zeros, so the file is ~60 MB instead of 528 MB; classifier=True
    (for the fc2 features) makes its weights seeded fan-in-scaled Hankel matrices, still ~60 MB, and its biases
    small seeded values. The convolutions are the same either way."""
    import torchvision

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg16().state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.startswith("features.") and key.endswith("weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.startswith("features."):
            state[key] = torch.randn(shape, generator=g) * 0.01
        elif classifier and key.endswith("weight"):
            state[key] = _hankel(tuple(shape), g, (2.0 / shape[1]) ** 0.5)
        elif classifier:
            state[key] = torch.randn(shape, generator=g) * 0.01
        else:
            state[key] = torch.zeros(()).expand(shape)
    return state


def write_vgg16_weights(path: str | os.PathLike, seed: int = 0, *, classifier: bool = False) -> Path:
    """A seeded random `vgg16_state_dict` in torchvision's file format, at `path`."""
    return _save(path, vgg16_state_dict(seed, classifier=classifier))


def dinov2_state_dict(arch: str = "vit-s14", seed: int = 0) -> dict[str, torch.Tensor]:
    """Keys and shapes of Meta's `dinov2_<arch>_pretrain.pth` (arch 'vit-s14', 'vit-b14', 'vit-l14' or 'vit-g14'),
    seeded random values: fan-in-scaled weights, small biases and embeddings, norms and LayerScales around 1."""
    from stylegan_metrics.networks.dinov2 import ARCHS, DinoViT

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in DinoViT(**ARCHS[arch]).state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith(("norm1.weight", "norm2.weight", "norm.weight", "gamma")):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith("weight"):
            state[key] = torch.randn(shape, generator=g) * shape[1:].numel() ** -0.5
        else:  # biases, cls_token, pos_embed, mask_token
            state[key] = 0.02 * torch.randn(shape, generator=g)
    return state


def write_dinov2_weights(path: str | os.PathLike, arch: str = "vit-s14", seed: int = 0) -> Path:
    """A seeded random `dinov2_state_dict` of `arch` in Meta's file format, at `path`."""
    return _save(path, dinov2_state_dict(arch, seed))
