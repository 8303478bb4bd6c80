"""Attribute classifiers: a compact CNN (images in [-1, 1] -> one logit per attribute), training, safe loading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from stylegan_core.formats.checkpoint import build_module, check_checkpoint_out, load_checkpoint, save_checkpoint
from stylegan_core.data.datasets import ImageDataset, check_labels
from stylegan_core.errors import CheckpointError, InputError
from stylegan_core.data.images import from_uint8

from stylegan_metrics.networks.attributes import CELEBA_ATTRIBUTES, select_attributes
from stylegan_metrics.networks.nvidia_classifier import is_nvidia_classifier, load_nvidia_classifiers

CLASSIFIER_KIND = "attribute-classifier"


class AttributeClassifier(nn.Module):
    """Conv stages (conv3x3, leaky ReLU, conv3x3, leaky ReLU, 2x2 average) -> global average -> K logits."""

    def __init__(
        self,
        attributes: list[str],             # Names of the K outputs, in order.
        input_resolution: int = 64,        # Images are resized (area) to this side first.
        channels: list[int] = (32, 64, 128, 256),  # Width of each stage.
        img_channels: int = 3,             # Input channels.
    ):
        super().__init__()
        self.attributes = list(attributes)
        if not self.attributes or not all(isinstance(a, str) for a in self.attributes):
            raise ValueError("attributes must be a non-empty list of names")
        if isinstance(input_resolution, bool) or not isinstance(input_resolution, int) \
                or not 4 <= input_resolution <= 4096:
            raise ValueError(f"input_resolution must be an integer in [4, 4096], not {input_resolution!r}")
        self.input_resolution = input_resolution
        self.config = dict(attributes=self.attributes, input_resolution=input_resolution,
                           channels=list(channels), img_channels=img_channels)
        stages, c_in = [], img_channels
        for c in channels:
            stages += [nn.Conv2d(c_in, c, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(c, c, 3, padding=1),
                       nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*stages)
        self.head = nn.Linear(c_in, len(self.attributes))

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.input_resolution or images.shape[-2] != self.input_resolution:
            images = F.interpolate(images, size=(self.input_resolution,) * 2, mode="area")
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] in [-1, 1] -> [N, K]
        return self.head(self.features(self._resize(images)).mean(dim=(2, 3)))

    def stage_outputs(self, images: torch.Tensor, resize: bool = True) -> list[torch.Tensor]:
        """Each stage's activations before its pooling: [N, channels[k], R / 2^k, R / 2^k] for k = 0, 1, ...
        With `resize=False` the convolutions run on the images as given (any size)."""
        x, outs = self._resize(images) if resize else images, []
        for k in range(0, len(self.features), 5):
            x = self.features[k:k + 4](x)
            outs.append(x)
            x = self.features[k + 4](x)
        return outs


def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A classifier checkpoint written by `train_classifier`, loaded with weights_only=True, eval mode; or one of
    NVIDIA's CelebA-HQ classifier pickles, or a folder of them (see `nvidia_classifier`: [N, K], K files)."""
    path = Path(path)
    if is_nvidia_classifier(path):
        return load_nvidia_classifiers(path).to(device)
    data = load_checkpoint(path)
    if data.get("kind") != CLASSIFIER_KIND:
        raise CheckpointError(f"{path}: not an attribute classifier checkpoint")
    config = data.get("config")
    config = config.get("classifier") if isinstance(config, dict) else None
    model = build_module(path, AttributeClassifier, config, data.get("classifier"), "classifier")
    accuracy = data.get("accuracy")
    model.accuracy = dict(accuracy) if isinstance(accuracy, dict) else {}
    return model.eval().requires_grad_(False).to(device)


MAX_CLASSES = 1000  # class labels become one attribute per class (ImageNet has 1000)


def read_attribute_labels(labels: str | os.PathLike, files: list[str]) -> tuple[list[str], np.ndarray]:
    """Labels [len(files), K] bool and the K names from CelebA's list_attr_celeba.txt (-1/1, matched by file
    name) or a dataset.json: {"labels": [[file, [v, ...]], ...]} (value > 0 = present; optional "attributes":
    names), or NVIDIA's integer classes {"labels": [[file, 3], ...]}, read as attributes class0, class1, ...
    (present for the image's class only)."""
    path = Path(labels)
    if not path.is_file():
        raise InputError(f"{path}: no such labels file")
    text = path.read_text()
    names, values = (_json_labels if path.suffix.lower() == ".json" else _celeba_labels)(path, text, files)
    return names, values > 0


def _json_labels(path: Path, text: str, files: list[str]) -> tuple[list[str], np.ndarray]:
    """Names and [N, K] values of a dataset.json, checked by the rule of dataset labels (`check_labels`)."""
    try:
        meta = json.loads(text)
        table = {str(name).replace("\\", "/"): v for name, v in meta["labels"]}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError) as e:
        raise InputError(f"{path}: not a dataset.json with labels ({type(e).__name__})") from None
    missing = next((f for f in files if f not in table), None)
    if missing is not None:
        raise InputError(f"{path}: no labels for image {missing}")
    values = check_labels([table[f] for f in files], files, str(path))  # [N] classes or [N, K]
    if values.ndim == 1:
        count = int(values.max()) + 1
        if count > MAX_CLASSES:
            raise InputError(f"{path}: class labels up to {count - 1}; train-classifier takes at most {MAX_CLASSES} "
                             f"classes (one attribute each)")
        return [f"class{k}" for k in range(count)], (values[:, None] == np.arange(count)).astype(np.float32)
    names = meta.get("attributes") or CELEBA_ATTRIBUTES[:values.shape[1]]
    if not isinstance(names, list) or len(names) != values.shape[1] or not all(isinstance(n, str) for n in names):
        raise InputError(f"{path}: each image has {values.shape[1]} labels, but there are {len(names)} attribute "
                         f"names (give \"attributes\": [names] in the file)")
    return list(names), values


def _celeba_labels(path: Path, text: str, files: list[str]) -> tuple[list[str], np.ndarray]:
    """Names and [N, K] values of list_attr_celeba.txt (count, names, then `file v1 v2 ...` per image)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) < 3 or not lines[0][0].isdigit():
        raise InputError(f"{path}: not in list_attr_celeba.txt format (count, names, then one row per image)")
    names = lines[1]
    table = {row[0]: row[1:] for row in lines[2:]}
    rows = []
    for f in files:
        row = table.get(f, table.get(Path(f).name))
        if row is None:
            raise InputError(f"{path}: no labels for image {f}")
        if len(row) != len(names):
            raise InputError(f"{path}: image {f} has {len(row)} labels, expected {len(names)}")
        try:
            values = [float(v) for v in row]
        except ValueError:
            values = [float("nan")]
        if not np.isfinite(values).all():
            raise InputError(f"{path}: the labels of image {f} are not all numbers ({' '.join(row)})")
        rows.append(values)
    return list(names), np.array(rows)


def train_classifier(
    data: str | os.PathLike,
    labels: str | os.PathLike,
    out: str | os.PathLike,
    *,
    attributes: int | str | list[str] = 40,
    resolution: int = 64,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[AttributeClassifier, pd.DataFrame]:
    """Train with BCE on a labelled image folder or zip; returns the model and held-out accuracy per attribute."""
    check_checkpoint_out(out)  # before the images are read and the training time spent
    dataset = ImageDataset(data, resolution=resolution, labels=False)  # the labels are --labels
    names, all_labels = read_attribute_labels(labels, dataset.files)
    chosen = select_attributes(attributes, available=names)
    y_all = torch.from_numpy(all_labels[:, [names.index(n) for n in chosen]]).float()
    order = torch.randperm(len(dataset.files), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(len(order) * val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if len(train_idx) < 1:
        raise InputError(f"{data}: too few images to hold out {val_fraction:.0%} for validation")
    images = torch.stack([dataset[i][0] for i in range(len(dataset.files))])  # uint8 [N, C, R, R]
    torch.manual_seed(seed)
    model = AttributeClassifier(chosen, input_resolution=resolution)
    fit_classifier(model, images[train_idx], y_all[train_idx], epochs=epochs, batch_size=batch_size, lr=lr,
                   seed=seed + 1, device=device, progress=progress)
    accuracy = attribute_accuracy(model, images[val_idx], y_all[val_idx], device=device)
    table = pd.DataFrame({"attribute": chosen, "accuracy": accuracy, "positive_rate": y_all[val_idx].mean(0).numpy()})
    save_classifier(model, out, accuracy, held_out=int(n_val))
    return model, table


def fit_classifier(
    model: AttributeClassifier,
    images: torch.Tensor,              # uint8 [N, C, R, R]
    labels: torch.Tensor,              # [N, K], 1 = attribute present
    *,
    epochs: int = 10,                  # Passes over the images.
    batch_size: int = 64,              # Minibatch size.
    lr: float = 1e-3,                  # Adam learning rate.
    seed: int = 0,                     # Seeds the minibatch order.
    device: str | torch.device = "cpu",  # Where to train.
    progress: bool = True,             # Progress bar with the loss.
) -> AttributeClassifier:
    """Minimise binary cross-entropy per attribute with Adam; returns the model in eval mode."""
    model.to(device).train()
    labels = labels.float()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(images) // batch_size)
    bar = tqdm(total=steps, desc="train-classifier", disable=None if progress else True)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=gen).split(batch_size):
            x = from_uint8(images[batch].to(device))
            loss = F.binary_cross_entropy_with_logits(model(x), labels[batch].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    return model.eval()


@torch.no_grad()
def attribute_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                       device: str | torch.device = "cpu", batch_size: int = 256) -> np.ndarray:
    """Fraction of images [N, C, R, R] (uint8) whose thresholded logit (> 0) matches the label, per attribute."""
    logits = torch.cat([model(from_uint8(images[b].to(device))).cpu()
                        for b in torch.arange(len(images)).split(batch_size)])
    return ((logits > 0) == (labels > 0.5)).float().mean(dim=0).numpy()


def save_classifier(model: AttributeClassifier, out: str | os.PathLike, accuracy, *, held_out: int, **extra) -> Path:
    """The classifier checkpoint `load_classifier` reads, with its held-out accuracy per attribute."""
    model.accuracy = {n: float(a) for n, a in zip(model.attributes, accuracy)}
    return save_checkpoint(out, kind=CLASSIFIER_KIND, config={"classifier": model.config}, classifier=model.state_dict(),
                           accuracy=model.accuracy, held_out=int(held_out), **extra)
