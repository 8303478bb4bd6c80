"""Seeded data order and per-step seeds: one run draws the same batches and latents whenever it is resumed."""

from __future__ import annotations

import numpy as np
import torch


def step_seed(seed: int, step: int, stream: int = 0, rank: int = 0) -> int:
    """Seed of one training step (stream 0) or data epoch (stream 1): depends only on (seed, stream, step),
    and on the process's rank in a multi-process run (rank 0 draws what a single process draws)."""
    entropy = [seed, stream, step] + ([rank] if rank else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class IndexStream(torch.utils.data.Sampler):
    """Batches of a stream of per-epoch permutations; batch s covers stream positions [s*B, (s+1)*B).
    With several processes each takes its contiguous slice of every batch."""

    def __init__(
        self,
        num_items: int,       # Dataset size.
        batch: int,           # Global batch size (all processes together).
        seed: int,            # Seeds every epoch's permutation.
        start_step: int = 0,  # First batch to yield (a resumed run starts where it stopped).
        rank: int = 0,        # This process's slice of every batch ...
        world: int = 1,       # ... out of this many.
    ):
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
