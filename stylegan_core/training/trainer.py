"""The StyleGAN training loop: per step the architecture's updates and the generator EMA (with progressive growing:
the schedule's level of detail first), per tick a status line and stats.jsonl record (without a progress bar also
progress lines between them), snapshots that never replace a file (with a hook for metrics), exact resume, and a
clear stop when training diverges."""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from stylegan_core import ranks
from stylegan_core.allocator import keep_freed_memory
from stylegan_core.data.datasets import ImageDataset
from stylegan_core.data.images import atomic_save_png, from_uint8, make_grid, to_uint8
from stylegan_core.errors import InputError
from stylegan_core.formats.checkpoint import build_module, load_checkpoint, save_checkpoint
from stylegan_core.networks.discriminator import Discriminator
from stylegan_core.networks.generator import Generator
from stylegan_core.networks.residual_discriminator import ResidualDiscriminator
from stylegan_core.training.data_order import IndexStream, step_seed
from stylegan_core.training.lazy_regularization import make_optimizers, stylegan2_phases
from stylegan_core.training import logs
from stylegan_core.training.logs import LOSS_COLUMNS, Heartbeat, Tick, TrainingLog, status_line
from stylegan_core.training.options import TrainingOptions
from stylegan_core.training.progressive import Phase, check_minibatches, new_level, process_reals, training_phase
from stylegan_core.training.snapshots import (find_latest_snapshot, grid_name, publish, remove_stale_staged,
                                              snapshot_stem, staged_path)
from stylegan_core.training.stylegan1_step import stylegan_step
from stylegan_core.training.training_stats import TickStats, TrainingDiverged, nonfinite_weights, scalar
from stylegan_core.training.updates import ema_beta, sample_ws, update_ema

__all__ = ["IndexStream", "Trainer", "TrainingDiverged", "TrainingOptions", "ema_beta", "find_latest_snapshot",
           "sample_ws", "step_seed", "train"]

DISCRIMINATORS = {"stylegan": Discriminator, "stylegan2": ResidualDiscriminator}  # arch -> D class
# on_snapshot(snapshot path, G_ema, kimg) -> {result name: value} or None; called on every rank.
SnapshotHook = Callable[[Path, Generator, float], "dict[str, float] | None"]
clock: Callable[[], float] = time.monotonic  # the progress lines' clock (tests replace it)


class Trainer:
    """Holds G, G_ema, D and their optimizers; `train()` runs the loop of the StyleGAN papers."""

    def __init__(self, options: TrainingOptions, dataset: ImageDataset, run_dir: str | os.PathLike, *,
                 device: str | torch.device = "cpu", workers: int = 0):
        if dataset.resolution != options.resolution:
            raise InputError(f"dataset resolution {dataset.resolution} differs from --resolution {options.resolution}")
        if options.batch < 1 or options.r1_interval < 1:
            raise InputError("batch and r1_interval must be >= 1")
        self.options = options
        self.dataset = dataset
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.workers = workers
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(options.seed)
            self.G = Generator(**options.generator_config()).to(self.device)
            self.D = DISCRIMINATORS[options.arch](**options.discriminator_config()).to(self.device)
        self.step = 0
        self.images_seen = 0
        if options.progressive:  # start at the schedule's first level of detail
            self._set_lod(self.phase().lod)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.G_opt, self.D_opt = make_optimizers(self.G, self.D, options)
        self.pl_mean = torch.zeros([], device=self.device)  # running mean path length (stylegan2)
        self.resumed_from: Path | None = None
        self.last_snapshot: Path | None = None       # the newest snapshot of the run: written or resumed from
        self._snapshot_images: int | None = None     # images shown at it (names the next one: snapshots.py)
        self.stats = TickStats()  # per-sample loss statistics of the current tick
        self._last_minibatch = options.batch  # images in the latest step (reported per tick in progressive runs)
        self._flush_denormal = False  # set while train() flushes denormals to zero (CPU)
        self.grid_z = torch.from_numpy(np.random.RandomState(options.seed).randn(16, options.z_dim)).float()

    # ---- persistence -------------------------------------------------------------------------
    def resume(self, path: Path) -> None:
        """Continue the run stored in `path`: networks, optimizers, step; options must match. In a multi-process
        run rank 0 reads the file and sends it to the others, so other nodes need not see it."""
        data = ranks.broadcast_from_main(load_checkpoint(path) if ranks.is_main() else None)
        saved_world, world = int(data.get("world_size", 1)), ranks.world_size()
        if saved_world != world:
            warnings.warn(f"{path.name} was written by a run of {saved_world} process(es), resumed with {world}: "
                          f"training goes on, but with other random streams than the uninterrupted run", stacklevel=2)
        config = data.get("config") or {}
        if not config.get("training"):
            raise InputError(f"{path}: no training options stored; cannot resume from it")
        self.options.check_resumable(config["training"], str(path.parent))
        self.G = build_module(path, Generator, config.get("G"), data.get("G"), "G").to(self.device)
        self.G_ema = build_module(path, Generator, config.get("G"), data.get("G_ema"), "G_ema").to(self.device)
        self.G_ema.eval().requires_grad_(False)
        self.D = build_module(path, DISCRIMINATORS[self.options.arch], config.get("D"), data.get("D"), "D").to(self.device)
        self.G_opt, self.D_opt = make_optimizers(self.G, self.D, self.options)
        if "pl_mean" in data:
            self.pl_mean = data["pl_mean"].to(self.device)
        self.G_opt.load_state_dict(data["G_opt"])
        self.D_opt.load_state_dict(data["D_opt"])
        self.step = int(data["step"])
        self.images_seen = int(data["images_seen"])
        self.resumed_from = self.last_snapshot = path
        self._snapshot_images = self.images_seen

    def save_snapshot(self) -> Path:
        """Checkpoint + sample grid of G_ema, both written atomically under names no file of the run has
        (`snapshots.snapshot_stem`; by rank 0 of a multi-process run, the others get the path). OutputError,
        and nothing replaced, when the name is taken (another process writing into the run folder)."""
        if self.last_snapshot is not None and self._snapshot_images == self.images_seen:
            return self.last_snapshot  # these networks are saved already
        stem = snapshot_stem(self.images_seen, self._snapshot_images)
        path = self.run_dir / f"{stem}.pt"
        if not ranks.is_main():
            self.last_snapshot, self._snapshot_images = path, self.images_seen
            return path
        staged = staged_path(path)  # complete before it takes its name, which it never takes from another file
        save_checkpoint(
            staged,
            config={"G": self.G.config, "D": self.D.config, "training": self.options.to_dict()},
            G=self.G, G_ema=self.G_ema, D=self.D, G_opt=self.G_opt, D_opt=self.D_opt,
            step=self.step, images_seen=self.images_seen,
            pl_mean=self.pl_mean, world_size=ranks.world_size(),
            **({"lod": float(self.G.synthesis.lod)} if self.options.progressive else {}),
        )
        publish(staged, path)
        self.last_snapshot, self._snapshot_images = path, self.images_seen
        with torch.no_grad():
            images = self.G_ema(self.grid_z.to(self.device), noise_mode="const")
        atomic_save_png(make_grid(to_uint8(images)), self.run_dir / grid_name(stem))
        return path

    # ---- the algorithm -----------------------------------------------------------------------
    def phase(self) -> Phase:
        """Progressive runs: the schedule (lod, resolution, minibatch, lr) of the next step, from the images seen."""
        return training_phase(self.options, self.images_seen, ranks.world_size())

    def _set_lod(self, lod: float) -> None:
        """Level of detail of G and D (G_ema takes G's with every EMA update, which copies buffers)."""
        self.G.synthesis.lod.fill_(lod)
        self.D.lod.fill_(lod)

    def _enter_phase(self, real: torch.Tensor, batch: int) -> torch.Tensor:
        """Progressive runs, before a step: the schedule's lod into G and D, a fresh Adam state when the trained layers
        change (NVIDIA's reset_opt_for_new_lod), its learning rate; returns the reals as seen at that lod."""
        phase = self.phase()
        if phase.minibatch != batch:
            raise RuntimeError(f"the data stream gave {batch} images where the schedule asks {phase.minibatch}")
        if new_level(phase.lod, float(self.G.synthesis.lod)):
            self.G_opt.state.clear()  # moments and step counts: Adam starts over, as a new optimizer
            self.D_opt.state.clear()
        self._set_lod(phase.lod)
        for optimizer in (self.G_opt, self.D_opt):
            for group in optimizer.param_groups:
                group["lr"] = phase.lr
        return process_reals(real, phase.lod)

    def train_step(self, real: torch.Tensor) -> None:
        """One training step on a uint8 batch (this process's share): the arch's updates, then EMA and counters."""
        opt = self.options
        batch = real.shape[0] * ranks.world_size()
        real = from_uint8(real.to(self.device))  # [N, C, H, W] in [-1, 1]
        if opt.progressive:
            real = self._enter_phase(real, batch)
        common = dict(step=self.step, r1_gamma=opt.r1_gamma, r1_interval=opt.r1_interval, style_mixing=opt.style_mixing)
        if opt.arch == "stylegan2":  # NVIDIA's phases with lazy R1 and path length regularization
            terms, self.pl_mean = stylegan2_phases(
                self.G, self.D, self.G_opt, self.D_opt, real, self.pl_mean, **common,
                pl_weight=opt.pl_weight, pl_interval=opt.pl_interval, pl_decay=opt.pl_decay,
                pl_batch_shrink=opt.pl_batch_shrink)
        else:  # StyleGAN (2019): D step with R1, then G step
            terms = stylegan_step(self.G, self.D, self.G_opt, self.D_opt, real, **common)
        for name, values in terms:
            self.stats.report(name, values)
        ranks.average_(self.G.mapping.w_avg)  # running statistics stay equal on every process
        ranks.average_(self.pl_mean)
        update_ema(self.G_ema, self.G, ema_beta(opt, batch, self.images_seen))
        self._last_minibatch = batch
        self.step += 1
        self.images_seen += batch

    def train(self, *, progress: bool = True, on_snapshot: SnapshotHook | None = None, tensorboard: bool = False,
              status_sec: float | None = None) -> Path:
        """Run until `kimg` thousand images: a status line and stats.jsonl record every `tick_kimg`, a snapshot every
        `snap_kimg` and at the end, each followed by `on_snapshot(path, G_ema, kimg)` on every rank (its returned
        values are logged). Without a progress bar (off a terminal, or `progress=False`) a progress line whenever
        `status_sec` seconds (None: logs.STATUS_SEC, 30) pass without a line. Raises TrainingDiverged when a loss
        or weight turns NaN or Inf. Returns the last snapshot (a run already at `kimg` trains nothing and returns
        the one it resumed from)."""
        opt = self.options
        rank, world = ranks.rank(), ranks.world_size()
        if opt.progressive:  # minibatch and snapshots follow the images shown
            check_minibatches(opt, world)
            batch = lambda position: training_phase(opt, position, world).minibatch  # noqa: E731
            stream = IndexStream(len(self.dataset), batch, opt.seed, rank=rank, world=world,
                                 start_position=self.images_seen)
        else:
            if opt.batch % world:
                raise InputError(f"batch {opt.batch} does not split evenly over {world} processes")
            stream = IndexStream(len(self.dataset), opt.batch, opt.seed, self.step, rank, world)
        total_steps = math.ceil(opt.kimg * 1000 / opt.batch)
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=stream, num_workers=self.workers,
                                             pin_memory=self.device.type == "cuda")
        log = TrainingLog(self.run_dir, images_seen=self.images_seen, enabled=ranks.is_main(), tensorboard=tensorboard)
        log.print(self._start_line(total_steps))
        if ranks.is_main():
            remove_stale_staged(self.run_dir)
        if self._finished(total_steps):  # e.g. --resume with a --kimg the run has reached: nothing new to write
            log.print(f"nothing to train: kimg {self.images_seen / 1e3:g} reached, --kimg {opt.kimg:g}")
            log.close()
            return self.save_snapshot()
        start = time.time()
        tick = Tick(ranks.broadcast_from_main(log.next_tick), self.images_seen, start, one_batch=True)
        self.G.train()
        self.D.train()
        last = None
        total_images = math.ceil(opt.kimg * 1000) if opt.progressive else total_steps * opt.batch
        bar = tqdm(total=total_images, initial=min(self.images_seen, total_images), unit="img",
                   unit_scale=True, disable=None if progress and rank == 0 else True, desc="train", dynamic_ncols=True)
        # Denormal floats (tiny weights, gradients, Adam moments) make CPU arithmetic ~10x slower; flushing
        # them to zero during training is what GPUs do anyway. Switched back off when training ends.
        self._flush_denormal = self.device.type == "cpu" and torch.set_flush_denormal(True)
        keep_freed_memory()
        beat = Heartbeat(logs.STATUS_SEC if status_sec is None else status_sec, self.images_seen, total_images,
                         clock()) if ranks.is_main() and bar.disable else None
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                for real, _ in loader:
                    if self._finished(total_steps):
                        break
                    torch.manual_seed(step_seed(opt.seed, self.step, rank=rank))
                    before = self.images_seen
                    self.train_step(real)
                    bar.update(self.images_seen - before)
                    done = self._finished(total_steps)
                    if done or tick.is_over(self.images_seen, opt.tick_kimg):
                        tick = self._end_tick(tick, log, bar, started=start)
                    if done or self._snapshot_due(before):
                        last = self._snapshot(tick, log, on_snapshot)
                    if beat is not None:
                        beat.beat(log, self.images_seen, clock())
        finally:
            bar.close()
            if self._flush_denormal:
                torch.set_flush_denormal(False)
            log.close()
        return last or self.save_snapshot()

    # ---- ticks and snapshots -----------------------------------------------------------------
    def _finished(self, total_steps: int) -> bool:
        """A fixed-resolution run ends after `total_steps` steps, a progressive one (varying minibatch) as NVIDIA's,
        when the images shown reach `kimg`."""
        if self.options.progressive:
            return self.images_seen >= self.options.kimg * 1000
        return self.step >= total_steps

    def _snapshot_due(self, before: int) -> bool:
        """Snapshot after this step (`before`: images seen before it)? Whenever the images shown pass a multiple of
        snap_kimg, as NVIDIA's ticks end, so a snapshot named by its whole kimg is never named below that multiple
        (a fixed step count, rounded, could stop short of it: 31 steps of 32 images for 1 kimg)."""
        interval = max(1, round(self.options.snap_kimg * 1000))  # whole images: 1.001 * 1000 is 1000.9999999999999
        return self.images_seen // interval > before // interval

    def _start_line(self, total_steps: int) -> str:
        opt = self.options
        end_kimg = opt.kimg if opt.progressive else total_steps * opt.batch / 1e3
        grow = ""
        if opt.progressive:
            phase = self.phase()
            grow = (f"; progressive growing from {opt.lod_initial_resolution}x{opt.lod_initial_resolution} "
                    f"({opt.lod_training_kimg:g} kimg per resolution, {opt.lod_transition_kimg:g} kimg fade-ins), now "
                    f"lod {phase.lod:g}, minibatch {phase.minibatch}, lr {phase.lr:g}")
        if self.resumed_from is not None:
            return (f"resuming {self.resumed_from.name} at kimg {self.images_seen / 1e3:g} (step {self.step}), "
                    f"training to kimg {end_kimg:g}{grow}")
        batch = "minibatch by resolution" if opt.progressive else f"batch {opt.batch}"
        return (f"training {opt.arch} at {opt.resolution}x{opt.resolution} on {len(self.dataset)} images for "
                f"{opt.kimg:g} kimg: {batch}, tick {opt.tick_kimg:g} kimg, snapshots every {opt.snap_kimg:g} "
                f"kimg, into {self.run_dir}{grow}")

    def _loss_columns(self) -> list[str]:
        """Status line columns of the loss terms this run computes."""
        return ["G", "D"] + ["r1"] * (self.options.r1_gamma > 0) + ["pl"] * (self.options.pl_weight > 0)

    def _end_tick(self, tick: Tick, log: TrainingLog, bar, *, started: float) -> Tick:
        """Status line and stats.jsonl record of the tick just ended (`started`: time.time() when this train() call
        began); returns the next tick. Stops a diverged run."""
        end = time.time()
        losses = self.stats.collect()
        self._stop_if_diverged(tick, log, [k for k, v in losses.items() if not math.isfinite(v["mean"] + v["std"])])
        stats = tick.record(self.images_seen, end, log.prior_sec + end - started, self.device)
        if self.options.progressive:  # NVIDIA's keys: the lod and minibatch the tick ended with
            stats["Progress/lod"] = scalar(self.G.synthesis.lod)
            stats["Progress/minibatch"] = scalar(self._last_minibatch)
        stats["Progress/w_avg_norm"] = scalar(self.G.mapping.w_avg.norm())
        if self.options.pl_weight > 0:
            stats["Progress/pl_mean"] = scalar(self.pl_mean)
        stats.update(losses)
        log.print(status_line(stats, self._loss_columns()))
        log.record(stats, self.images_seen // 1000)
        bar.set_postfix({k: f"{losses[v]['mean']:.3f}" for k, v in LOSS_COLUMNS.items() if v in losses}, refresh=False)
        return Tick(tick.index + 1, self.images_seen, end, maintenance=time.time() - end)

    def _snapshot(self, tick: Tick, log: TrainingLog, on_snapshot: SnapshotHook | None) -> Path:
        """Write a snapshot of finite networks, then run the hook (denormals as in a plain evaluation)."""
        begin = time.time()
        self._stop_if_diverged(tick, log, self.stats.nonfinite())
        path = self.save_snapshot()
        kimg = self.images_seen / 1e3
        lod = f", lod {float(self.G.synthesis.lod):g}" if self.options.progressive else ""
        log.print(f"snapshot {path.name} at kimg {kimg:g}{lod}")
        if on_snapshot is not None:
            if self._flush_denormal:
                torch.set_flush_denormal(False)
            try:
                values = on_snapshot(path, self.G_ema, kimg)
            finally:
                if self._flush_denormal:
                    torch.set_flush_denormal(True)
            if values:
                log.print(f"metrics of {path.name}: " + ", ".join(f"{k} {v:.6g}" for k, v in values.items()))
                log.metrics(values, self.images_seen // 1000)
        tick.maintenance += time.time() - begin
        return path

    def _stop_if_diverged(self, tick: Tick, log: TrainingLog, losses: list[str]) -> None:
        """Log and raise TrainingDiverged naming the tick when `losses` (names of statistics) are NaN or Inf or a
        network's weights are; the diverged networks are never written."""
        weights = nonfinite_weights(G=self.G, G_ema=self.G_ema, D=self.D)
        if not losses and not weights:
            return
        what = ", ".join(losses + [f"weights of {name}" for name in weights])
        good = self.last_snapshot  # written by this run, or resumed from
        kept = f"the last good snapshot is {good.name}" if good else "no snapshot was written"
        message = (f"training diverged in tick {tick.index} (kimg {tick.start_images / 1e3:g} to "
                   f"{self.images_seen / 1e3:g}): {what} became NaN or Inf; {kept}")
        log.print(message, echo=False)
        raise TrainingDiverged(message)


def train(
    data: str | os.PathLike,
    run_dir: str | os.PathLike,
    options: TrainingOptions,
    *,
    resume: bool = False,
    device: str | torch.device = "cpu",
    workers: int = 0,
    progress: bool = True,
    on_snapshot: SnapshotHook | None = None,
    tensorboard: bool = False,
    status_sec: float | None = None,
) -> Path:
    """Train on an image folder or zip into `run_dir`; with `resume`, continue its newest snapshot.
    Under torchrun (or `--gpus N`) each process trains on its share of every batch, gradients averaged.
    `on_snapshot(path, G_ema, kimg)` runs after every snapshot on every rank (e.g. to compute metrics).
    `status_sec`: see Trainer.train."""
    device = ranks.init_from_env(torch.device(device))
    run_dir = Path(run_dir)
    found = find_latest_snapshot(run_dir) if ranks.is_main() and run_dir.is_dir() else None
    latest = ranks.broadcast_from_main(found)  # rank 0's view: other nodes may not share its disk
    if latest is not None and not resume:
        raise InputError(f"{run_dir} already holds snapshots; pass --resume to continue that run or choose another --out")
    dataset = ImageDataset(data, resolution=options.resolution, channels=options.img_channels, xflip=options.xflip)
    trainer = Trainer(options, dataset, run_dir, device=device, workers=workers)
    if latest is not None:
        trainer.resume(latest)
    return trainer.train(progress=progress, on_snapshot=on_snapshot, tensorboard=tensorboard, status_sec=status_sec)
