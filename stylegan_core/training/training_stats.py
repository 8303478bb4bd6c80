"""Statistics of one tick as NVIDIA's training_stats: {num, mean, std} of every value reported on any process,
accumulated on the device without synchronising each step; and the error raised when they stop being finite."""

from __future__ import annotations

import math

import torch

from stylegan_core import ranks


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or Inf; the message names the tick, the run keeps its last good snapshot."""


def scalar(value: float) -> dict[str, float]:
    """One value in the {num, mean, std} form (NVIDIA's report0)."""
    return {"num": 1.0, "mean": float(value), "std": 0.0}


class TickStats:
    """Running [count, sum, sum of squares] per name since the last `collect()`; values stay on their device."""

    def __init__(self):
        self._sums: dict[str, torch.Tensor] = {}   # name -> [2] float64: sum, sum of squares
        self._counts: dict[str, int] = {}          # name -> number of values

    def report(self, name: str, values: torch.Tensor) -> None:
        """Add every element of `values` (any shape) as one sample of `name`."""
        v = values.detach().reshape(-1).to(torch.float64)
        moments = torch.stack([v.sum(), v.square().sum()])
        if name in self._sums:
            self._sums[name] += moments
        else:
            self._sums[name] = moments
        self._counts[name] = self._counts.get(name, 0) + v.numel()

    def collect(self) -> dict[str, dict[str, float]]:
        """{name: {num, mean, std}} over every process since the last call (std without Bessel's correction, as
        NVIDIA's), then start afresh. Collective in a multi-process run: every rank calls it at the same step."""
        names = sorted(self._sums)
        if not names:
            return {}
        table = torch.stack([torch.cat([self._sums[n].new_tensor([self._counts[n]]), self._sums[n]]) for n in names])
        rows = ranks.all_reduce_sum(table).tolist()  # [K, 3]: num, sum, sum of squares over all ranks
        self._sums.clear()
        self._counts.clear()
        out = {}
        for name, (num, total, squares) in zip(names, rows):
            mean = total / num
            std = math.sqrt(max(squares / num - mean * mean, 0.0)) if math.isfinite(squares) else math.nan
            out[name] = {"num": num, "mean": mean, "std": std}
        return out

    def nonfinite(self) -> list[str]:
        """Names whose values since the last `collect()` include a NaN or Inf on some rank. Collective."""
        names = sorted(self._sums)
        if not names:
            return []
        flags = torch.stack([(~torch.isfinite(self._sums[n])).any() for n in names]).to(torch.float64)
        return [n for n, bad in zip(names, ranks.all_reduce_sum(flags).tolist()) if bad]


def nonfinite_weights(**modules: torch.nn.Module) -> list[str]:
    """Names of the modules with a NaN or Inf parameter or buffer (one synchronisation)."""
    names = list(modules)
    flags = torch.stack([torch.stack([(~torch.isfinite(t)).any() for t in [*m.parameters(), *m.buffers()]
                                      if t.is_floating_point()]).any() for m in modules.values()])
    return [n for n, bad in zip(names, flags.tolist()) if bad]
