"""`stylegan-metrics report`: result lines (ours, NVIDIA's) as one table: csv, parquet, json, markdown, html, latex."""

from __future__ import annotations

import sys

import click

from stylegan_core.errors import InputError
from stylegan_metrics.report import FORMATS, fit_to_width, plot_results, read_results, terminal_width, write_report


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="markdown", show_default=True,
              help="Table format.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the table to this file (atomically); default: stdout. Required for parquet.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Also draw metric-vs-kimg curves into this PNG (needs two or more snapshots).")
@click.option("--digits", type=click.IntRange(min=1), default=None,
              help="Significant digits in markdown, html and latex (default: every digit).")
@click.option("--wide", is_flag=True,
              help="Markdown on a terminal: every column and whole values (default: fitted to the terminal's width, "
                   "long values cut with an ellipsis). Files and pipes always get everything.")
def report(paths, fmt, out, plot, digits, wide) -> None:
    """Merge JSONL result files or folders of them (every *.jsonl inside) into one row per snapshot.

    A failed --plot comes after the table: the table is printed (or written), then one error line, exit 2."""
    if fmt == "parquet" and out is None:
        raise InputError("the parquet format is binary: give an output file (--out FILE.parquet)")
    frame = read_results(paths)
    if fmt == "markdown" and out is None and not wide and stdout_is_terminal():
        click.echo(fit_to_width(frame, terminal_width(), digits=digits), nl=False)
    else:
        text = write_report(frame, fmt, out, digits=digits)
        if text is None:
            click.echo(f"wrote {out} ({len(frame)} rows, {frame.shape[1]} columns)", err=True)
        else:
            click.echo(text, nl=False)
    if plot:
        plot_results(frame, plot)
        click.echo(f"wrote {plot}", err=True)


def stdout_is_terminal() -> bool:
    """Whether the table goes to a terminal (not to a file or a pipe)."""
    return sys.stdout.isatty()
