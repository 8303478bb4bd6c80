"""The StyleGAN training loop: logistic loss, R1, style mixing, generator EMA, atomic snapshots, exact resume."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .allocator import keep_freed_memory
from .checkpoint import build_module, load_checkpoint, save_checkpoint
from .datasets import ImageDataset
from .discriminator import Discriminator
from .errors import InputError
from .generator import ARCHITECTURES, Generator, mix_styles
from .images import atomic_save_png, from_uint8, make_grid, to_uint8
from .losses import discriminator_loss, generator_loss, r1_penalty
from .lazy_regularization import make_optimizers, optimizer_step, stylegan2_phases
from .residual_discriminator import ResidualDiscriminator

SNAPSHOT_PATTERN = re.compile(r"network-snapshot-(\d+)\.pt$")
DISCRIMINATORS = {"stylegan": Discriminator, "stylegan2": ResidualDiscriminator}  # arch -> D class


@dataclass
class TrainingOptions:
    """Everything that defines a run. Saved in each snapshot; a resumed run must match it."""

    resolution: int                   # Training resolution (images are resized to it).
    kimg: float = 1000.0              # Length of training in thousands of real images shown to D.
    batch: int = 32                   # Minibatch size.
    lr: float = 0.002                 # Adam learning rate of G and D.
    betas: tuple = (0.0, 0.99)        # Adam betas.
    r1_gamma: float = 10.0            # R1 weight gamma: the penalty is gamma / 2 * ||grad D(x)||^2.
    r1_interval: int | None = None    # Lazy R1: apply every this many steps, scaled by the interval; None = 1 (stylegan) or 16 (stylegan2).
    style_mixing: float = 0.9         # Probability of a mixed-style batch.
    ema_kimg: float = 10.0            # EMA half-life in kimg: beta = 0.5 ** (batch / (ema_kimg * 1000)).
    ema_rampup: float | None = None   # If set, half-life min(ema_kimg, rampup * kimg seen) (stylegan2-ada).
    xflip: bool = False               # Also train on mirrored images.
    snap_kimg: float = 50.0           # Snapshot interval in kimg (a snapshot is also written at the end).
    seed: int = 0                     # Seeds initialisation, data order and every latent.
    z_dim: int = 512                  # Generator and discriminator shape ...
    w_dim: int = 512
    mapping_layers: int = 8
    channel_base: int | None = None   # None = the arch default (16384 stylegan, 32768 stylegan2).
    channel_max: int = 512
    img_channels: int = 3
    arch: str = "stylegan"            # 'stylegan' (D then G step, R1 folded in) or 'stylegan2' (NVIDIA's phases, lazy regularization).
    pl_weight: float | None = None    # Path length regularization weight; None = 0 (stylegan) or 2 (stylegan2).
    pl_interval: int = 4              # Lazy path length regularization: every this many steps (stylegan2).
    pl_decay: float = 0.01            # Decay of the running mean path length.
    pl_batch_shrink: int = 2          # The path length batch is batch // pl_batch_shrink.

    # Fields that may change when a run is resumed (they do not alter what has been computed).
    RESUMABLE_CHANGES = ("kimg", "snap_kimg")

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise InputError(f"unknown arch {self.arch!r}; available: {', '.join(sorted(ARCHITECTURES))}")
        stylegan2 = self.arch == "stylegan2"
        if self.channel_base is None:
            self.channel_base = ARCHITECTURES[self.arch][1]
        if self.r1_interval is None:
            self.r1_interval = 16 if stylegan2 else 1
        if self.pl_weight is None:
            self.pl_weight = 2.0 if stylegan2 else 0.0
        if self.pl_weight and not stylegan2:
            raise InputError("path length regularization (pl_weight) needs arch='stylegan2'")
        if self.pl_interval < 1 or self.pl_batch_shrink < 1:
            raise InputError("pl_interval and pl_batch_shrink must be >= 1")

    def generator_config(self) -> dict:
        return dict(
            z_dim=self.z_dim, w_dim=self.w_dim, img_resolution=self.resolution, img_channels=self.img_channels,
            mapping_layers=self.mapping_layers, channel_base=self.channel_base, channel_max=self.channel_max,
            arch=self.arch,
        )

    def discriminator_config(self) -> dict:
        return dict(
            img_resolution=self.resolution, img_channels=self.img_channels,
            channel_base=self.channel_base, channel_max=self.channel_max,
        )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        kwargs["betas"] = tuple(kwargs.get("betas", (0.0, 0.99)))
        return cls(**kwargs)


def step_seed(seed: int, step: int, stream: int = 0, rank: int = 0) -> int:
    """Seed of one training step (stream 0) or data epoch (stream 1): depends only on (seed, stream, step),
    and on the process's rank in a multi-process run (rank 0 draws what a single process draws)."""
    entropy = [seed, stream, step] + ([rank] if rank else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class IndexStream(torch.utils.data.Sampler):
    """Batches of a stream of per-epoch permutations; batch s covers stream positions [s*B, (s+1)*B).
    With several processes each takes its contiguous slice of every batch."""

    def __init__(self, num_items: int, batch: int, seed: int, start_step: int = 0, rank: int = 0, world: int = 1):
        self.num_items, self.batch, self.seed, self.start_step = num_items, batch, seed, start_step
        self.rank, self.world = rank, world

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.num_items, generator=torch.Generator().manual_seed(step_seed(self.seed, epoch, stream=1)))

    def __iter__(self):
        pos = self.start_step * self.batch
        epoch, perm = -1, None
        while True:
            batch = []
            for p in range(pos, pos + self.batch):
                if p // self.num_items != epoch:
                    epoch = p // self.num_items
                    perm = self._permutation(epoch)
                batch.append(int(perm[p % self.num_items]))
            pos += self.batch
            share = self.batch // self.world
            yield batch[self.rank * share:(self.rank + 1) * share]


def sample_ws(G: Generator, batch: int, mixing_prob: float, device: torch.device, update_w_avg: bool = False) -> torch.Tensor:
    """Latents for one batch with style-mixing regularization: a second w from crossover ~ U{1..num_ws-1}."""
    z = torch.randn(batch, G.z_dim, device=device)
    ws = G.mapping(z, None, update_w_avg=update_w_avg)  # [N, num_ws, w_dim]
    if mixing_prob > 0 and torch.rand(()) < mixing_prob:
        crossover = int(torch.randint(1, G.num_ws, ()))
        ws = mix_styles(ws, G.mapping(torch.randn_like(z), None), crossover)
    return ws


def ema_beta(options: TrainingOptions, batch: int, images_seen: int) -> float:
    """0.5 ** (batch / half-life), half-life ema_kimg * 1000 images (optionally ramped up)."""
    half_life = options.ema_kimg * 1000
    if options.ema_rampup is not None:
        half_life = min(half_life, max(images_seen, batch) * options.ema_rampup)
    return 0.5 ** (batch / half_life)


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """G_ema <- beta * G_ema + (1 - beta) * G for parameters; buffers (w_avg, const noise) copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def find_latest_snapshot(run_dir: Path) -> Path | None:
    snaps = [(int(m.group(1)), p) for p in run_dir.glob("network-snapshot-*.pt") if (m := SNAPSHOT_PATTERN.search(p.name))]
    return max(snaps)[1] if snaps else None


class Trainer:
    """Holds G, G_ema, D and their optimizers; `train()` runs the loop of the StyleGAN paper."""

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
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.G_opt, self.D_opt = make_optimizers(self.G, self.D, options)
        self.pl_mean = torch.zeros([], device=self.device)  # running mean path length (stylegan2)
        self.step = 0
        self.images_seen = 0
        self.grid_z = torch.from_numpy(np.random.RandomState(options.seed).randn(16, options.z_dim)).float()

    # ---- persistence -------------------------------------------------------------------------
    def resume(self, path: Path) -> None:
        """Continue the run stored in `path`: networks, optimizers, step; options must match. In a multi-process
        run rank 0 reads the file and sends it to the others, so other nodes need not see it."""
        data = distributed.broadcast_from_main(load_checkpoint(path) if distributed.is_main() else None)
        saved_world, world = int(data.get("world_size", 1)), distributed.world_size()
        if saved_world != world:
            warnings.warn(f"{path.name} was written by a run of {saved_world} process(es), resumed with {world}: "
                          f"training goes on, but with other random streams than the uninterrupted run", stacklevel=2)
        config = data.get("config") or {}
        saved = TrainingOptions.from_dict(config.get("training") or {}).to_dict() if config.get("training") else None
        if saved is None:
            raise InputError(f"{path}: no training options stored; cannot resume from it")
        current = self.options.to_dict()
        diff = [k for k in current if k not in TrainingOptions.RESUMABLE_CHANGES and current[k] != saved[k]]
        if diff:
            detail = ", ".join(f"{k}: run has {saved[k]!r}, asked {current[k]!r}" for k in diff)
            raise InputError(f"cannot resume {path.parent}: options differ ({detail})")
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

    def save_snapshot(self) -> Path:
        """Checkpoint + sample grid of G_ema, both written atomically (by rank 0 of a multi-process run)."""
        kimg = self.images_seen // 1000
        path = self.run_dir / f"network-snapshot-{kimg:06d}.pt"
        if not distributed.is_main():
            return path
        save_checkpoint(
            path,
            config={"G": self.G.config, "D": self.D.config, "training": self.options.to_dict()},
            G=self.G, G_ema=self.G_ema, D=self.D, G_opt=self.G_opt, D_opt=self.D_opt,
            step=self.step, images_seen=self.images_seen,
            pl_mean=self.pl_mean, world_size=distributed.world_size(),
        )
        with torch.no_grad():
            images = self.G_ema(self.grid_z.to(self.device), noise_mode="const")
        atomic_save_png(make_grid(to_uint8(images)), self.run_dir / f"fakes{kimg:06d}.png")
        return path

    # ---- the algorithm -----------------------------------------------------------------------
    def train_step(self, real: torch.Tensor) -> dict[str, float]:
        """One training step on a uint8 batch (this process's share): the arch's updates, then EMA and counters."""
        batch = real.shape[0] * distributed.world_size()
        real = from_uint8(real.to(self.device))  # [N, C, H, W] in [-1, 1]
        if self.options.arch == "stylegan2":  # NVIDIA's phases with lazy R1 and path length regularization
            stats, self.pl_mean = stylegan2_phases(self, real, sample_ws)
        else:
            stats = self._stylegan_updates(real)
        distributed.average_(self.G.mapping.w_avg)  # running statistics stay equal on every process
        distributed.average_(self.pl_mean)
        update_ema(self.G_ema, self.G, ema_beta(self.options, batch, self.images_seen))
        self.step += 1
        self.images_seen += batch
        return stats

    def _stylegan_updates(self, real: torch.Tensor) -> dict[str, float]:
        """One D update (logistic loss + R1) then one G update (non-saturating loss). real [N, C, H, W] in [-1, 1]."""
        opt, G, D = self.options, self.G, self.D
        batch = real.shape[0]
        stats = {}

        # Discriminator: softplus(D(G(z))) + softplus(-D(x)) [+ R1 on reals, every r1_interval steps].
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G.synthesis(sample_ws(G, batch, opt.style_mixing, self.device))
        do_r1 = opt.r1_gamma > 0 and self.step % opt.r1_interval == 0
        real_in = real.detach().requires_grad_(do_r1)
        real_logits = D(real_in)
        d_loss = discriminator_loss(real_logits, D(fake))
        stats["loss_D"] = float(d_loss.detach())
        if do_r1:
            r1 = r1_penalty(real_in, real_logits, opt.r1_gamma)
            stats["r1"] = float(r1.detach())
            d_loss = d_loss + r1 * opt.r1_interval
        optimizer_step(self.D_opt, d_loss)

        # Generator: softplus(-D(G(z))) with style mixing; w_avg tracks the batch mean of w.
        G.requires_grad_(True)
        D.requires_grad_(False)
        fake = G.synthesis(sample_ws(G, batch, opt.style_mixing, self.device, update_w_avg=True))
        g_loss = generator_loss(D(fake))
        stats["loss_G"] = float(g_loss.detach())
        optimizer_step(self.G_opt, g_loss)
        return stats

    def train(self, *, progress: bool = True) -> Path:
        """Run until `kimg` thousand images; snapshot every `snap_kimg`; returns the last snapshot."""
        opt = self.options
        rank, world = distributed.rank(), distributed.world_size()
        if opt.batch % world:
            raise InputError(f"batch {opt.batch} does not split evenly over {world} processes")
        total_steps = math.ceil(opt.kimg * 1000 / opt.batch)
        snap_every = max(1, round(opt.snap_kimg * 1000 / opt.batch))
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=IndexStream(len(self.dataset), opt.batch, opt.seed, self.step, rank, world),
            num_workers=self.workers, pin_memory=self.device.type == "cuda",
        )
        self.G.train()
        self.D.train()
        last = None
        bar = tqdm(total=total_steps * opt.batch, initial=min(self.step, total_steps) * opt.batch, unit="img",
                   unit_scale=True, disable=None if progress and rank == 0 else True, desc="train", dynamic_ncols=True)
        # Denormal floats (tiny weights, gradients, Adam moments) make CPU arithmetic ~10x slower; flushing
        # them to zero during training is what GPUs do anyway. Switched back off when training ends.
        flush = self.device.type == "cpu" and torch.set_flush_denormal(True)
        keep_freed_memory()
        try:
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                for real, _ in loader:
                    if self.step >= total_steps:
                        break
                    torch.manual_seed(step_seed(opt.seed, self.step, rank=rank))
                    stats = self.train_step(real)
                    bar.update(opt.batch)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items()}, refresh=False)
                    if self.step % snap_every == 0 or self.step == total_steps:
                        last = self.save_snapshot()
        finally:
            bar.close()
            if flush:
                torch.set_flush_denormal(False)
        return last or self.save_snapshot()


def train(
    data: str | os.PathLike,
    run_dir: str | os.PathLike,
    options: TrainingOptions,
    *,
    resume: bool = False,
    device: str | torch.device = "cpu",
    workers: int = 0,
    progress: bool = True,
) -> Path:
    """Train on an image folder or zip into `run_dir`; with `resume`, continue its newest snapshot.
    Under torchrun (or `--gpus N`) each process trains on its share of every batch, gradients averaged."""
    device = distributed.init_from_env(torch.device(device))
    run_dir = Path(run_dir)
    found = find_latest_snapshot(run_dir) if distributed.is_main() and run_dir.is_dir() else None
    latest = distributed.broadcast_from_main(found)  # rank 0's view: other nodes may not share its disk
    if latest is not None and not resume:
        raise InputError(f"{run_dir} already holds snapshots; pass --resume to continue that run or choose another --out")
    dataset = ImageDataset(data, resolution=options.resolution, channels=options.img_channels, xflip=options.xflip)
    trainer = Trainer(options, dataset, run_dir, device=device, workers=workers)
    if latest is not None:
        trainer.resume(latest)
    return trainer.train(progress=progress)
