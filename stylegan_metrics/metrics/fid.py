"""FID: feature statistics of generated images against those of the reference data, Fréchet distance."""

from __future__ import annotations

import os

import torch

from stylegan_core.errors import InputError

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.generated import gen_count, gen_is_statistics
from stylegan_metrics.engine.metric import Metric, MetricFamily, check_count, count_name, parse_count
from stylegan_metrics.engine.options import EvaluationOptions
from stylegan_metrics.engine.passes import STATS_SHAPES, StatsPart
from stylegan_metrics.engine.reference import ReferenceRequest, given_statistics
from stylegan_metrics.engine.runner import run_metrics
from stylegan_metrics.engine.state import DEFAULT_CHUNK, Payload
from stylegan_metrics.formulas.frechet import FrechetOverflow, frechet_distance
from stylegan_metrics.networks.registry import FeatureExtractor
from stylegan_metrics.result import MetricResult
from stylegan_metrics.stats import COVARIANCE_KINDS, FeatureStats, ReferenceStats


def check_width(where: str, ref: ReferenceStats, extractor: FeatureExtractor, *, resolution: int,
                device: torch.device) -> None:
    """InputError when given statistics have another number of features than `extractor` gives (one black image of
    `resolution` pixels through it: for checks outside a metric run, whose networks count every image)."""
    width = extractor(torch.zeros(1, 3, resolution, resolution, dtype=torch.uint8, device=device)).shape[1]
    if width != ref.mu.shape[0]:
        raise InputError(f"{where}: they have {ref.mu.shape[0]} features, {extractor.name} gives {width}")


class FID(Metric):
    """Fréchet distance between Gaussians fitted to the features of `num` generated images and of the reference
    (its first `max_real` images, or all of them with max_real=None)."""

    network = "inception-v3"  # its feature network
    replaceable = True         # the evaluation's `features` option replaces it
    reduction = "sum"          # the generated images' float64 feature sums, over every chunk and rank

    def __init__(
        self,
        name: str,                        # result name
        *,
        num: int,                         # generated images
        max_real: int | None,             # reference images used (None: all)
        cov: str,                         # 'biased' (1/N, NVIDIA stylegan2-ada) or 'unbiased' (N - 1, StyleGAN1 TF)
        truncation_psi: float = 1.0,
    ):
        if cov not in COVARIANCE_KINDS:
            raise InputError(f"cov must be one of {', '.join(COVARIANCE_KINDS)}, not {cov!r}")
        num = check_count(num)
        if max_real is not None:
            max_real = check_count(max_real)
        self.name, self.num, self.max_real, self.cov, self.truncation_psi = name, num, max_real, cov, truncation_psi

    def prepare(self, ctx: Context) -> None:
        self.extractor = ctx.feature_extractor(self.network, replaceable=self.replaceable)
        self.gen_stats = None
        if gen_is_statistics(ctx.options.gen):  # both sides given as statistics: no images to run
            self.samples = "none"

    def reference_request(self) -> ReferenceRequest:
        return ReferenceRequest("stats", self.extractor, 0, self.max_real, folder=f"{self.folder}-reference")

    def prepare_reference(self, ctx: Context) -> None:
        data = ctx.options.data
        self.reference = ctx.reference.value(self.reference_request())
        self.reference.covariance(self.cov)  # refused now, not after the pass (the biased one needs n)
        self.reference_name = str(data) if not isinstance(data, ReferenceStats) else "ReferenceStats"
        if self.samples == "none":
            self.gen_stats = given_statistics(ctx.options.gen, self.extractor, resolution=None)
            self.gen_stats.covariance(self.cov)
            n = self.gen_stats.n  # 0: the file does not say (pytorch-fid's)
            if n and n != self.num:  # the name's count would be a wrong label: statistics cannot be cut to it
                raise InputError(f"{ctx.options.gen} holds statistics of {n:,} generated images, but {self.name} "
                                 f"names {self.num:,}; name their count, {count_name(n)} (as in "
                                 f"fid{count_name(n)}_full, fd_dinov2_{count_name(n)})")

    def state_key(self) -> dict:
        return {"metric": "fid", "features": self.extractor.fingerprint}

    def shapes(self, count: int) -> dict[str, tuple]:
        return STATS_SHAPES

    def new_part(self) -> StatsPart:
        return StatsPart(self.extractor)

    def finish(self, total: Payload | None):
        ref = self.reference
        if self.gen_stats is not None:
            mu, sigma = self.gen_stats.mu, self.gen_stats.covariance(self.cov)
        else:
            gen = FeatureStats.from_arrays(total)
            mu, sigma = gen.mean(), gen.covariance(self.cov)
        if mu.shape[0] != ref.mu.shape[0]:
            raise InputError(f"{self.reference_name}: they have {ref.mu.shape[0]} features, {self.extractor.name} gives "
                             f"{mu.shape[0]}")
        try:
            value = frechet_distance(mu, sigma, ref.mu, ref.covariance(self.cov))
        except FrechetOverflow as e:
            raise FrechetOverflow(f"{self.reference_name}: {e}") from None
        return {self.name: value}, None

    def params(self) -> dict:
        return dict(num_gen=self.num, max_real=self.max_real, cov=self.cov, truncation_psi=self.truncation_psi,
                    features=self.extractor.name, features_fingerprint=self.extractor.fingerprint,
                    precision=self.extractor.precision, reference=self.reference_name, reference_n=self.reference.n)


def fid_name(num: int, full: bool, cov: str) -> str:
    """The one name of an FID computation. NVIDIA's naming: 'fid50k_full' (all reference images, 1/N covariance),
    'fid50k' (the first 50k reference images); the StyleGAN1 TF flavour (N - 1) carries '_unbiased' so that it
    never passes for NVIDIA's number."""
    if cov not in COVARIANCE_KINDS:
        raise InputError(f"cov must be one of {', '.join(COVARIANCE_KINDS)}, not {cov!r}")
    return f"fid{count_name(check_count(num))}{'_full' if full else ''}{'_unbiased' if cov == 'unbiased' else ''}"


def _make(name: str, groups: dict, *, cov: str | None = None, truncation_psi: float = 1.0, **_) -> FID:
    """A name's FID; `cov` (evaluate's option) applies to names without '_unbiased' and may not contradict it."""
    num = parse_count(groups["count"])
    if groups["unbiased"]:
        if cov not in (None, "unbiased"):
            raise InputError(f"{name} is the unbiased (N - 1) covariance, but cov={cov!r} was asked for")
        cov = "unbiased"
    cov = cov or "biased"
    return FID(fid_name(num, bool(groups["full"]), cov), num=num, max_real=None if groups["full"] else num, cov=cov,
               truncation_psi=truncation_psi)


FAMILY = MetricFamily(
    "fid", r"fid{count}(?P<full>_full)?(?P<unbiased>_unbiased)?", _make, examples=("fid50k_full", "fid50k"),
    description="Fréchet distance of Inception features; _full: against every reference image, else against the "
                "first N (N = the generated count); covariance 1/N (_unbiased: N - 1)")


def fid(
    G,
    reference: str | os.PathLike | ReferenceStats,
    *,
    num_gen: int | None = 50_000,
    batch_size: int = 32,
    seed: int = 0,
    truncation_psi: float = 1.0,
    features: str | torch.nn.Module | FeatureExtractor = "inception-v3",
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    cov: str = "unbiased",
    state_dir: str | os.PathLike | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    precision: str = "fp32",
    distributed: bool = True,
    workers: int | None = None,
) -> MetricResult:
    """Fréchet Inception Distance of `num_gen` generated images against every image of `reference` (a folder, a
    zip, a statistics .npz or ReferenceStats). `G` is a generator, or the generated images themselves: a folder, a
    zip or a statistics .npz (with `num_gen=None`: all of them). `cov='biased'` is NVIDIA stylegan2-ada's 1/N and names the result
    as NVIDIA does ('fid50k_full'); the default 'unbiased' (N - 1, the StyleGAN1 TensorFlow code) names it
    'fid50k_full_unbiased'.

    Under torchrun (or `--gpus N`) the samples are shared out by index, the sums all-reduced in float64. With
    `state_dir` every finished chunk of `chunk_size` samples is saved there and a rerun resumes from them.
    `precision` ('fp32', 'tf32', 'bf16') is the feature network's arithmetic. `distributed=False` computes
    everything in this process even inside an initialised process group. `workers`: image-decoding processes
    when `reference` is a folder or zip."""
    gen = None
    if isinstance(G, (str, os.PathLike)):
        G, gen = None, G
        num_gen = gen_count(gen) if num_gen is None else num_gen
    from stylegan_metrics.metrics import build_metric  # the registry: one name per computation

    metric = build_metric(fid_name(num_gen, True, cov), truncation_psi=truncation_psi)
    options = EvaluationOptions(gen=gen, data=reference, batch_size=batch_size, seed=seed, features=features,
                                weights=weights, device=device, progress=progress, state_dir=state_dir,
                                chunk_size=chunk_size, precision=precision, distributed=distributed, workers=workers)
    return run_metrics(G, [metric], options)[0]
