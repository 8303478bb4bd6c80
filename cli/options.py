"""Options shared by several commands, so each is spelled and documented once."""

from __future__ import annotations

import contextlib
import math
import warnings

import click

from stylegan_core import ranks
from stylegan_core.errors import InputError
from stylegan_metrics.engine.metric import MetricWarning
from stylegan_metrics.engine.device import resolve_device  # noqa: F401  (re-exported for the commands)


class FiniteFloat(click.FloatRange):
    """A float within optional bounds that is neither NaN nor infinite (click's FloatRange lets NaN through)."""

    name = "finite float"

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()  # no bounds: no "x<=None"

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value} is not a finite number.", param, ctx)
        return value


MAX_SEED = 2**32 - 1  # NVIDIA's seeds are numpy RandomState seeds

ckpt_option = click.option("--ckpt", "ckpt", required=True, type=click.Path(dir_okay=False),
                           help="Generator checkpoint: this tool's .pt, an NVIDIA .pkl or a rosinality .pt.")
source_options = [  # the feature metrics' generated side: a checkpoint, or images / statistics given instead
    click.option("--ckpt", "ckpt", default=None, type=click.Path(dir_okay=False),
                 help="Generator checkpoint: this tool's .pt, an NVIDIA .pkl (StyleGAN2-ADA, StyleGAN3, TensorFlow) or "
                      "a rosinality .pt."),
    click.option("--gen", default=None, type=click.Path(),
                 help="Instead of --ckpt: generated images as a folder or zip (FID also takes a statistics .npz)."),
    click.option("--class", "class_index", type=click.IntRange(min=0), default=None,
                 help="Conditional generators: this class for every sample (default: labels drawn from --data)."),
]


def generator_source(command):
    """--ckpt, --gen and --class on a command."""
    for option in reversed(source_options):
        command = option(command)
    return command
batch_option = click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Batch size.")
seed_option = click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                           help="Random seed.")
device_option = click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available).")
truncation_option = click.option("--truncation", "truncation_psi", type=FiniteFloat(), default=1.0, show_default=True,
                                 help="Truncation psi (1 = none).")
no_progress_option = click.option("--no-progress", is_flag=True, help="Hide progress bars.")
weights_option = click.option("--weights", type=click.Path(dir_okay=False), default=None,
                              help="Weights file of the feature network (default: cache or download).")
out_jsonl_option = click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
                                help="Append the result as one JSON line to this file (new, empty, or holding only "
                                     "result lines; checked before the work).")
precision_option = click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32",
                                show_default=True, help="Arithmetic of the feature/similarity network (fp32: "
                                "comparable numbers; tf32, bf16: faster on GPUs, see the README's deviations).")
workers_option = click.option("--workers", type=click.IntRange(min=0), default=None,
                              help="Processes decoding reference images (default: up to 8 on a GPU, 0 on the CPU).")
num_option = click.option("--num", type=click.IntRange(min=2), help="Number of generated samples.")


def join_process_group(device: str | None):
    """This process's device: `device` resolved and, when torchrun (or --gpus) started us, the process group
    joined with this rank on its own GPU. Metric commands call it before loading the generator."""
    return ranks.init_from_env(resolve_device(device))


def print_results(results) -> None:
    """One line per result (rank 0 only); `--out` lines were appended by the engine before its state went."""
    if ranks.is_main():
        for result in results:
            click.echo(str(result))


def check_source(ckpt: str | None, gen: str | None) -> None:
    """One generated side: --ckpt or --gen, one line naming what is missing or conflicting."""
    if ckpt is None and gen is None:
        raise InputError("give --ckpt (a generator) or --gen (generated images as a folder or zip): neither was given")
    if ckpt is not None and gen is not None:
        raise InputError("give --ckpt (a generator) or --gen (generated images), not both: with --gen the images "
                         "are the generated side")


@contextlib.contextmanager
def metric_warnings_as_lines():
    """MetricWarnings (weak scores) printed as one 'warning: ...' line each on stderr, when raised; other warnings
    as Python prints them."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, MetricWarning):
                click.echo(f"warning: {message}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)
        warnings.showwarning = show
        yield


def run_metric_command(ckpt: str | None, metrics, *, device: str | None, out: str | None, state_dir, gen=None,
                       **options):
    """What every metric command does: join the group, load G on this rank's device, run the metrics on the
    engine (results appended to `out` before the saved state goes), print them; returns the results."""
    from stylegan_core.formats.checkpoint import load_generator
    from stylegan_metrics.engine.runner import run_metrics
    from stylegan_metrics.result import check_results_file

    check_source(ckpt, gen)
    dev = join_process_group(device)  # each rank on its own GPU before G is loaded
    if out is not None and ranks.is_main():
        check_results_file(out)  # before the generator is loaded: a file of other content is refused as it is
    G = load_generator(ckpt, device=dev) if ckpt is not None else None
    with metric_warnings_as_lines():
        results = run_metrics(G, metrics, device=dev, out=out, snapshot_pkl=str(ckpt or gen), state_dir=state_dir,
                              gen=gen, **options)
    print_results(results)
    return results
