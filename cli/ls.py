"""`stylegan-metrics ls` and `stylegan-metrics train-classifier`."""

from __future__ import annotations

import click
import pandas as pd

from stylegan_core import ranks
from stylegan_core.errors import OutputError
from stylegan_core.files import atomic_write, check_output_name
from stylegan_metrics.metrics import build_metric
from stylegan_metrics.metrics.ls import ls_name
from stylegan_metrics.networks.classifier import load_classifier, train_classifier as run_classifier_training

from .launch import state_dir_for
from .options import (FiniteFloat, batch_option, ckpt_option, class_option, classifier_option, data_option,
                      device_option, no_progress_option, num_option, resolve_device, run_metric_command, run_options,
                      seed_option)

attributes_option = click.option("--attributes", default="40", show_default=True,
                                 help="The first N attributes (in the classifier's order) or a comma-separated list of names.")


@click.command()
@ckpt_option
@data_option(required=False)
@class_option
@classifier_option(required=True)
@attributes_option
@click.option("--space", type=click.Choice(["z", "w", "both"]), default="both", show_default=True)
@num_option(200_000)
@click.option("--keep", type=FiniteFloat(0, 1, min_open=True), default=0.5, show_default=True,
              help="Fraction of most confident samples kept per attribute.")
@click.option("--svm", type=click.Choice(["sklearn", "torch"]), default="sklearn", show_default=True,
              help="SVM back end: scikit-learn LinearSVC (reference) or the batched torch solver.")
@click.option("--details", "details_path", type=click.Path(dir_okay=False), default=None,
              help="Write the per-attribute table to this CSV file (its name ends in .csv; checked before the work).")
@batch_option(32)
@seed_option
@run_options()
def ls(ckpt, data, class_index, classifier, attributes, space, num, keep, svm, details_path, batch, seed, device, out,
       state_dir, chunk_size, no_progress):
    """Linear separability (StyleGAN1): attribute classifier, linear SVMs, conditional entropy. Results are named
    as evaluate names the same computation: ls_z, ls_w for 200,000 samples with half kept, ls500_z for --num 500,
    ls500_keep0.25_z with --keep 0.25."""
    if details_path:
        check_details_file(details_path)  # before the work, not after it
    metric = build_metric(ls_name(num or 200_000, keep), attributes=attributes, space=space, svm=svm)
    [result] = run_metric_command(ckpt, [metric], device=device, out=out, state_dir=state_dir_for(state_dir, out, "ls"),
                                  classifier=load_classifier(classifier), batch_size=batch, seed=seed,
                                  progress=not no_progress, chunk_size=chunk_size, data=data,
                                  class_index=class_index)
    if not ranks.is_main():
        return
    table = result.details.pivot(index="attribute", columns="space", values="entropy_bits")
    click.echo(table.loc[result.params["attributes"]].to_string(float_format=lambda v: f"{v:.4f}"))
    if details_path:
        write_details(details_path, result.details, out=out)


def check_details_file(path: str) -> None:
    """`--details` names a .csv file that can be written: atomic_write replaces whatever is there, so another
    kind of file (`--details dataset.json`) is refused, as `stats --out` refuses all but .npz."""
    check_output_name(path, ".csv", "--details writes a CSV table and its name must end in .csv (refusing to "
                                    "replace another kind of file)")


def write_details(path: str, details: pd.DataFrame, *, out: str | None) -> None:
    """The per-attribute table to `path`; when that still fails (a full disk), the table goes to stdout as CSV
    and the error line says so, so nothing computed is lost."""
    try:
        with atomic_write(path) as f:
            details.to_csv(f, index=False)
    except OutputError as e:
        click.echo(details.to_csv(index=False), nl=False)
        line = f"; the result line was appended to {out}" if out else ""
        raise OutputError(f"{e}; the per-attribute table is printed above as CSV{line}") from None


@click.command("train-classifier")
@click.option("--data", required=True, type=click.Path(), help="Image folder or zip.")
@click.option("--labels", required=True, type=click.Path(dir_okay=False),
              help="list_attr_celeba.txt (-1/1), a dataset.json with a list of values per image (> 0 = present), "
                   "or NVIDIA's dataset.json with an integer class per image (attributes class0, class1, ...).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Classifier checkpoint to write (a name ending in .pt).")
@attributes_option
@click.option("--resolution", type=click.IntRange(min=16), default=64, show_default=True,
              help="Side the images are centre-cropped and resized to (at least 16: four 2x poolings).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch", type=click.IntRange(min=2), default=64, show_default=True)
@click.option("--lr", type=FiniteFloat(), default=1e-3, show_default=True)
@seed_option
@device_option
@no_progress_option
def train_classifier(data, labels, out, attributes, resolution, epochs, batch, lr, seed, device, no_progress):
    """Train a compact CNN attribute classifier (one logit per attribute) and print held-out accuracy."""
    _, table = run_classifier_training(data, labels, out, attributes=attributes, resolution=resolution, epochs=epochs,
                                       batch_size=batch, lr=lr, seed=seed, device=resolve_device(device),
                                       progress=not no_progress)
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo(f"mean held-out accuracy {table.accuracy.mean():.3f}; wrote {out}")
