"""`stylegan-metrics fid` and `stylegan-metrics stats`."""

from __future__ import annotations

import click

from stylegan_core import ranks
from stylegan_core.files import check_output_name
from stylegan_metrics.engine.generated import gen_count
from stylegan_metrics.metrics import build_metric
from stylegan_metrics.metrics.fid import fid_name
from stylegan_metrics.reference import compute_reference_stats
from stylegan_metrics.stats import check_replaceable as check_replaceable_statistics

from .launch import distributable, state_dir_for
from .options import (batch_option, check_source, chunk_size_option, cov_option, data_option, device_option,
                      features_option, generator_source, no_progress_option, num_option, precision_option,
                      run_metric_command, run_options, seed_option, state_dir_option, truncation_option, weights_of,
                      weights_option, workers_option)


@click.command()
@generator_source
@data_option(required=True)
@num_option(None, shown="50,000; with --gen, all of its images")
@batch_option(32)
@seed_option
@truncation_option
@cov_option("unbiased")
@features_option
@weights_option
@precision_option
@run_options(workers=True)
def fid(ckpt, gen, class_index, data, num, batch, seed, truncation_psi, cov, features, weights, precision, device,
        out, state_dir, chunk_size, workers, no_progress) -> None:
    """Fréchet Inception Distance of generated images (a generator's, or a folder's) against every image of a
    dataset, or statistics."""
    check_source(ckpt, gen)
    num = num or (gen_count(gen) if gen else 50_000)  # --gen: all of its images
    metric = build_metric(fid_name(num, True, cov), truncation_psi=truncation_psi)  # the registry's name and metric
    run_metric_command(ckpt, [metric], device=device, out=out, state_dir=state_dir_for(state_dir, out, "fid"),
                       gen=gen, class_index=class_index, data=data, batch_size=batch, seed=seed, features=features,
                       weights=weights_of(weights, features, "--features"), progress=not no_progress, precision=precision, chunk_size=chunk_size,
                       workers=workers)


def edm2_metrics(ctx, param, value: str | None) -> list[str] | None:
    """--metrics of `stats`: EDM2's block names, each once."""
    from stylegan_metrics.edm2_stats import EDM2_BLOCKS

    if value is None:
        return None
    names = [n.strip() for n in value.split(",")]
    unknown = [n for n in names if n not in EDM2_BLOCKS]
    if unknown or len(set(names)) != len(names) or not names:
        raise click.BadParameter(f"{value!r}: a comma-separated list of {', '.join(EDM2_BLOCKS)}, each once")
    return names


@click.command()
@data_option(required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Statistics file to write: .npz (of --features), or .pkl in NVIDIA EDM2's layout (of --metrics).")
@click.option("--metrics", "blocks", callback=edm2_metrics, default=None,
              help="With a .pkl --out: EDM2's statistics to write, fid (inception-v3) and/or fd_dinov2 "
                   "(dinov2-vit-l14), from one pass over the images. [default: fid,fd_dinov2]")
@click.option("--max-items", type=click.IntRange(min=2), default=None, help="Use only the first N images.")
@batch_option(32)
@features_option
@weights_option
@precision_option
@device_option
@state_dir_option
@chunk_size_option
@workers_option
@no_progress_option
@distributable
def stats(data, out, blocks, max_items, batch, features, weights, precision, device, state_dir, chunk_size, workers,
          no_progress) -> None:
    """Reference statistics (mu, sigma of the features) of a dataset, saved as .npz (or EDM2's .pkl)."""
    from stylegan_metrics.edm2_stats import EDM2_BLOCKS, check_replaceable, is_edm2_stats, write_edm2_stats
    from stylegan_metrics.engine.options import EvaluationOptions
    from stylegan_metrics.reference import reference_stats_of_networks

    if is_edm2_stats(out):
        given = click.get_current_context().get_parameter_source("features")
        if given is not None and given != click.core.ParameterSource.DEFAULT:
            raise click.UsageError("--features chooses the network of a .npz; an EDM2 .pkl holds --metrics' networks "
                                   "(fid: inception-v3, fd_dinov2: dinov2-vit-l14)")
        check_output_name(out, ".pkl", "EDM2 statistics files end in .pkl", writable=ranks.is_main())
        check_replaceable(out)  # a network pickle named *.pkl is never replaced
        networks = [EDM2_BLOCKS[b] for b in blocks or ["fid", "fd_dinov2"]]
        options = EvaluationOptions(data=data, weights=weights, batch_size=batch, device=device,
                                    progress=not no_progress, state_dir=state_dir_for(state_dir, out, "stats"),
                                    precision=precision, chunk_size=chunk_size, workers=workers)
        results = reference_stats_of_networks(networks, options, max_items=max_items)
        if ranks.is_main():
            write_edm2_stats(out, results)
            click.echo(f"wrote {out} ({results[0].n} images of {results[0].resolution}x{results[0].resolution}; "
                       + "; ".join(f"{r.mu.shape[0]} {r.features} features" for r in results) + ")")
        return
    if blocks is not None:
        raise click.UsageError("--metrics chooses the blocks of an EDM2 .pkl; a .npz holds --features' statistics")
    # before the work, not after it; one process checks the place
    check_output_name(out, ".npz", "statistics files end in .npz (refusing to write another kind of file)",
                      writable=ranks.is_main())
    check_replaceable_statistics(out)  # another .npz (a user's arrays) is never replaced
    result = compute_reference_stats(data, features=features, max_items=max_items, batch_size=batch,
                                     weights=weights_of(weights, features, "--features"),
                                     device=device, progress=not no_progress,
                                     state_dir=state_dir_for(state_dir, out, "stats"), precision=precision,
                                     chunk_size=chunk_size, workers=workers)
    if ranks.is_main():
        result.save(out)
        click.echo(f"wrote {out} ({result.n} images of {result.resolution}x{result.resolution}, "
                   f"{result.mu.shape[0]} {result.features} features; resized: {result.resize})")
