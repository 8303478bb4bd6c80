"""Runs metrics: device and process group, one pass per kind of sample (each generated image made once for every
metric that looks at it), results with parameters and timing, state removed once the results are written."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from stylegan_core import ranks
from stylegan_core.allocator import keep_freed_memory
from stylegan_core.errors import InputError

from stylegan_metrics.networks.registry import FeatureExtractor, module_fingerprint
from stylegan_metrics.result import MetricResult

from .context import Context, WeightsOption
from .device import resolve_device
from .metric import Metric
from .passes import SampleView, open_states, run_pass
from .sampling import check_generator, generate_batches
from .state import DEFAULT_CHUNK


def generated_views(ctx: Context, truncation_psi: float) -> Callable[[int, int], object]:
    """(start, count) -> SampleViews of generated samples start..start+count-1 (latents, images, outputs)."""
    def batches(start: int, count: int):
        for batch in generate_batches(ctx.G, count, first=start, batch_size=ctx.batch_size, seed=ctx.seed,
                                      device=ctx.device, truncation_psi=truncation_psi, uint8=False):
            yield SampleView(batch)
    return batches


def _passes(metrics: list[Metric]) -> dict[tuple, list[Metric]]:
    """Metrics grouped by the samples they read, in order of first appearance."""
    groups: dict[tuple, list[Metric]] = {}
    for m in metrics:
        groups.setdefault(m.pass_key(), []).append(m)
    return groups


def run_metrics(
    G,
    metrics: list[Metric],
    *,
    data=None,                              # reference: image folder, zip, statistics .npz or ReferenceStats
    features: str | nn.Module | FeatureExtractor = "inception-v3",
    similarity: str | Callable = "lpips-vgg16",
    weights: WeightsOption = None,
    classifier: nn.Module | None = None,
    seed: int = 0,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
    state_dir: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    precision: str = "fp32",
    distributed: bool = True,
    workers: int | None = None,
    cov: str | None = None,
    truncation_psi: float = 1.0,
    out: str | os.PathLike | None = None,   # append each result as a JSON line (rank 0) before the state goes
    snapshot_pkl: str | None = None,        # the checkpoint path recorded in the results
) -> list[MetricResult]:
    """The results of `metrics` (built Metric objects), in order. See `stylegan_metrics.evaluate` for names."""
    check_generator(G)
    if batch_size < 1:
        raise InputError(f"the batch size must be >= 1, not {batch_size}")
    if seed < 0:
        raise InputError(f"the seed must be >= 0, not {seed}")
    with ranks.alone(not distributed):
        dev = ranks.init_from_env(resolve_device(device))  # each rank on its own GPU
        keep_freed_memory()
        G = G.to(dev).eval() if isinstance(G, nn.Module) else G
        ctx = Context(G, dev, seed=seed, batch_size=batch_size, chunk_size=chunk_size, progress=progress,
                      state_dir=Path(state_dir) if state_dir else None, data=data, workers=workers,
                      features=features, similarity=similarity, weights=weights, precision=precision,
                      classifier=classifier, cov=cov, truncation_psi=truncation_psi)
        seconds: dict[int, float] = {}
        for m in metrics:
            start = time.time()
            m.prepare(ctx)
            seconds[id(m)] = time.time() - start
        generator = module_fingerprint(G)
        results: dict[int, MetricResult] = {}
        states = []
        for key, group in _passes(metrics).items():
            start = time.time()
            if key[0] == "generated":
                batches, source = generated_views(ctx, key[1]), {"generator": generator, "seed": seed,
                                                                  "truncation_psi": key[1]}
            else:
                batches, source = group[0].batches(ctx), {"generator": generator, "seed": seed}
            group_states = open_states(group, source_key=source, state_dir=ctx.state_dir, chunk_size=chunk_size)
            states += group_states
            chunks = run_pass(batches, group, group_states, chunk_size=chunk_size, progress=progress,
                              desc="+".join(m.name for m in group))
            shared = time.time() - start
            for i, m in enumerate(group):
                start = time.time()
                values, details = m.finish(chunks[i])
                params = dict(m.params(), seed=seed, batch_size=batch_size, device=str(dev),
                              num_processes=ranks.world_size())
                total = seconds[id(m)] + shared + time.time() - start
                results[id(m)] = MetricResult(metric=m.name, results=values, params=params, total_time=total,
                                              num_gpus=ranks.gpus_used(dev), details=details,
                                              snapshot_pkl=snapshot_pkl)
        ordered = [results[id(m)] for m in metrics]
        if out is not None and ranks.is_main():
            for r in ordered:
                r.to_jsonl(out)
        for state in states:
            if state is not None:
                state.remove()
        if ctx.state_dir is not None and ranks.is_main() and ctx.state_dir.is_dir() \
                and not any(ctx.state_dir.iterdir()):
            ctx.state_dir.rmdir()  # held only this run's folders
        return ordered
