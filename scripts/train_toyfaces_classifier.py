"""Reproduce the bundled toyfaces attribute classifier and print its held-out accuracy per attribute.

    python scripts/train_toyfaces_classifier.py --out stylegan_metrics/assets/toyfaces-classifier.pt

Recipe: 60,000 rendered 32-px toyfaces of world 0, `--epochs` passes at lr 2e-3 and 2 at lr 2e-3 / 6 (Adam,
batch 128, each pass its own seeded order and a fresh Adam), held-out accuracy on 5,000 faces of world 1
after every pass.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from stylegan_core.data.celeba import CELEBA_ATTRIBUTES
from stylegan_core.data.toyfaces import render_toyfaces
from stylegan_metrics.networks.classifier import AttributeClassifier, attribute_accuracy, fit_classifier, save_classifier

RESOLUTION = 32
HELD_OUT_SEED = 1  # a different toyfaces world than the training images (seed 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num-train", type=int, default=60_000)
    parser.add_argument("--num-test", type=int, default=5_000)
    parser.add_argument("--epochs", type=int, default=12, help="passes at the full learning rate")
    parser.add_argument("--channels", default="16,32,64,128", help="width of the four stages")
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    images, labels = render_toyfaces(args.num_train, resolution=RESOLUTION, seed=0, progress=True)
    test_images, test_labels = render_toyfaces(args.num_test, resolution=RESOLUTION, seed=HELD_OUT_SEED, progress=True)
    x, y = torch.from_numpy(images), torch.from_numpy(labels).float()
    xt, yt = torch.from_numpy(test_images), torch.from_numpy(test_labels).float()
    torch.manual_seed(0)
    channels = tuple(int(c) for c in args.channels.split(","))
    model = AttributeClassifier(CELEBA_ATTRIBUTES, input_resolution=RESOLUTION, channels=channels)
    schedule = [(args.lr, 100 + e) for e in range(args.epochs)] + [(args.lr / 6, 200 + e) for e in range(2)]
    for i, (lr, seed) in enumerate(schedule):
        fit_classifier(model, x, y, epochs=1, batch_size=128, lr=lr, seed=seed)
        model.requires_grad_(True)
        accuracy = attribute_accuracy(model, xt, yt)
        print(f"pass {i + 1}/{len(schedule)}: held-out mean {accuracy.mean():.4f}, {(accuracy < 0.85).sum()} below 0.85")
    table = pd.DataFrame({"attribute": CELEBA_ATTRIBUTES, "accuracy": accuracy, "positive_rate": test_labels.mean(0)})
    print(table.to_string(index=False, float_format="%.4f"))
    print(f"mean accuracy {accuracy.mean():.4f}, worst {table.loc[table.accuracy.idxmin(), 'attribute']} {accuracy.min():.4f}")
    save_classifier(model, args.out, accuracy, held_out=args.num_test, held_out_world=HELD_OUT_SEED)


if __name__ == "__main__":
    main()
