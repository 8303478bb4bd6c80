"""The metric registry: NVIDIA's metric names (and the count pattern: fid10k_full, ls10k, ...) mapped to the
modules that compute them, and `evaluate`, which runs several in one pass."""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import nn

from stylegan_core.errors import InputError

from stylegan_metrics.engine.generated import gen_count
from stylegan_metrics.engine.metric import Metric, MetricFamily, count_name
from stylegan_metrics.engine.options import EvaluationOptions, WeightsOption
from stylegan_metrics.engine.runner import run_metrics
from stylegan_metrics.engine.state import DEFAULT_CHUNK
from stylegan_metrics.networks.registry import FeatureExtractor
from stylegan_metrics.result import MetricResult

from . import density_coverage, equivariance, fd_dinov2, fid, inception_score, kid, ls, ppl, precision_recall

FAMILIES: list[MetricFamily] = [fid.FAMILY, kid.FAMILY, precision_recall.FAMILY, density_coverage.FAMILY,
                                inception_score.FAMILY, ppl.FAMILY, ls.FAMILY, equivariance.TRANSLATION,
                                equivariance.ROTATION, fd_dinov2.FAMILY]


def register(family: MetricFamily) -> MetricFamily:
    """Add a metric family (names matching its pattern) to the registry; a later family wins a name."""
    FAMILIES.insert(0, family)
    METRICS.update({name: family for name in family.examples})
    return family


METRICS: dict[str, MetricFamily] = {name: f for f in reversed(FAMILIES) for name in f.examples}
"""NVIDIA's metric names -> their registry entries (`family.description` says what each computes). Any name
matching a family's pattern is accepted too: the count may change (fid10k_full, ppl2500_wend, ls10k)."""


def build_metric(name: str, **options) -> Metric:
    """The Metric a name stands for, with the evaluation's options that change a metric's definition
    (`cov`, `truncation_psi`, `attributes`)."""
    for family in FAMILIES:
        groups = family.match(name)
        if groups is not None:
            return family.make(name, groups, **options)
    known = ", ".join(sorted({n for f in FAMILIES for n in f.examples}))
    raise InputError(f"unknown metric {name!r}; known: {known} (counts may change: fid10k_full, ls10k, ...)")


BARE_NAMES = {"fid": "fid{n}_full", "kid": "kid{n}_full", "pr": "pr{n}3_full", "dc": "dc{n}5_full", "is": "is{n}"}


def with_count(name: str, gen) -> str:
    """With generated images given as files, a bare family name means all of them: 'fid' -> 'fid10000_full'."""
    return BARE_NAMES[name].format(n=count_name(gen_count(gen))) if name in BARE_NAMES else name


def build_metrics(metrics: list[str] | str, *, gen=None, **options) -> list[Metric]:
    """The Metrics of a list of names (or one comma-separated string), as `evaluate` and `stylegan-metrics
    evaluate` run them: bare names ('fid') only with generated images as files (`gen`), each computation once
    (two names of one computation, 'ppl_wend,ppl50k_wend', are refused like a repeated name). `options`:
    build_metric's."""
    if not isinstance(metrics, (str, list, tuple)):
        raise InputError(f"metrics: a list of names or one comma-separated string, not {type(metrics).__name__}")
    names = [n.strip() for n in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InputError("no metric named")
    for n in names:
        if n in BARE_NAMES and gen is None:
            raise InputError(f"{n!r} without a count means every image of generated images given as files (gen=..., "
                             f"--gen); with a generator, name the count: "
                             f"{BARE_NAMES[n].format(n='50k')}, {BARE_NAMES[n].format(n='10k')}, ...")
    built = [build_metric(with_count(n, gen) if gen is not None else n, **options) for n in names]
    seen: dict[str, str] = {}
    for n, m in zip(names, built):
        if m.name in seen:
            same = f": {seen[m.name]!r} and {n!r} both name {m.name}" if seen[m.name] != n else f": {n}"
            raise InputError(f"a metric is named twice{same}")
        seen[m.name] = n
    return built


def evaluate(
    G,
    metrics: list[str] | str,
    *,
    data=None,                                # reference: folder, zip, dataset object, stats .npz or ReferenceStats
    features: str | nn.Module | FeatureExtractor | None = None,  # replaces inception-v3 in FID, KID and IS
    similarity: str | Callable = "lpips-vgg16",                   # perceptual distance of PPL
    weights: WeightsOption = None,            # a weights file, or {network name: file} when several need one
    classifier: nn.Module | None = None,      # attribute classifier of linear separability
    seed: int = 0,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: bool = True,
    state_dir: str | os.PathLike | None = None,  # finished chunks saved per metric; a rerun resumes
    chunk_size: int = DEFAULT_CHUNK,
    precision: str = "fp32",                  # feature networks' arithmetic (PPL always fp32)
    truncation_psi: float = 1.0,              # FID's images (PPL and LS never truncate)
    cov: str | None = None,                   # None: NVIDIA's 1/N; 'unbiased': the StyleGAN1 TF code's N - 1
    attributes: int | str | list[str] = 40,   # linear separability: the classifier's first N, or names
    workers: int | None = None,
    distributed: bool = True,
    out: str | os.PathLike | None = None,     # append each result as a JSON line before the saved state goes
    snapshot_pkl: str | None = None,          # the checkpoint path recorded in the results
    gen=None,                                 # instead of G (None): generated images (folder, zip; FID: statistics)
    class_index: int | None = None,           # a conditional G: this class for every sample (default: data's labels)
    feature_batch_size: int | None = None,    # generated images per feature-network call (None: batch_size)
) -> list[MetricResult]:
    """Several metrics by name (NVIDIA's: 'fid50k_full', 'ppl_wend', 'ls', ...) in one call, one MetricResult each,
    in order. `G` may be None with `gen` a folder or zip of generated images (bare names 'fid', 'kid', 'pr', 'dc',
    'is' then use all of them). Every generated sample index is made once for all metrics that look at generated
    images (FID and LS share images when neither truncates); PPL draws its own pairs. Results equal the
    single-metric functions'."""
    if (G is None) == (gen is None):
        raise InputError("give either a generator or generated images (gen=..., --gen), not both or neither")
    built = build_metrics(metrics, gen=gen, cov=cov, truncation_psi=truncation_psi, attributes=attributes)
    options = EvaluationOptions(data=data, features=features, similarity=similarity, weights=weights,
                                classifier=classifier, seed=seed, batch_size=batch_size, device=device,
                                progress=progress, state_dir=state_dir, chunk_size=chunk_size, precision=precision,
                                distributed=distributed, workers=workers, out=out, snapshot_pkl=snapshot_pkl, gen=gen,
                                class_index=class_index, feature_batch_size=feature_batch_size)
    return run_metrics(G, built, options)


__all__ = ["FAMILIES", "METRICS", "MetricFamily", "build_metric", "build_metrics", "evaluate", "register"]
