"""`stylegan-metrics train`: train a StyleGAN on an image folder or zip."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import click

from stylegan_core import ranks
from stylegan_core.errors import InputError
from stylegan_core.training.progressive import parse_per_resolution
from stylegan_core.training.trainer import TrainingDiverged, TrainingOptions, train as run_training

from .launch import distributable
from .options import FiniteFloat, device_option, no_progress_option, resolve_device, seed_option


@click.command()
@click.option("--data", required=True, type=click.Path(), help="Image folder (recursive) or zip (NVIDIA dataset_tool layout).")
@click.option("--resolution", required=True, type=click.IntRange(min=4), help="Training resolution, a power of two.")
@click.option("--kimg", type=FiniteFloat(min=0, min_open=True), default=1000, show_default=True,
              help="Training length in thousands of real images.")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Minibatch size [default: 32; with --progressive 4 (NVIDIA's minibatch_base), used at the "
              "resolutions --minibatch-per-res does not list].")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False), help="Run directory for snapshots.")
@click.option("--resume", is_flag=True, help="Continue from the newest snapshot in --out.")
@click.option("--lr", type=FiniteFloat(), default=None,
              help="Adam learning rate [default: 0.002; with --progressive 0.001 (NVIDIA's G_lrate_base), used at "
              "the resolutions --lr-per-res does not list].")
@click.option("--gamma", "r1_gamma", type=FiniteFloat(min=0), default=10.0, show_default=True, help="R1 weight.")
@click.option("--r1-interval", type=click.IntRange(min=1), default=None,
              help="Lazy R1 interval [default: 1 for stylegan, 16 for stylegan2].")
@click.option("--mixing", "style_mixing", type=FiniteFloat(0, 1), default=0.9, show_default=True,
              help="Style-mixing probability.")
@click.option("--ema-kimg", type=FiniteFloat(min=0, min_open=True), default=10.0, show_default=True,
              help="Generator EMA half-life in kimg.")
@click.option("--ema-rampup", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Ramp the EMA half-life up as rampup * kimg seen (stylegan2-ada); off by default.")
@click.option("--mirror", "xflip", is_flag=True, help="Add x-flipped copies of the data.")
@click.option("--snap", "snap_kimg", type=FiniteFloat(min=0, min_open=True), default=50, show_default=True,
              help="Snapshot interval in kimg. Snapshots are named by whole kimg (network-snapshot-000004.pt), with "
              "the images past it when a snapshot of that kimg exists (network-snapshot-000004_512.pt); none is "
              "ever replaced.")
@click.option("--tick", "tick_kimg", type=FiniteFloat(min=0, min_open=True), default=4, show_default=True,
              help="Status line (stdout, log.txt) and stats.jsonl record every this many kimg; without a progress "
              "bar also a progress line (kimg, img/s, ETA) whenever 30 s pass without a line.")
@click.option("--metrics", default="", help="Metrics computed at every snapshot, comma-separated NVIDIA names "
              "(fid50k_full, kid50k_full, ppl_wend, ...), each appended to OUT/metric-NAME.jsonl; names, networks, "
              "weights and reference are checked before training [default: none].")
@click.option("--metrics-data", type=click.Path(), default=None,
              help="Reference data of --metrics: image folder, zip or statistics .npz [default: --data].")
@click.option("--metrics-features", default="inception-v3", show_default=True,
              help="FID's feature network for --metrics (toyfaces: the bundled domain network).")
@click.option("--metrics-weights", type=click.Path(dir_okay=False), default=None,
              help="Weights file of the metrics' network [default: the cache, downloaded if allowed].")
@click.option("--tensorboard", is_flag=True, help="Also write TensorBoard events to OUT (needs the tensorboard package).")
@click.option("--z-dim", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--w-dim", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--mapping-layers", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--cbase", "channel_base", type=click.IntRange(min=1), default=None,
              help="Channels at resolution r are min(cbase // r, cmax) [default: 16384 stylegan, 32768 stylegan2].")
@click.option("--cmax", "channel_max", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--arch", type=click.Choice(["stylegan", "stylegan2"]), default="stylegan", show_default=True,
              help="stylegan: AdaIN (2019); stylegan2: modulated convs, skip G, residual D, lazy R1 + path length reg.")
@click.option("--pl-weight", type=FiniteFloat(min=0), default=None,
              help="Path length regularization weight (stylegan2) [default: 2].")
@click.option("--pl-interval", type=click.IntRange(min=1), default=4, show_default=True,
              help="Lazy path length regularization interval (stylegan2).")
@click.option("--progressive", is_flag=True,
              help="Progressive growing (stylegan only): start at --lod-initial-resolution and fade in each doubling "
              "as NVIDIA's StyleGAN schedule.")
@click.option("--lod-initial-resolution", type=click.IntRange(min=4), default=8, show_default=True,
              help="--progressive: resolution trained first.")
@click.option("--lod-training-kimg", type=FiniteFloat(min=0), default=600, show_default=True,
              help="--progressive: kimg at each resolution before the next fades in.")
@click.option("--lod-transition-kimg", type=FiniteFloat(min=0), default=600, show_default=True,
              help="--progressive: kimg of each fade-in.")
@click.option("--minibatch-per-res", default=None, metavar="RES:N,...",
              help="--progressive: minibatch per resolution, e.g. 128:16,256:8 [default: NVIDIA's single-GPU table "
              "4:128,8:128,16:128,32:64,64:32,128:16,256:8,512:4; other resolutions: --batch].")
@click.option("--lr-per-res", default=None, metavar="RES:LR,...",
              help="--progressive: learning rate of G and D per resolution [default: NVIDIA's "
              "128:0.0015,256:0.002,512:0.003,1024:0.003; other resolutions: --lr].")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="DataLoader worker processes.")
@seed_option
@device_option
@no_progress_option
@distributable
def train(data, run_dir, resume, device, workers, no_progress, metrics, metrics_data, metrics_features,
          metrics_weights, tensorboard, **options) -> None:
    """Train a StyleGAN (AdaIN, StyleGAN1 rules; --progressive: with NVIDIA's progressive growing) or, with --arch
    stylegan2, a StyleGAN2 (config F); print a status line per tick (also to OUT/log.txt and OUT/stats.jsonl);
    write snapshots with sample grids to --out."""
    resolution = options["resolution"]
    if resolution & (resolution - 1):
        raise click.BadParameter(f"{resolution} is not a power of two", param_hint="--resolution")
    for name, kind, flag in (("minibatch_per_res", int, "--minibatch-per-res"), ("lr_per_res", float, "--lr-per-res")):
        if options[name] is not None:
            options[name] = parse_per_resolution(options[name], kind, flag)
    names = [n.strip() for n in metrics.split(",") if n.strip()]
    if names:  # everything the first snapshot's evaluation would refuse, refused before the first step
        check_snapshot_metrics(names, data=metrics_data or data, features=metrics_features, weights=metrics_weights,
                               resolution=resolution, run_dir=Path(run_dir))
    on_snapshot = snapshot_metrics(names, data=metrics_data or data, features=metrics_features, weights=metrics_weights,
                                   progress=not no_progress) if names else None
    try:
        last = run_training(data, run_dir, TrainingOptions(**options), resume=resume, device=resolve_device(device),
                            workers=workers, progress=not no_progress, on_snapshot=on_snapshot, tensorboard=tensorboard)
    except TrainingDiverged as e:  # one line, status 1; the snapshots and logs stay
        if ranks.is_main():
            raise click.ClickException(str(e)) from None
        raise SystemExit(1) from None
    if ranks.is_main():
        click.echo(f"snapshot: {last}")


def snapshot_metrics(names: list[str], *, data: str, features: str, weights: str | None, progress: bool):
    """The trainer's snapshot hook: evaluate `names` on G_ema (sharded over the ranks) and append each result to
    OUT/metric-<name>.jsonl with `snapshot_pkl` relative to OUT, as NVIDIA's train.py does."""
    import stylegan_metrics

    evaluate = stylegan_metrics.evaluate

    def on_snapshot(path: Path, G_ema, kimg: float) -> dict[str, float]:
        device = next(G_ema.parameters()).device
        results = evaluate(G_ema, names, data=data, features=features, weights=weights, device=device, progress=progress)
        values = {}
        for result in results:
            result.snapshot_pkl = path.name
            if ranks.is_main():
                result.to_jsonl(path.parent / f"metric-{result.metric}.jsonl")
            values.update(result.results)
        return values

    return on_snapshot


def check_snapshot_metrics(names: list[str], *, data: str, features: str, weights: str | None, resolution: int,
                           run_dir: Path) -> None:
    """InputError, before training, for what `snapshot_metrics` would meet at the first snapshot: names (unknown,
    twice), the networks (unknown feature network, missing weights), LS (train takes no classifier), a generator
    property the metric needs (equivariance), the reference (missing; images of another size than `resolution`;
    statistics of another feature network, width or image size; statistics where images are needed) and every
    OUT/metric-<name>.jsonl (writable). Uses the metric engine's own checks; networks are built on the CPU and
    dropped."""
    import torch

    from stylegan_core.files import check_writable
    from stylegan_metrics.engine.context import Context
    from stylegan_metrics.engine.options import EvaluationOptions
    from stylegan_metrics.engine.reference_images import is_images
    from stylegan_metrics.metrics import build_metric
    from stylegan_metrics.metrics.fid import FID, check_width
    from stylegan_metrics.metrics.ls import LinearSeparability

    if len(set(names)) != len(names):
        raise InputError(f"--metrics names a metric twice: {','.join(names)}")
    for name in names:
        _as_metric_option(name, build_metric, name)
    metrics = [build_metric(name) for name in names]
    for m in metrics:
        if isinstance(m, LinearSeparability):
            raise InputError(f"--metrics {m.name}: linear separability needs an attribute classifier, which train does "
                             f"not take; run `stylegan-metrics ls` on the snapshots")
        _as_metric_option(m.name, check_writable, run_dir / f"metric-{m.name}.jsonl")
    if not Path(data).exists():
        raise InputError(f"--metrics-data {data}: no such file or folder")
    # what the engine reads of a generator before sampling: the one the options describe, not yet built
    G = SimpleNamespace(img_resolution=resolution, img_channels=3, c_dim=0)
    ctx = Context(G, torch.device("cpu"), EvaluationOptions(data=data, features=features, weights=weights,
                                                            progress=False))
    for m in metrics:
        _as_metric_option(m.name, m.prepare, ctx)  # networks and their weights; what the generator must offer
    _as_metric_option(",".join(names), ctx.check_weights_used)  # --metrics-weights that no metric reads
    readers = [m for m in metrics if m.reference_request() is not None]
    if readers and is_images(data):
        _as_metric_option(readers[0].name, ctx.reference.images)  # the engine's size rule
    else:
        for m in readers:  # statistics: the engine reads and checks them now (size, network), and their width
            _as_metric_option(m.name, m.prepare_reference, ctx)
            if isinstance(m, FID):
                _as_metric_option(m.name, check_width, str(data), m.reference, m.extractor, resolution=resolution,
                                  device=torch.device("cpu"))


def _as_metric_option(name: str, check, *args, **kwargs) -> None:
    """Run an engine check; its refusal names the metric it concerns (and train's name of the weights option)."""
    try:
        check(*args, **kwargs)
    except InputError as e:
        raise type(e)(f"--metrics {name}: {e}".replace("--weights PATH", "--metrics-weights PATH")) from None
