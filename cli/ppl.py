"""`stylegan-metrics ppl`: perceptual path length in Z and W."""

from __future__ import annotations

import click

from stylegan_metrics.metrics.ppl import path_length_metric
from .launch import state_dir_for
from .options import (FiniteFloat, batch_option, ckpt_option, class_option, data_option, num_option,
                      run_metric_command, run_options, seed_option, similarity_option, weights_of, weights_option)


@click.command()
@ckpt_option
@data_option(required=False)
@class_option
@click.option("--space", type=click.Choice(["w", "z", "both"]), default="w", show_default=True)
@click.option("--sampling", type=click.Choice(["end", "full", "both"]), default="end", show_default=True)
@num_option(100_000, what="interpolated pairs")
@click.option("--epsilon", type=FiniteFloat(min=0, min_open=True), default=1e-4, show_default=True,
              help="Step along the path; at least 6e-6 (smaller steps are below float32 resolution).")
@click.option("--no-crop", is_flag=True, help="Measure the whole image instead of the face crop.")
@click.option("--downsample", type=click.Choice(["stylegan1", "ada"]), default="stylegan1", show_default=True,
              help="Box-downsampling rule for crops above 256 px.")
@batch_option(16)
@seed_option
@similarity_option
@weights_option
@run_options()
def ppl(ckpt, data, class_index, space, sampling, num, epsilon, no_crop, downsample, batch, seed, similarity, weights,
        device, out, state_dir, chunk_size, no_progress):
    """Perceptual path length (LPIPS / epsilon^2, trimmed mean), StyleGAN1 rules (100,000 pairs; results named
    as evaluate names the same computation: ppl100k_wend, with _sg1down from 512 px where StyleGAN1's downsampling
    differs; NVIDIA's ppl_wend is --num 50000 --downsample ada)."""
    metric = path_length_metric(space=space, sampling=sampling, num_samples=num or 100_000, epsilon=epsilon,
                                crop=not no_crop, downsample=downsample)
    run_metric_command(ckpt, [metric], device=device, out=out, state_dir=state_dir_for(state_dir, out, "ppl"),
                       similarity=similarity,
                       weights=weights_of(weights, similarity, "--similarity"), batch_size=batch, seed=seed, progress=not no_progress,
                       chunk_size=chunk_size, data=data, class_index=class_index)
