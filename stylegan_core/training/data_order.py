"""Seeded data order and per-step seeds: one run draws the same batches and latents whenever it is resumed."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def step_seed(seed: int, step: int, stream: int = 0, rank: int = 0) -> int:
    """Seed of one training step (stream 0) or data epoch (stream 1): depends only on (seed, stream, step),
    and on the process's rank in a multi-process run (rank 0 draws what a single process draws)."""
    entropy = [seed, stream, step] + ([rank] if rank else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class IndexStream(torch.utils.data.Sampler):
    """Batches of a stream of per-epoch permutations; batch s covers stream positions [s*B, (s+1)*B), or, with a
    batch size that is a function of the position, [p, p + batch(p)) from the position p the previous batch
    ended at. With several processes each takes its contiguous slice of every batch."""

    def __init__(
        self,
        num_items: int,       # Dataset size.
        batch: int | Callable[[int], int],  # Global batch size (all processes together), or a function of the stream
                                            # position (images shown so far) giving it (progressive growing).
        seed: int,            # Seeds every epoch's permutation.
        start_step: int = 0,  # First batch to yield (a resumed run starts where it stopped) ...
        rank: int = 0,        # This process's slice of every batch ...
        world: int = 1,       # ... out of this many.
        start_position: int | None = None,  # ... or the stream position to start at; needed with a callable batch.
    ):
        if start_position is None:
            if callable(batch):
                raise ValueError("a batch size that varies needs start_position")
            start_position = start_step * batch
        self.num_items, self.batch, self.seed, self.start_position = num_items, batch, seed, start_position
        self.rank, self.world = rank, world

    def _permutation(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.num_items, generator=torch.Generator().manual_seed(step_seed(self.seed, epoch, stream=1)))

    def __iter__(self):
        pos = self.start_position
        epoch, perm = -1, None
        while True:
            size = self.batch(pos) if callable(self.batch) else self.batch
            batch = []
            for p in range(pos, pos + size):
                if p // self.num_items != epoch:
                    epoch = p // self.num_items
                    perm = self._permutation(epoch)
                batch.append(int(perm[p % self.num_items]))
            pos += size
            share = size // self.world
            yield batch[self.rank * share:(self.rank + 1) * share]
