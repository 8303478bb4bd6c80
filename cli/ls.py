"""`stylegan-metrics ls` and `stylegan-metrics train-classifier`."""

from __future__ import annotations

import click

from stylegan_core import ranks
from stylegan_core.files import atomic_write
from stylegan_metrics.metrics.ls import LinearSeparability
from stylegan_metrics.networks.classifier import load_classifier, train_classifier as run_classifier_training

from .launch import run_options, state_dir_for
from .options import (FiniteFloat, batch_option, ckpt_option, classifier_option, device_option, no_progress_option,
                      num_option, resolve_device, run_metric_command, seed_option)

attributes_option = click.option("--attributes", default="40", show_default=True,
                                 help="The first N attributes (in the classifier's order) or a comma-separated list of names.")


@click.command()
@ckpt_option
@classifier_option(required=True)
@attributes_option
@click.option("--space", type=click.Choice(["z", "w", "both"]), default="both", show_default=True)
@num_option(200_000)
@click.option("--keep", type=FiniteFloat(0, 1, min_open=True), default=0.5, show_default=True,
              help="Fraction of most confident samples kept per attribute.")
@click.option("--svm", type=click.Choice(["sklearn", "torch"]), default="sklearn", show_default=True,
              help="SVM back end: scikit-learn LinearSVC (reference) or the batched torch solver.")
@click.option("--details", "details_path", type=click.Path(dir_okay=False), default=None,
              help="Write the per-attribute table to this CSV file.")
@batch_option
@seed_option
@run_options()
def ls(ckpt, classifier, attributes, space, num, keep, svm, details_path, batch, seed, device, out, state_dir,
       chunk_size, no_progress):
    """Linear separability (StyleGAN1): attribute classifier, linear SVMs, conditional entropy."""
    metric = LinearSeparability("ls", num=num or 200_000, keep=keep, attributes=attributes, space=space, svm=svm)
    [result] = run_metric_command(ckpt, [metric], device=device, out=out, state_dir=state_dir_for(state_dir, out, "ls"),
                                  classifier=load_classifier(classifier), batch_size=batch, seed=seed,
                                  progress=not no_progress, chunk_size=chunk_size)
    if not ranks.is_main():
        return
    if details_path:
        with atomic_write(details_path) as f:
            result.details.to_csv(f, index=False)
    table = result.details.pivot(index="attribute", columns="space", values="entropy_bits")
    click.echo(table.loc[result.params["attributes"]].to_string(float_format=lambda v: f"{v:.4f}"))


@click.command("train-classifier")
@click.option("--data", required=True, type=click.Path(), help="Image folder or zip.")
@click.option("--labels", required=True, type=click.Path(dir_okay=False),
              help="list_attr_celeba.txt (-1/1) or dataset.json with per-image label lists.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Classifier checkpoint to write.")
@attributes_option
@click.option("--resolution", type=click.IntRange(min=8), default=64, show_default=True)
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
