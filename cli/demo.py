"""`stylegan-metrics demo`: the whole evaluation on the bundled toyfaces generator, offline."""

from __future__ import annotations

import click

from stylegan_metrics.demo import printed_table, run_demo

from .options import device_option, metric_warnings_as_lines, no_progress_option


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="demo-out", show_default=True,
              help="Folder for report.{csv,md,json}, metrics.jsonl and the figures.")
@click.option("--quick", is_flag=True, help="About a tenth of the samples (under 2 minutes on 2 CPU cores).")
@device_option
@no_progress_option
def demo(out, quick, device, no_progress) -> None:
    """FID, KID, IS, PPL (Z/W, full/end) and linear separability (Z/W, 40 attributes) of the bundled toyfaces
    generator, with figures: samples, style mixing, truncation, PPL histograms, LS entropies."""
    with metric_warnings_as_lines():  # weak-score warnings (the 5 attributes that never occur) as one line each
        table = run_demo(out, quick=quick, device=device, progress=not no_progress)
    click.echo(printed_table(table), nl=False)
    click.echo(f"report, figures and metrics.jsonl in {out}/")
