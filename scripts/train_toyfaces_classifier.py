"""Reproduce the bundled toyfaces attribute classifier and print its held-out accuracy per attribute.

    python scripts/train_toyfaces_classifier.py --out stylegan_metrics/assets/toyfaces-classifier.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from stylegan_core.celeba import CELEBA_ATTRIBUTES
from stylegan_core.toyfaces import render_toyfaces
from stylegan_metrics.classifier import (AttributeClassifier, attribute_accuracy, fit_classifier, load_classifier,
                                         save_classifier)

RESOLUTION = 32
CHANNELS = (16, 32, 64, 128)
HELD_OUT_SEED = 1  # a different toyfaces world than the training images (seed 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num-train", type=int, default=40_000)
    parser.add_argument("--num-test", type=int, default=5_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--init", type=Path, default=None, help="Continue from this classifier checkpoint.")
    parser.add_argument("--train-start", type=int, default=0, help="Index of the first training image (world 0).")
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    images, labels = render_toyfaces(args.num_train, resolution=RESOLUTION, seed=0, start=args.train_start, progress=True)
    test_images, test_labels = render_toyfaces(args.num_test, resolution=RESOLUTION, seed=HELD_OUT_SEED, progress=True)
    torch.manual_seed(0)
    model = AttributeClassifier(CELEBA_ATTRIBUTES, input_resolution=RESOLUTION, channels=CHANNELS)
    if args.init is not None:
        model.load_state_dict(load_classifier(args.init).state_dict())
        model.requires_grad_(True)
    x, y = torch.from_numpy(images), torch.from_numpy(labels).float()
    fit_classifier(model, x, y, epochs=args.epochs, batch_size=128, lr=args.lr, seed=1 + args.train_start)
    fit_classifier(model, x, y, epochs=2, batch_size=128, lr=args.lr / 6, seed=2 + args.train_start)
    accuracy = attribute_accuracy(model, torch.from_numpy(test_images), torch.from_numpy(test_labels).float())
    table = pd.DataFrame({"attribute": CELEBA_ATTRIBUTES, "accuracy": accuracy, "positive_rate": test_labels.mean(0)})
    print(table.to_string(index=False, float_format="%.4f"))
    print(f"mean accuracy {accuracy.mean():.4f}, worst {table.loc[table.accuracy.idxmin(), 'attribute']} {accuracy.min():.4f}")
    save_classifier(model, args.out, accuracy, held_out=args.num_test, held_out_world=HELD_OUT_SEED)


if __name__ == "__main__":
    main()
