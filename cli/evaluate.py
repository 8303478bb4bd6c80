"""`stylegan-metrics evaluate`: several metrics by NVIDIA's names in one pass over the generated samples, through
`stylegan_metrics.evaluate` (its name rules, refusals and defaults)."""

from __future__ import annotations

import click

import stylegan_metrics
from stylegan_metrics import metrics as registry
from stylegan_metrics.networks.classifier import load_classifier

from .launch import state_dir_for
from .options import (batch_option, check_source, classifier_option, cov_option, data_option, features_option,
                      generator_source, precision_option, run_on_generator, run_options, seed_option,
                      similarity_option, truncation_option, weights_option)


def metrics_help() -> str:
    """--metrics' help: every registered family's example names, read from the registry when help is shown."""
    names = ", ".join(name for family in registry.FAMILIES for name in family.examples)
    return (f"Comma-separated metric names: {names}; counts may change (fid10k_full, ppl2500_wend, ls10k), other "
            "options take a suffix (fid50k_full_unbiased, ppl_wend_eps0.001, ls10k_keep0.25; see docs/metrics.md). "
            "With --gen, fid, kid, pr, dc and is use all of its images.")


class MetricsOption(click.Option):
    """--metrics, whose help lists the registry's names as they are when --help is shown."""

    def get_help_record(self, ctx: click.Context):
        self.help = metrics_help()
        return super().get_help_record(ctx)


@click.command()
@generator_source
@click.option("--metrics", "names", required=True, cls=MetricsOption, help="(the registry's names)")
@data_option(required=False)
@classifier_option(required=False)
@click.option("--attributes", default="40", show_default=True,
              help="Linear separability: the first N attributes (in the classifier's order) or a comma-separated list "
                   "of names.")
@features_option
@similarity_option
@weights_option
@cov_option(None)
@batch_option(32)
@click.option("--feature-batch", type=click.IntRange(min=1), default=None,
              help="Generated images per feature-network call (default: --batch); larger than --batch joins "
                   "generator batches, which can be faster on a GPU. Results do not depend on it on the CPU (on a "
                   "GPU, kernels chosen by batch shape may change the last bits, as with --batch).")
@seed_option
@truncation_option
@precision_option
@run_options(workers=True)
def evaluate(ckpt, gen, class_index, names, data, classifier, attributes, features, similarity, weights, cov, batch,
             feature_batch, seed, truncation_psi, precision, device, out, state_dir, chunk_size, workers,
             no_progress) -> None:
    """Several metrics in one call: each generated image is made once for every metric that looks at it."""
    check_source(ckpt, gen)
    registry.build_metrics(names, gen=gen, cov=cov, truncation_psi=truncation_psi, attributes=attributes)  # evaluate's own
    # name rules, applied before the generator and classifier load; evaluate below applies them again
    state = state_dir_for(state_dir, out, "evaluate")
    attribute_classifier = load_classifier(classifier) if classifier else None
    run_on_generator(ckpt, gen, lambda G, dev: stylegan_metrics.evaluate(
        G, names, data=data, features=features, similarity=similarity, weights=weights,
        classifier=attribute_classifier, seed=seed, batch_size=batch, device=dev, progress=not no_progress,
        state_dir=state, chunk_size=chunk_size, precision=precision, truncation_psi=truncation_psi, cov=cov,
        attributes=attributes, workers=workers, out=out, snapshot_pkl=str(ckpt or gen), gen=gen,
        class_index=class_index, feature_batch_size=feature_batch), device=device, out=out)
