"""Options shared by several commands, so each is spelled and documented once."""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from typing import Callable

import click

from stylegan_core import ranks
from stylegan_core.errors import InputError
from stylegan_metrics.engine.metric import MetricWarning
from stylegan_metrics.engine.device import resolve_device  # noqa: F401  (re-exported for the commands)
from stylegan_metrics.engine.sampling import MAX_TRUNCATION_PSI
from stylegan_metrics.engine.state import DEFAULT_CHUNK
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


def ckpt(*, required: bool):
    """--ckpt: a generator checkpoint, or the bundled toyfaces generator by name (required unless --gen may
    give the generated side instead)."""
    return click.option("--ckpt", "ckpt", required=required, default=None,
                        type=NetworkFile("generator", dir_okay=False),
                        help="Generator checkpoint: this tool's .pt, an NVIDIA .pkl (StyleGAN2-ADA, StyleGAN3, "
                             f"TensorFlow) or a rosinality .pt; {BUNDLED_NAME} for the bundled toyfaces generator.")


ckpt_option = ckpt(required=True)
class_option = click.option("--class", "class_index", type=click.IntRange(min=0), default=None,
                            help="Conditional generators: this class for every sample (PPL: pair) instead of the "
                                 "labels drawn from --data.")
source_options = [  # the feature metrics' generated side: a checkpoint, or images / statistics given instead
    ckpt(required=False),
    click.option("--gen", default=None, type=click.Path(),
                 help="Instead of --ckpt: generated images as a folder or zip (FID also takes a statistics .npz)."),
    class_option,
]


def generator_source(command):
    """--ckpt, --gen and --class on a command."""
    for option in reversed(source_options):
        command = option(command)
    return command


def data_option(*, required: bool):
    """--data: the dataset, whichever part of it a command reads."""
    return click.option("--data", required=required, type=click.Path(), default=None,
                        help="Dataset: image folder or zip (NVIDIA dataset_tool layout). The reference images of "
                             "FID, KID and PR (FID also takes a statistics .npz), the images stats summarises, and "
                             "for a conditional generator the labels (dataset.json) that sample i gets, drawn by "
                             "index as in every metric.")


def batch_option(default: int):
    """--batch with the command's default (ppl's pairs are two images each: half the others')."""
    return click.option("--batch", type=click.IntRange(min=1), default=default, show_default=True,
                        help="Batch size: images per network call (PPL: interpolation pairs).")


seed_option = click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                           help="Random seed.")
device_option = click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available).")
truncation_option = click.option("--truncation", "truncation_psi",
                                 type=FiniteFloat(-MAX_TRUNCATION_PSI, MAX_TRUNCATION_PSI), default=1.0,
                                 show_default=True, help="Truncation psi (1 = none, 0 = the average w).")
no_progress_option = click.option("--no-progress", is_flag=True, help="Hide progress bars.")
features_option = click.option("--features", type=click.Choice(sorted(FEATURE_NETWORKS)), default="inception-v3",
                               show_default=True,
                               help="Feature network of FID, KID and IS and of the statistics stats writes (PR and "
                                    "density/coverage always use vgg16-fc2); toyfaces: the bundled domain network.")
similarity_option = click.option("--similarity", type=click.Choice(sorted(SIMILARITY_NETWORKS)),
                                 default="lpips-vgg16", show_default=True,
                                 help="Perceptual distance of PPL; toyfaces-lpips: the bundled domain network.")
weights_option = click.option("--weights", "weights", multiple=True, metavar="[NETWORK=]PATH",
                              callback=lambda ctx, param, values: parse_weights(values),
                              help="Weights file of a standard network instead of the cache or a download: PATH "
                                   "alone when one network needs a file, or NETWORK=PATH naming it (NETWORK: a "
                                   "--features or --similarity name, or vgg16-fc2 for pr and dc); with several "
                                   "networks, name each: --weights inception-v3=a.pth --weights lpips-vgg16=b.pth. "
                                   "See docs/networks.md.")
COV_HELP = ("FID covariance: biased (1/N, NVIDIA stylegan2-ada) or unbiased (N - 1, StyleGAN1; the result name "
            "ends in _unbiased). Default by command: evaluate follows NVIDIA's names (1/N; a name ending in "
            "_unbiased asks for N - 1), fid follows StyleGAN1 and fid() (N - 1).")


def cov_option(default: str | None):
    """--cov: one help text, the command family's default (None: each metric name's own covariance)."""
    return click.option("--cov", type=click.Choice(["biased", "unbiased"]), default=default, help=COV_HELP)


out_jsonl_option = click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
                                help="Append the result as one JSON line to this file (new, empty, or holding only "
                                     "result lines; checked before the work).")
precision_option = click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32",
                                show_default=True, help="Arithmetic of the feature/similarity network (fp32: "
                                "comparable numbers; tf32, bf16: faster on GPUs, with the deviations measured in "
                                "docs/networks.md, section Precision).")
workers_option = click.option("--workers", type=click.IntRange(min=0), default=None,
                              help="Processes decoding reference images (default: up to 8 on a GPU, 0 on the CPU).")
state_dir_option = click.option("--state-dir", type=click.Path(file_okay=False), default=None,
                                help="Save finished chunks here and resume from them when the same command runs "
                                     "again (default with --out a file: beside it, OUT's name + '.<command>-<hash "
                                     "of the options>-state').")
chunk_size_option = click.option("--chunk-size", type=click.IntRange(min=1), default=DEFAULT_CHUNK, show_default=True,
                                 help="Samples per chunk, the unit of sharding and of saved state. With many GPUs "
                                      "and few samples, smaller chunks share the work out more evenly (an FID "
                                      "chunk's state file holds 2048x2048 float64 sums: 32 MiB).")
gpus_option = click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True,
                           help="Processes to run, one GPU each (with --device cpu: CPU processes, gloo). "
                                "Under torchrun, leave it out.")


def run_options(*, workers: bool = False):
    """The options every metric command ends with: --device, --out, --state-dir, --chunk-size, [--workers,]
    --no-progress and --gpus (in that order in --help)."""
    from .launch import distributable

    stack = [device_option, out_jsonl_option, state_dir_option, chunk_size_option,
             *([workers_option] if workers else []), no_progress_option]

    def decorate(command):
        command = distributable(command)
        for option in reversed(stack):
            command = option(command)
        return command
    return decorate


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


def weights_of(weights: str | dict[str, str] | None, network: str, option: str) -> str | None:
    """The weights file of a command that runs one standard network (`network`, chosen by `option`): PATH as
    given, or NETWORK=PATH naming that network; another network's name is refused, not silently unused."""
    if not isinstance(weights, dict):
        return weights
    other = sorted(set(weights) - {network})
    if other:
        raise InputError(f"--weights {other[0]}=...: this command runs {network} ({option}) and no {other[0]}; "
                         f"give --weights {network}=PATH or PATH alone")
    return weights.get(network)


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


def run_on_generator(ckpt: str | None, gen: str | None, run: Callable, *, device: str | None, out: str | None):
    """What every metric command does: join the group, load G on this rank's device, `run(G, device)` (the engine
    appends results to `out` before the saved state goes), print the results; returns them."""
    from stylegan_core.formats.checkpoint import load_generator
    from stylegan_metrics.engine.reductions import on_main
    from stylegan_metrics.result import check_results_file

    check_source(ckpt, gen)
    dev = join_process_group(device)  # each rank on its own GPU before G is loaded
    if out is not None:  # before the generator is loaded: a file of other content is refused as it is, by the
        on_main(lambda: check_results_file(out))  # main rank for every rank (none is left waiting)
    G = load_generator(ckpt, device=dev) if ckpt is not None else None
    with metric_warnings_as_lines():
        results = run(G, dev)
    print_results(results)
    return results


def run_metric_command(ckpt: str | None, metrics, *, device: str | None, out: str | None, state_dir, gen=None,
                       **options):
    """One command's built metrics on the engine (see run_on_generator); returns the results. `options`: the
    fields of EvaluationOptions the command sets."""
    from stylegan_metrics.engine.options import EvaluationOptions
    from stylegan_metrics.engine.runner import run_metrics

    return run_on_generator(ckpt, gen, lambda G, dev: run_metrics(G, metrics, EvaluationOptions(
        device=dev, out=out, snapshot_pkl=str(ckpt or gen), state_dir=state_dir, gen=gen, **options)),
        device=device, out=out)
