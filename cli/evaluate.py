"""`stylegan-metrics evaluate`: several metrics by NVIDIA's names in one pass over the generated samples."""

from __future__ import annotations

import click

from stylegan_metrics.metrics import build_metrics
from stylegan_metrics.networks.classifier import load_classifier
from stylegan_metrics.networks.registry import FEATURE_NETWORKS, SIMILARITY_NETWORKS

from .launch import run_options, state_dir_for
from .options import (batch_option, check_source, classifier_option, generator_source, parse_weights,
                      precision_option, run_metric_command, seed_option, truncation_option)


@click.command()
@generator_source
@click.option("--metrics", "names", required=True,
              help="Comma-separated metric names: fid50k_full, fid50k, kid50k_full, kid50k, pr50k3_full, pr50k3, is50k, "
                   "ppl_zfull, ppl_wfull, ppl_zend, ppl_wend, ppl2_wend, eqt50k_int, eqt50k_frac, eqr50k, ls; counts may "
                   "change (fid10k_full, ppl2500_wend, ls10k), other options take a suffix (fid50k_full_unbiased, "
                   "ppl_wend_eps0.001, ls10k_keep0.25; see docs/metrics.md). With --gen, fid, kid, pr and is use "
                   "all of its images.")
@click.option("--data", type=click.Path(), default=None,
              help="Reference images (folder or zip) for FID, KID, PR; FID also takes a statistics .npz.")
@classifier_option(required=False)
@click.option("--attributes", default="40", show_default=True,
              help="Linear separability: the first N attributes (in the classifier's order) or a comma-separated list "
                   "of names.")
@click.option("--features", type=click.Choice(sorted(FEATURE_NETWORKS)), default="inception-v3", show_default=True,
              help="Feature network of FID.")
@click.option("--similarity", type=click.Choice(sorted(SIMILARITY_NETWORKS)), default="lpips-vgg16",
              show_default=True, help="Perceptual distance of PPL.")
@click.option("--weights", "weights", multiple=True, metavar="[NETWORK=]PATH",
              help="Weights file of a standard network; with several networks, name each: "
                   "--weights inception-v3=a.pth --weights lpips-vgg16=b.pth.")
@click.option("--cov", type=click.Choice(["biased", "unbiased"]), default=None,
              help="FID covariance; default NVIDIA's 1/N (biased). unbiased (N - 1, StyleGAN1) adds '_unbiased' to "
                   "the result name.")
@batch_option
@click.option("--feature-batch", type=click.IntRange(min=1), default=None,
              help="Generated images per feature-network call (default: --batch); larger than --batch joins "
                   "generator batches, which can be faster on a GPU. Results do not depend on it on the CPU (on a "
                   "GPU, kernels chosen by batch shape may change the last bits, as with --batch).")
@seed_option
@truncation_option
@precision_option
@run_options(workers=True)
def evaluate(ckpt, gen, class_index, names, data, classifier, attributes, features, similarity, weights, cov, batch, feature_batch,
             seed, truncation_psi, precision, device, out, state_dir, chunk_size, workers, no_progress) -> None:
    """Several metrics in one call: each generated image is made once for every metric that looks at it."""
    check_source(ckpt, gen)
    metrics = build_metrics(names, gen=gen, cov=cov, truncation_psi=truncation_psi,  # as stylegan_metrics.evaluate
                            attributes=attributes)
    run_metric_command(ckpt, metrics, device=device, out=out, state_dir=state_dir_for(state_dir, out, "evaluate"),
                       gen=gen, class_index=class_index, data=data, classifier=load_classifier(classifier) if classifier else None,
                       features=features, similarity=similarity, weights=parse_weights(weights),
                       batch_size=batch, seed=seed, precision=precision, chunk_size=chunk_size, workers=workers,
                       progress=not no_progress, feature_batch_size=feature_batch)
