"""One pass over sample indices feeding several consumers: fixed chunks of consecutive indices shared out to
the ranks, each chunk computed once for every consumer that still needs it, finished chunks saved per consumer."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from stylegan_core import ranks
from stylegan_core.data.images import to_uint8
from stylegan_core.errors import InputError

from stylegan_metrics.stats import FeatureStats

from .sampling import GeneratedBatch
from .state import DEFAULT_CHUNK, Payload, RunState


class View(Protocol):
    """What a consumer sees of one batch of consecutive samples."""

    start: int   # index of the first sample
    count: int   # samples in the batch

    def head(self, n: int) -> "View": ...


class Part(Protocol):
    """A consumer's accumulator for one chunk."""

    def add(self, view: View) -> None: ...
    def arrays(self) -> Payload: ...


class Consumer(Protocol):
    """Anything that reads samples 0..num-1 of a pass and keeps a payload of arrays per chunk."""

    num: int       # samples it reads
    folder: str    # its state sub-folder

    def state_key(self) -> dict: ...                    # parameters that fix its payloads (JSON-able)
    def shapes(self, count: int) -> dict[str, tuple]: ...  # payload array shapes of a chunk (-1: any length)
    def new_part(self) -> Part: ...


Output = torch.Tensor | tuple[torch.Tensor, ...]  # a network's output: one tensor or several, [B, ...] each


class RowsPart:
    """A Part keeping per-sample arrays: `rows_of(view)` gives {name: [view.count, ...] array or tensor} for each
    batch; the chunk's payload is their concatenation in index order (tensors stay on their device until then, so
    a GPU run copies once per chunk, not per batch)."""

    def __init__(self, rows_of: Callable[[View], Payload]):
        self.rows_of, self.rows = rows_of, {}

    def add(self, view: View) -> None:
        for name, values in self.rows_of(view).items():
            self.rows.setdefault(name, []).append(values)

    def arrays(self) -> Payload:
        return {name: torch.cat(values).cpu().numpy() if isinstance(values[0], torch.Tensor) else np.concatenate(values)
                for name, values in self.rows.items()}


def output_rows(extractor, output: int) -> RowsPart:
    """A chunk's features: output `output` of a feature network (registry.FeatureExtractor), float32 [count, D],
    one network call per batch however many consumers ask."""
    def rows_of(view) -> Payload:
        outputs = view.output(extractor.fingerprint, extractor.outputs)
        if output >= len(outputs):
            raise InputError(f"feature network {extractor.name!r} has no output {output} (it gives "
                             f"{len(outputs)}): this metric needs class logits, as inception-v3 gives")
        return {"features": outputs[output].float()}  # [B, D] on the network's device
    return RowsPart(rows_of)


STATS_SHAPES = {"n": (), "sum": (-1,), "sum_outer": (-1, -1)}  # a chunk's feature sums (FeatureStats.to_arrays)


class StatsPart:
    """Float64 running sums of one chunk's features (output 0 of a feature network), kept on the network's device
    (read once, in `arrays`)."""

    def __init__(self, extractor):
        self.extractor, self.acc = extractor, None

    def add(self, view) -> None:
        features = view.output(self.extractor.fingerprint, self.extractor.outputs)[0]  # [B, D]
        if self.acc is None:
            self.acc = FeatureStats(features.shape[1], device=features.device)
        self.acc.update(features)

    def arrays(self) -> Payload:
        return self.acc.to_arrays()


class FeatureCache:
    """Network outputs of one batch, each computed once however many consumers ask (`key` names the network)."""

    def __init__(self):
        self._outputs: dict[str, Output] = {}

    def get(self, key: str, fn: Callable[[torch.Tensor], Output], images: torch.Tensor, rows: int) -> Output:
        if key not in self._outputs:
            self._outputs[key] = fn(images)
        out = self._outputs[key]
        return tuple(o[:rows] for o in out) if isinstance(out, tuple) else out[:rows]


class SampleView:
    """Generated samples: latents, float images in [-1, 1], uint8 images and network outputs, computed lazily."""

    def __init__(self, batch: GeneratedBatch, rows: int | None = None, cache: FeatureCache | None = None):
        self._batch, self._cache = batch, cache or FeatureCache()
        self.start, self.count = batch.start, batch.z.shape[0] if rows is None else rows

    def head(self, n: int) -> "SampleView":
        return SampleView(self._batch, min(n, self.count), self._cache)

    @property
    def z(self) -> torch.Tensor:        # [B, z_dim]
        return self._batch.z[:self.count]

    @property
    def ws(self) -> torch.Tensor:       # [B, num_ws, w_dim]
        return self._batch.ws[:self.count]

    @property
    def images(self) -> torch.Tensor:   # [B, C, H, W] float in [-1, 1]
        return self._batch.images[:self.count]

    @property
    def uint8(self) -> torch.Tensor:    # [B, C, H, W] uint8
        return self._uint8_batch()[:self.count]

    def _uint8_batch(self) -> torch.Tensor:
        return self._cache.get("uint8", to_uint8, self._batch.images, self._batch.images.shape[0])

    def output(self, key: str, fn: Callable[[torch.Tensor], Output], images: str = "uint8") -> Output:
        """fn(the whole batch's images: 'uint8' or 'float' in [-1, 1]), once per key, cut to this view's rows."""
        batch = self._uint8_batch() if images == "uint8" else self._batch.images
        return self._cache.get(key, fn, batch, self.count)


class ImageView:
    """Images of a dataset: uint8 only, network outputs cached per batch."""

    def __init__(self, start: int, images: torch.Tensor, cache: FeatureCache | None = None):
        self.start, self.count, self._all, self._cache = start, images.shape[0], images, cache or FeatureCache()

    def head(self, n: int) -> "ImageView":
        view = ImageView(self.start, self._all, self._cache)
        view.count = min(n, self.count)
        return view

    @property
    def uint8(self) -> torch.Tensor:    # [B, C, H, W] uint8
        return self._all[:self.count]

    def output(self, key: str, fn: Callable[[torch.Tensor], Output], images: str = "uint8") -> Output:
        if images != "uint8":
            raise InputError("dataset images are uint8 only")
        return self._cache.get(key, fn, self._all, self.count)


class IndexView:
    """Just the indices (consumers that draw their own inputs per index, such as path-length pairs)."""

    def __init__(self, start: int, count: int):
        self.start, self.count = start, count

    def head(self, n: int) -> "IndexView":
        return IndexView(self.start, min(n, self.count))


def index_batches(batch_size: int) -> Callable[[int, int], Iterator[IndexView]]:
    def batches(start: int, count: int) -> Iterator[IndexView]:
        for first in range(start, start + count, batch_size):
            yield IndexView(first, min(batch_size, start + count - first))
    return batches


STATUS_SECONDS = 60.0  # off a terminal (no progress bar): one status line per this many seconds
ESTIMATE_SECONDS, LONG_PASS_SECONDS = 15.0, 600.0  # after this long, a pass estimated to last longer says so once


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class StatusLine:
    """Where no progress bar shows (stderr not a terminal: a log file, a batch job), one line on stderr every
    STATUS_SECONDS: samples done, elapsed time and an estimate of the time left. Wherever it runs, a pass that the
    first ESTIMATE_SECONDS show to need more than LONG_PASS_SECONDS says so once (`warn_long`), e.g. DINOv2 ViT-L
    on a CPU."""

    def __init__(self, desc: str, total: int, enabled: bool, warn_long: bool = False):
        self.desc, self.total, self.enabled, self.warn_long = desc or "pass", total, enabled, warn_long
        self.start = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        elapsed = now - self.start
        if done <= 0:
            return
        left = elapsed * (self.total - done) / done
        if self.warn_long and elapsed >= ESTIMATE_SECONDS:
            self.warn_long = False
            if left > LONG_PASS_SECONDS:
                print(f"{self.desc}: {done:,} of {self.total:,} samples took {_duration(elapsed)}; at this speed the "
                      f"rest takes about {_duration(left)} (a GPU, or smaller counts, for a quicker run)",
                      file=sys.stderr, flush=True)
        if not self.enabled or now - self.last < STATUS_SECONDS:
            return
        self.last = now
        print(f"{self.desc}: {done:,} of {self.total:,} samples ({100 * done / self.total:.1f}%), "
              f"{_duration(elapsed)} elapsed, about {_duration(left)} left", file=sys.stderr, flush=True)


def open_states(consumers: list[Consumer], *, source_key: dict, state_dir: str | Path | None,
                chunk_size: int) -> list[RunState | None]:
    """Each consumer's state folder, state_dir / consumer.folder, keyed by everything that fixes its payloads
    (`source_key`: the generator, seed, ... that fix the samples); all None without a state_dir."""
    return [RunState(Path(state_dir) / c.folder, {**source_key, **c.state_key(), "num": c.num,
                                                  "chunk_size": chunk_size}) if state_dir else None
            for c in consumers]


def run_pass(
    batches: Callable[[int, int], Iterable[View]],  # (start, count) -> views of samples start..start+count-1
    consumers: list[Consumer],
    states: list[RunState | None] | None = None,  # per consumer (open_states): finished chunks saved and reused
    *,
    chunk_size: int = DEFAULT_CHUNK,          # samples per chunk: the unit of sharding and of saved state
    progress: bool = True,
    desc: str = "",
) -> dict[int, dict[int, Payload]]:
    """Every consumer's payloads of this rank's chunks, {consumer position: {chunk: arrays}}, in chunk order.

    Chunk c (samples c * chunk_size ...) runs on rank c % world_size. A chunk's payload depends only on its index
    range, never on the rank, the world size, the batch size or which other consumers share the pass. The states
    stay until the caller removes them (after its results are safely written)."""
    if chunk_size < 1:
        raise InputError("the chunk size must be >= 1")
    if not consumers:
        return {}
    num = max(c.num for c in consumers)
    states = states or [None] * len(consumers)
    out: dict[int, dict[int, Payload]] = {i: {} for i in range(len(consumers))}
    bar = tqdm(total=num, unit="img", desc=desc, disable=None if progress and ranks.is_main() else True,
               dynamic_ncols=True)
    status = StatusLine(desc, num, enabled=progress and ranks.is_main() and bool(bar.disable),  # no bar: a log
                        warn_long=progress and ranks.is_main())
    done = 0

    def advance(n: int) -> None:  # rank 0's bar stands for all ranks
        nonlocal done
        step = min(n * ranks.world_size(), num - done)
        done += step
        bar.update(step)
        status.update(done)

    try:
        for chunk in ranks.my_chunks(math.ceil(num / chunk_size)):
            start = chunk * chunk_size
            counts = {i: min(chunk_size, c.num - start) for i, c in enumerate(consumers) if c.num > start}
            for i, count in counts.items():
                if states[i] is not None:
                    payload = states[i].load(chunk, consumers[i].shapes(count))
                    if payload is not None:
                        out[i][chunk] = payload
            todo = [i for i in counts if chunk not in out[i]]
            needed = max((counts[i] for i in todo), default=0)
            if todo:
                parts = {i: consumers[i].new_part() for i in todo}
                for view in batches(start, needed):
                    for i in todo:
                        rows = min(view.count, start + counts[i] - view.start)
                        if rows > 0:
                            parts[i].add(view if rows == view.count else view.head(rows))
                    advance(view.count)
                for i in todo:
                    out[i][chunk] = parts[i].arrays()
                    if states[i] is not None:
                        states[i].save(chunk, out[i][chunk])
            advance(min(chunk_size, num - start) - needed)
    finally:
        bar.close()
    return out
