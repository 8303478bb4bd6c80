"""Runs metrics: device and process group, one pass per kind of sample (each generated image made once for every
metric that looks at it), results with parameters and timing, state removed once the results are written."""

from __future__ import annotations

import numbers
import os
import time
from pathlib import Path

from torch import nn

from stylegan_core import ranks
from stylegan_core.allocator import keep_freed_memory
from stylegan_core.errors import InputError, OutputError

from stylegan_metrics.result import MetricResult, append_results, check_results_file

from .context import Context
from .device import resolve_device
from .generated import gen_count, gen_is_statistics, generated_source, warn_if_sizes_differ
from .metric import Metric
from .options import EvaluationOptions
from .passes import open_states, run_pass
from .reductions import on_main, reduce_over_ranks
from .sampling import SAMPLING_VERSION, check_generator, check_truncation


def write_results(out: str | os.PathLike, results: list[MetricResult], state_dir: Path | None) -> None:
    """Append every result line to `out` in one all-or-nothing write; on any failure (a full disk, a device that
    refuses, a value JSON cannot hold) the error names `out` and says every value with all its digits (so they
    are never lost), and the state stays for a rerun to write them."""
    try:
        append_results(out, results)
    except (OutputError, OSError) as e:
        kept = (f"the saved chunks in {state_dir} are kept: rerun the same command to write them"
                if state_dir is not None else "nothing was appended")
        values = ", ".join(f"{k} = {_all_digits(v)}" for r in results for k, v in r.results.items())
        reason = str(e) if str(out) in str(e) else f"cannot write {out}: {e}"
        raise OutputError(f"{reason}; the results were {values}; {kept}") from None


def _all_digits(value) -> str:
    """The shortest text that reads back as the same float (repr), for any real number type."""
    return repr(float(value)) if isinstance(value, numbers.Real) else repr(value)


def check_gen_count(gen, metrics: list[Metric]) -> None:
    """Generated images given as files hold at least the count each 'generated' metric reads: refused before any
    network runs (reference features take minutes), not when the pass reaches the end of the folder."""
    wanted = max((m.num for m in metrics if m.samples == "generated"), default=0)
    if gen is None or gen_is_statistics(gen) or not wanted:
        return
    have = gen_count(gen)
    if have < wanted:
        name = next(m.name for m in metrics if m.samples == "generated" and m.num == wanted)
        raise InputError(f"{gen} holds {have:,} images, fewer than the {wanted:,} that {name} reads "
                         f"(name a smaller count, e.g. fid{have}_full)")


def generator_precision(m: Metric) -> str:
    """The generator's arithmetic in a metric's generated pass: that of the feature network it reads (FID, KID, IS,
    PR: --precision), fp32 for any other (LS; PPL draws its own images, always in fp32)."""
    return m.extractor.precision if m.extractor is not None else "fp32"


def _passes(metrics: list[Metric]) -> dict[tuple, list[Metric]]:
    """Metrics grouped by the samples they read, in order of first appearance; generated passes also by the
    generator's precision (`generator_precision`)."""
    groups: dict[tuple, list[Metric]] = {}
    for m in metrics:
        key = m.pass_key()
        groups.setdefault(key + (generator_precision(m),) if key[0] == "generated" else key, []).append(m)
    return groups


def check_inputs(G, metrics: list[Metric], options: EvaluationOptions) -> None:
    """What can be refused before any network is built: one generated side, what the metrics need of it."""
    if not isinstance(options, EvaluationOptions):
        raise TypeError(f"options must be EvaluationOptions, not {type(options).__name__}")
    if (G is None) == (options.gen is None):
        raise InputError("give either a generator or generated images (gen=..., --gen), not both or neither")
    if G is not None:
        check_generator(G)
    elif any(m.needs_generator for m in metrics):
        raise InputError(f"{next(m.name for m in metrics if m.needs_generator)} needs a generator (--ckpt), not images")
    for m in metrics:
        check_truncation(m.truncation_psi)
    check_gen_count(options.gen, metrics)


def run_metrics(G, metrics: list[Metric], options: EvaluationOptions) -> list[MetricResult]:
    """The results of `metrics` (built Metric objects), in order, on generator `G` (None: `options.gen` gives the
    generated images). See `stylegan_metrics.evaluate` for names and options."""
    check_inputs(G, metrics, options)
    with ranks.alone(not options.distributed):
        dev = ranks.init_from_env(resolve_device(options.device))  # each rank on its own GPU
        if options.out is not None:  # before the work, not after it; checked by the main rank for every rank
            on_main(lambda: check_results_file(options.out))
        keep_freed_memory()
        G = G.to(dev).eval() if isinstance(G, nn.Module) else G
        ctx = Context(G, dev, options)
        seconds: dict[int, float] = {}
        for m in metrics:  # networks first: cheap, and a missing file fails before any long reference pass
            start = time.time()
            m.prepare(ctx)
            seconds[id(m)] = time.time() - start
        ctx.check_weights_used()
        names = [m.name for m in metrics]  # prepare may name a computation by G's resolution (PPL's downsampling)
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"{', '.join(twice)} named twice: at {G.img_resolution} px these names are one "
                             "computation")
        requests = {id(m): m.reference_request() for m in metrics}
        start = time.time()
        ctx.reference.prefetch([r for r in requests.values() if r is not None])  # one pass for every metric
        readers = [m for m in metrics if requests[id(m)] is not None]
        for m in readers:
            seconds[id(m)] += (time.time() - start) / len(readers)
        for m in metrics:
            start = time.time()
            m.prepare_reference(ctx)
            seconds[id(m)] += time.time() - start
        results: dict[int, MetricResult] = {}
        states = []
        for key, group in _passes(metrics).items():
            start = time.time()
            batches, source = None, {}
            if key[0] == "generated":
                batches, source = generated_source(ctx, key[1], max(m.num for m in group), precision=key[2],
                                                   names=[m.name for m in group])
                if G is not None:  # what fixes the samples besides G and the seed
                    source = dict(source, sampling_version=SAMPLING_VERSION, generator_precision=key[2])
                else:
                    warn_if_sizes_differ(ctx, group)
            elif key[0] == "own":
                batches, source = group[0].batches(ctx), {"generator": ctx.generator_fingerprint(),
                                                          "seed": options.seed, "sampling_version": SAMPLING_VERSION}
            group_states = open_states(group, source_key=source, state_dir=options.state_path,
                                       chunk_size=options.chunk_size) if batches is not None else [None] * len(group)
            states += group_states
            chunks = run_pass(batches, group, group_states, chunk_size=options.chunk_size, progress=options.progress,
                              desc="+".join(m.name for m in group)) if batches is not None else {}
            shared = time.time() - start
            for i, m in enumerate(group):
                start = time.time()
                payload = reduce_over_ranks(m.reduction, chunks.get(i, {}))
                values, details = on_main(lambda: m.finish(payload))
                params = dict(m.params(), seed=options.seed, batch_size=options.batch_size, device=str(dev),
                              num_processes=ranks.world_size())
                if G is not None:
                    params["sampling_version"] = SAMPLING_VERSION
                    if key[0] == "generated":
                        params["generator_precision"] = key[2]
                total = seconds[id(m)] + shared + time.time() - start
                results[id(m)] = MetricResult(metric=m.name, results=values, params=params, total_time=total,
                                              num_gpus=ranks.gpus_used(dev), details=details,
                                              snapshot_pkl=options.snapshot_pkl)
        ordered = [results[id(m)] for m in metrics]
        state_dir = options.state_path
        if options.out is not None:  # by the main rank; a failure reaches every rank, none waits in a collective
            on_main(lambda: write_results(options.out, ordered, state_dir))
        for state in states:
            if state is not None:
                state.remove()
        if state_dir is not None and ranks.is_main() and state_dir.is_dir() and not any(state_dir.iterdir()):
            state_dir.rmdir()  # held only this run's folders
        return ordered
