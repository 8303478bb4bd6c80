"""Options shared by several commands, so each is spelled and documented once."""

from __future__ import annotations

import contextlib
import math
import os
import warnings

import click

from stylegan_core import ranks
from stylegan_core.errors import InputError
from stylegan_metrics.engine.metric import MetricWarning
from stylegan_metrics.engine.device import resolve_device  # noqa: F401  (re-exported for the commands)
from stylegan_metrics.engine.sampling import MAX_TRUNCATION_PSI
from stylegan_metrics.networks.registry import FEATURE_NETWORKS, SIMILARITY_NETWORKS
from stylegan_metrics.networks.toyfaces_nets import BUNDLED_NAME, bundled_files


class FiniteFloat(click.FloatRange):
    """A float within optional bounds that is neither NaN nor infinite (click's FloatRange lets NaN through)."""

    name = "finite float"

    def _describe_range(self) -> str:
        return "" if self.min is None and self.max is None else super()._describe_range()  # no bounds: no "x<=None"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):  # before the bounds: inf is "not finite", not "out of range"
            self.fail(f"{number} is not a finite number.", param, ctx)
        return super().convert(value, param, ctx)


class NetworkFile(click.Path):
    """A path, or the name `toyfaces` for the bundled toyfaces network of this kind ('generator', 'classifier').
    A file or folder called `toyfaces` in the working directory makes the bare name ambiguous: refused (write
    ./toyfaces for the file)."""

    def __init__(self, kind: str, **path_options):
        super().__init__(**path_options)
        self.kind = kind

    def convert(self, value, param, ctx):
        if value != BUNDLED_NAME:
            return super().convert(value, param, ctx)
        if os.path.lexists(value):
            self.fail(f"'{BUNDLED_NAME}' names the bundled toyfaces {self.kind}, and a file '{BUNDLED_NAME}' exists "
                      f"here too: write ./{BUNDLED_NAME} for the file, or rename it", param, ctx)
        return str(bundled_files()[self.kind])


MAX_SEED = 2**32 - 1  # NVIDIA's seeds are numpy RandomState seeds
BUNDLED_GENERATOR = f"{BUNDLED_NAME} for the bundled toyfaces generator"

ckpt_option = click.option("--ckpt", "ckpt", required=True, type=NetworkFile("generator", dir_okay=False),
                           help=f"Generator checkpoint: this tool's .pt, an NVIDIA .pkl or a rosinality .pt; "
                                f"{BUNDLED_GENERATOR}.")
source_options = [  # the feature metrics' generated side: a checkpoint, or images / statistics given instead
    click.option("--ckpt", "ckpt", default=None, type=NetworkFile("generator", dir_okay=False),
                 help="Generator checkpoint: this tool's .pt, an NVIDIA .pkl (StyleGAN2-ADA, StyleGAN3, TensorFlow) or "
                      f"a rosinality .pt; {BUNDLED_GENERATOR}."),
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
truncation_option = click.option("--truncation", "truncation_psi",
                                 type=FiniteFloat(-MAX_TRUNCATION_PSI, MAX_TRUNCATION_PSI), default=1.0,
                                 show_default=True, help="Truncation psi (1 = none, 0 = the average w).")
no_progress_option = click.option("--no-progress", is_flag=True, help="Hide progress bars.")
weights_option = click.option("--weights", type=click.Path(dir_okay=False), default=None,
                              help="Weights file of the network: the feature network (--features) of fid and stats, "
                                   "the similarity network (--similarity) of ppl (default: cache or download).")
out_jsonl_option = click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
                                help="Append the result as one JSON line to this file (new, empty, or holding only "
                                     "result lines; checked before the work).")
precision_option = click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32",
                                show_default=True, help="Arithmetic of the feature/similarity network (fp32: "
                                "comparable numbers; tf32, bf16: faster on GPUs, with the deviations measured in "
                                "docs/networks.md, section Precision).")
workers_option = click.option("--workers", type=click.IntRange(min=0), default=None,
                              help="Processes decoding reference images (default: up to 8 on a GPU, 0 on the CPU).")


def num_option(default: int | None, *, shown: str | None = None, what: str = "generated samples"):
    """--num with its default in --help (`shown` when the default depends on other options); `what` it counts."""
    return click.option("--num", type=click.IntRange(min=2), default=default,
                        help=f"Number of {what} (default: {shown or f'{default:,}'}).")


def classifier_option(*, required: bool):
    """--classifier: an attribute classifier file or folder, or the bundled one by name."""
    return click.option("--classifier", required=required, type=NetworkFile("classifier"), default=None,
                        help="Attribute classifier (linear separability): a checkpoint, a folder of NVIDIA's 40 "
                             f"celebahq-classifier-XX-*.pkl files, or {BUNDLED_NAME} for the bundled toyfaces "
                             "classifier.")


def parse_weights(values: tuple[str, ...]) -> str | dict[str, str] | None:
    """--weights of several networks: ('a.pth',) -> 'a.pth'; ('inception-v3=a.pth', 'lpips-vgg16=b.pth') ->
    {name: path}; () -> None. A value whose text before '=' is not a network name is a path only if that file
    exists; otherwise the message says which part is wrong."""
    if not values:
        return None
    known = {**FEATURE_NETWORKS, **SIMILARITY_NETWORKS}
    names = ", ".join(sorted(known))
    named: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or (name not in known and os.path.isfile(value)):
            if len(values) > 1:
                raise click.BadParameter(f"{value!r}: with several files, name each network: NETWORK=PATH "
                                         f"(networks: {names})", param_hint="--weights")
            return value
        if name not in known:
            raise click.BadParameter(f"{value!r}: {name!r} before '=' is not a network name (networks: {names}); "
                                     f"give NETWORK=PATH, or PATH alone", param_hint="--weights")
        if not path:
            raise click.BadParameter(f"{value!r}: no file after '{name}='", param_hint="--weights")
        if name in named:
            raise click.BadParameter(f"{name} is given twice", param_hint="--weights")
        named[name] = path
    return named


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
