"""How the chunk payloads of every rank reach a metric's `finish`, so that no metric handles ranks itself: every
chunk gathered on the main rank ('chunks'), or every chunk's arrays summed ('sum'); then one finish, on the main
rank, whose value or exception reaches every rank (`on_main`)."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from stylegan_core import ranks

from .state import Payload

REDUCTIONS = ("chunks", "sum")


def summed(payloads: Iterable[Payload]) -> Payload | None:
    """Payloads added array by array in the order given (None for none): the one order every path sums chunks in."""
    total = None
    for payload in payloads:
        if total is None:
            total = {k: np.array(v, copy=True) for k, v in payload.items()}
        else:
            total = {k: total[k] + payload[k] for k in total}
    return total


def _sum_over_ranks(mine: Payload | None) -> Payload | None:
    """This rank's sum plus every other rank's (float64 all-reduce; a rank without chunks adds zeros)."""
    if ranks.world_size() == 1:
        return mine
    layout = {k: (np.shape(v), np.asarray(v).dtype.str) for k, v in mine.items()} if mine is not None else None
    layouts = [part for part in ranks.all_gather_chunks({ranks.rank(): layout}).values() if part]
    if not layouts:
        return None
    if mine is None:
        mine = {k: np.zeros(shape, dtype) for k, (shape, dtype) in layouts[0].items()}
    total = {}
    for k in sorted(mine):
        value = np.asarray(mine[k])
        tensor = torch.from_numpy(value.astype(np.float64).reshape(-1))  # a copy, reduced in place
        ranks.all_reduce_sum(tensor)
        total[k] = tensor.numpy().reshape(value.shape).astype(value.dtype)
    return total


def reduce_over_ranks(reduction: str, chunks: dict[int, Payload]) -> dict[int, Payload] | Payload | None:
    """A collective (every rank calls it): what `finish` receives on the main rank from this rank's `chunks`.
    'chunks': {chunk index: payload} of every rank, in chunk order ({} elsewhere); 'sum': one payload, each rank's
    chunks summed in chunk order, then the ranks' sums added (None when no rank had a chunk)."""
    if reduction == "chunks":
        gathered = ranks.gather_chunks_to_main(chunks)
        return {c: gathered[c] for c in sorted(gathered)}
    if reduction == "sum":
        return _sum_over_ranks(summed(chunks[c] for c in sorted(chunks)))
    raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}")


def on_main(finish: Callable[[], object]) -> object:
    """`finish()` run once, on the main rank, its value (or its exception) handed to every rank."""
    if ranks.world_size() == 1:
        return finish()
    outcome = None
    if ranks.is_main():
        try:
            outcome = (True, finish())
        except Exception as e:  # every rank raises it, rather than waiting for a value that never comes
            outcome = (False, e)
    ok, value = ranks.broadcast_from_main(outcome)
    if not ok:
        raise value
    return value
