"""NVIDIA's CelebA-HQ attribute classifiers (`celebahq-classifier-XX-<name>.pkl`, TensorFlow) as one [N, K] module.

Each file holds one discriminator-style network (ProGAN's D_paper or StyleGAN's D_basic, read as data by
`stylegan_core.formats.tf_pickle`): images in [-1, 1] at 256 px -> one logit, positive = attribute present.
NVIDIA's linear separability turns a logit l into the two-class softmax of [l, -l], i.e. label l > 0 with
confidence sigmoid(2|l|). A folder of such files becomes one module whose K outputs follow the files'
indices XX (NVIDIA's order: 00 male, 01 smiling, ...); names come from the file names, spelled as CelebA's.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.data.celeba import CELEBA_ATTRIBUTES
from stylegan_core.errors import CheckpointError, InputError
from stylegan_core.formats.sources import detect_source
from stylegan_core.formats.tf_pickle import load_tf_discriminator

INPUT_RESOLUTION = 256  # the classifiers were trained on 256x256 CelebA-HQ
FILE_NAME = re.compile(r"(?:^|-)(?P<index>\d+)-(?P<name>[^/]+?)\.pkl$")


def attribute_from_file_name(path: str | Path) -> tuple[int, str]:
    """'celebahq-classifier-05-5-o-clock-shadow.pkl' -> (5, '5_o_Clock_Shadow'): the index and the CelebA name
    (or the file's own words joined by '_' when they name no CelebA attribute)."""
    found = FILE_NAME.search(Path(path).name)
    if found is None:
        raise CheckpointError(f"{path}: an attribute classifier file name must end in -<index>-<name>.pkl "
                              "(e.g. celebahq-classifier-00-male.pkl)")
    words = found.group("name").replace("-", "_")
    by_key = {a.lower(): a for a in CELEBA_ATTRIBUTES}
    return int(found.group("index")), by_key.get(words.lower(), words)


def is_nvidia_classifier(path: str | Path) -> bool:
    """A folder (of classifier pickles) or one NVIDIA TensorFlow network pickle."""
    path = Path(path)
    return path.is_dir() or (path.is_file() and detect_source(path) == "tensorflow")


class NvidiaAttributeClassifiers(nn.Module):
    """images [N, 3, 256 * k, 256 * k] in [-1, 1] -> logits [N, K], one network per attribute."""

    def __init__(
        self,
        networks: list[nn.Module],  # K networks, each images [N, 3, 256, 256] -> [N, 1].
        attributes: list[str],      # Their K names, in the same order.
    ):
        super().__init__()
        if len(networks) != len(attributes) or not networks:
            raise ValueError("one attribute name per network, at least one network")
        self.networks = nn.ModuleList(networks)
        self.attributes = list(attributes)
        self.input_resolution = INPUT_RESOLUTION

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] -> [N, K]
        side = images.shape[-1]
        if images.ndim != 4 or images.shape[-2] != side or side % INPUT_RESOLUTION:
            raise InputError(f"NVIDIA's attribute classifiers take square images of 256 px (or a multiple, box-"
                             f"downsampled to 256 as NVIDIA's linear separability does), got {list(images.shape)}")
        if side > INPUT_RESOLUTION:
            images = F.avg_pool2d(images, side // INPUT_RESOLUTION)
        return torch.cat([net(images)[:, :1] for net in self.networks], dim=1)


def load_nvidia_classifiers(path: str | Path) -> NvidiaAttributeClassifiers:
    """One classifier pickle (-> K = 1) or a folder of them (-> K files in index order), in eval mode."""
    path = Path(path)
    files = sorted(path.glob("*.pkl")) if path.is_dir() else [path]
    if not files:
        raise CheckpointError(f"{path}: no classifier pickles (*.pkl) in this folder")
    named = sorted((*attribute_from_file_name(f), f) for f in files)
    indices = [i for i, _, _ in named]
    if len(set(indices)) != len(indices):
        raise CheckpointError(f"{path}: two classifier files share an index ({indices})")
    networks = []
    for _, name, f in named:
        net = load_tf_discriminator(f)
        one_logit = getattr(net, "config", {}).get("out_features") == 1
        if getattr(net, "img_resolution", None) != INPUT_RESOLUTION or not one_logit:
            raise CheckpointError(f"{f}: not an attribute classifier (a 256 px network with one output)")
        networks.append(net)
    return NvidiaAttributeClassifiers(networks, [name for _, name, _ in named]).eval().requires_grad_(False)


__all__ = ["NvidiaAttributeClassifiers", "attribute_from_file_name", "is_nvidia_classifier", "load_nvidia_classifiers"]
