"""Progressive growing as in NVIDIA's StyleGAN training loop: the level of detail, minibatch and learning rate as
functions of the images shown (its `training_schedule`), and the matching preparation of the reals (`process_reals`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from stylegan_core.errors import InputError

# NVIDIA's StyleGAN defaults (train.py): the single-GPU minibatch table with its minibatch_base (the table of one
# device; NVIDIA's 8-GPU config is minibatch_base 32 with {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}), and the
# learning rates G_lrate_dict = D_lrate_dict with G_lrate_base = D_lrate_base.
MINIBATCH_PER_RES = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}
MINIBATCH_BASE = 4
LR_PER_RES = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
LR_BASE = 0.001


@dataclass(frozen=True)
class Phase:
    """Where the schedule stands after a number of images: what the next training step uses."""

    lod: float        # Level of detail (a float32 value): 0 = full resolution; k + f = R / 2^k fading out by f.
    resolution: int   # R / 2^floor(lod): the finest resolution being trained (NVIDIA's sched.resolution).
    minibatch: int    # Images in the step, all processes together.
    lr: float         # Adam learning rate of G and D.


def schedule_lod(
    images_seen: int,            # Real images shown so far.
    resolution: int,             # Training resolution R, a power of two.
    initial_resolution: int,     # Resolution trained first (NVIDIA's lod_initial_resolution).
    training_kimg: float,        # kimg at each resolution before the next fades in (lod_training_kimg).
    transition_kimg: float,      # kimg of each fade-in (lod_transition_kimg).
) -> float:
    """NVIDIA's level of detail after `images_seen` images: phases of training_kimg + transition_kimg; within a
    phase the lod stays whole for training_kimg, then falls linearly by 1 over transition_kimg; never below 0."""
    kimg = images_seen / 1000.0
    phase_dur = training_kimg + transition_kimg
    phase_idx = math.floor(kimg / phase_dur) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = math.log2(resolution) - math.floor(math.log2(initial_resolution)) - phase_idx
    if transition_kimg > 0:
        lod -= max(phase_kimg - training_kimg, 0.0) / transition_kimg
    return max(lod, 0.0)


def training_phase(options, images_seen: int, world: int = 1) -> Phase:
    """The schedule of a progressive run (`options`: TrainingOptions) after `images_seen` images: lod as stored in
    the networks' float32 buffers, the resolution it trains, its minibatch (rounded down to a multiple of the
    number of processes, as NVIDIA's) and its learning rate."""
    lod = schedule_lod(images_seen, options.resolution, options.lod_initial_resolution,
                       options.lod_training_kimg, options.lod_transition_kimg)
    lod = float(np.float32(lod))  # the value the networks see; resolution and minibatch follow from it
    resolution = options.resolution >> math.floor(lod)
    minibatch = options.minibatch_per_res.get(resolution, options.batch)
    minibatch -= minibatch % world
    return Phase(lod, resolution, minibatch, options.lr_per_res.get(resolution, options.lr))


def check_minibatches(options, world: int = 1) -> None:
    """InputError unless every resolution the schedule trains gets a minibatch of at least one image per process."""
    res = options.lod_initial_resolution
    while res <= options.resolution:
        minibatch = options.minibatch_per_res.get(res, options.batch)
        if minibatch - minibatch % world < 1:
            raise InputError(f"the minibatch {minibatch} at {res}x{res} is smaller than the {world} processes")
        res *= 2


def new_level(lod: float, previous: float) -> bool:
    """Whether the set of trained layers changed between two lods (NVIDIA's condition for resetting Adam: the floor
    or the ceiling differs, so a fade starting and a fade ending both count)."""
    return math.floor(lod) != math.floor(previous) or math.ceil(lod) != math.ceil(previous)


def process_reals(
    real: torch.Tensor,   # [N, C, R, R] real images in [-1, 1] at the training resolution.
    lod: float,           # Level of detail of the step.
) -> torch.Tensor:        # [N, C, R, R]
    """Reals as the networks see them at `lod`: box-downscaled by 2^floor(lod) (NVIDIA's lower-resolution dataset
    levels), blended toward their 2x2-box-averaged copy by the fraction of lod (FadeLOD), nearest-upscaled back
    by 2^floor(lod) (UpscaleLOD)."""
    level = math.floor(lod)
    fade = lod - level
    x = F.avg_pool2d(real, 2 ** level) if level else real
    if fade > 0:
        coarse = F.avg_pool2d(x, 2).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        x = x + (coarse - x) * fade
    return x.repeat_interleave(2 ** level, dim=2).repeat_interleave(2 ** level, dim=3) if level else x


def parse_per_resolution(text: str, kind: type, what: str) -> dict:
    """'128:16,256:8' -> {128: 16, 256: 8} (values of type `kind`, positive); InputError naming `what` otherwise.
    An empty string gives {} (no overrides)."""
    table = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition(":")
        try:
            if not sep:
                raise ValueError
            res, number = int(key), kind(value)
        except ValueError:
            raise InputError(f"{what}: {item!r} is not RESOLUTION:VALUE (e.g. 128:16)") from None
        if res < 4 or res & (res - 1):
            raise InputError(f"{what}: resolution {res} is not a power of two >= 4")
        if not (math.isfinite(number) and number > 0):
            raise InputError(f"{what}: the value at {res} must be a positive number, got {value.strip()}")
        table[res] = number
    return table


__all__ = ["LR_BASE", "LR_PER_RES", "MINIBATCH_BASE", "MINIBATCH_PER_RES", "Phase", "check_minibatches", "new_level",
           "parse_per_resolution", "process_reals", "schedule_lod", "training_phase"]
