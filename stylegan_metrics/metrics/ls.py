"""Linear separability (StyleGAN1): keep z, w and the attribute classifier's logits of each generated sample,
then SVMs and conditional entropy (formulas.separability) on rank 0."""

from __future__ import annotations

import numbers
import os
import warnings

import numpy as np
import pandas as pd
import torch

from stylegan_core import ranks
from stylegan_core.errors import InputError

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.metric import Metric, MetricFamily, MetricWarning, check_count, count_name, parse_count
from stylegan_metrics.engine.passes import RowsPart
from stylegan_metrics.engine.options import EvaluationOptions
from stylegan_metrics.engine.runner import run_metrics
from stylegan_metrics.networks.batching import batch_invariant
from stylegan_metrics.engine.state import DEFAULT_CHUNK, Payload
from stylegan_metrics.formulas.paths import box_downsample
from stylegan_metrics.formulas.separability import separability_from_arrays
from stylegan_metrics.networks.attributes import select_attributes
from stylegan_metrics.networks.registry import module_fingerprint
from stylegan_metrics.result import MetricResult

SPACES = {"both": ["z", "w"], "z": ["z"], "w": ["w"]}
MIN_KEPT = 1_000  # kept samples per attribute below which a score comes with a warning (StyleGAN1 keeps 100,000)


def few_kept_warning(name: str, num: int, keep: float) -> str | None:
    """The warning for a run that keeps fewer than MIN_KEPT samples per attribute, else None."""
    kept = int(round(num * keep))
    if kept >= MIN_KEPT:
        return None
    return (f"{name}: {kept:,} kept samples per attribute (keep {keep} of {num:,}), fewer than {MIN_KEPT:,}: "
            f"linear SVMs separate so few points easily, so the score looks better than it is and Z and W may "
            f"rank either way; StyleGAN1 keeps 100,000 (200,000 samples, keep 0.5)")


def constant_attributes_warning(name: str, table: pd.DataFrame) -> str | None:
    """The warning for attributes whose kept samples the classifier puts all in one class (entropy 0 by
    construction: nothing was measured), else None; `table` is separability_from_arrays's."""
    constant = table.attribute[(table.positive_rate == 0) | (table.positive_rate == 1)].tolist()
    if not constant:
        return None
    return (f"{name}: the classifier gives one class to every kept sample of {len(constant)} of {len(table)} "
            f"attributes ({', '.join(map(str, constant))}); each adds 0 bits whatever the latent space, so the score "
            f"looks better than it is (check the classifier and the generator's images)")


def classify(classifier: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits [N, K] of float images [N, C, H, W] in [-1, 1]; images above 256 px box-downsampled by H // 256."""
    if images.shape[2] > 256:
        images = box_downsample(images, images.shape[2] // 256)
    with torch.inference_mode():
        logits = batch_invariant(classifier, images)
    if not torch.isfinite(logits).all():
        raise InputError("the classifier produced NaN or Inf logits")
    return logits


class LinearSeparability(Metric):
    """2 ** (sum over attributes of H(Y|X) in bits) per latent space; z ~ N(0, I), no truncation, random noise."""

    def __init__(
        self,
        name: str,                        # metric name; results are '{name}_z' and '{name}_w'
        *,
        num: int,                         # generated samples
        keep: float = 0.5,                # fraction of most confident samples kept per attribute
        attributes: int | str | list[str] = 40,  # the first N of the classifier's, or names
        space: str = "both",              # 'z', 'w' or 'both'
        svm: str = "sklearn",             # 'sklearn' (LinearSVC, the reference) or 'torch' (batched, same objective)
    ):
        if space not in SPACES:
            raise InputError(f"space must be z, w or both, not {space!r}")
        if isinstance(keep, bool) or not (isinstance(keep, numbers.Real) and 0 < keep <= 1):
            raise InputError(f"keep must lie in (0, 1], not {keep!r}")
        num = check_count(num)
        kept = int(round(num * keep))  # formulas.separability.most_confident's count
        if kept < 2:
            raise InputError(f"keep {keep!r} of {num} samples keeps {kept} per attribute; an SVM needs at least 2 "
                             f"(raise keep or the number of samples)")
        self.name, self.num, self.keep, self.attributes, self.space, self.svm = name, num, keep, attributes, space, svm

    needs_generator = True  # it keeps z and w (a class attribute replacing Metric's property)

    def prepare(self, ctx: Context) -> None:
        self.classifier = ctx.attribute_classifier()
        available = list(getattr(self.classifier, "attributes", []))
        if not available:
            raise InputError("the classifier has no `.attributes` list")
        self.names = select_attributes(self.attributes, available=available)
        self.columns = [available.index(n) for n in self.names]
        self.device = ctx.device
        few = few_kept_warning(self.name, self.num, self.keep)
        if few and ranks.is_main():  # before the pass, once the options are known to be good
            warnings.warn(few, MetricWarning, stacklevel=2)

    def state_key(self) -> dict:
        return {"metric": "ls", "classifier": module_fingerprint(self.classifier), "attributes": self.names}

    def shapes(self, count: int) -> dict[str, tuple]:
        return {"z": (count, -1), "w": (count, -1), "logits": (count, len(self.names))}

    def new_part(self) -> RowsPart:
        return RowsPart(self.latents_and_logits)

    def latents_and_logits(self, view) -> Payload:
        """z, w = ws[:, -1] and the chosen attributes' logits of the view's samples, float32 [count, ...] each."""
        logits = view.output("attribute-logits", lambda images: classify(self.classifier, images), images="float")
        return {"z": view.z.float(), "w": view.ws[:, -1].float(), "logits": logits[:, self.columns].float()}

    def finish(self, chunks: dict[int, Payload]):
        arrays = {k: np.concatenate([payload[k] for payload in chunks.values()]) for k in ("z", "w", "logits")}
        results, tables = {}, []
        for sp in SPACES[self.space]:
            score, table = separability_from_arrays(arrays[sp], arrays["logits"], keep=self.keep, svm=self.svm,
                                                    attributes=self.names, device=self.device)
            results[f"{self.name}_{sp}"] = score
            tables.append(table.assign(space=sp))
        constant = constant_attributes_warning(self.name, tables[0])  # the kept samples: the same per space
        if constant:
            warnings.warn(constant, MetricWarning, stacklevel=2)
        return results, pd.concat(tables, ignore_index=True)

    def params(self) -> dict:
        return dict(num_samples=self.num, keep=self.keep, attributes=self.names, space=self.space, svm=self.svm)


STYLEGAN1_SAMPLES, STYLEGAN1_KEEP = 200_000, 0.5


def ls_name(num: int = STYLEGAN1_SAMPLES, keep: float = STYLEGAN1_KEEP) -> str:
    """The one name of a linear separability computation (results '<name>_z', '<name>_w'): StyleGAN1's 'ls' (200,000
    samples, the most confident half kept), the count pattern for another count ('ls500'), '_keep<fraction>' for
    another fraction ('ls500_keep0.25')."""
    count = "" if check_count(num) == STYLEGAN1_SAMPLES else count_name(num)
    if isinstance(keep, bool) or not (isinstance(keep, numbers.Real) and 0 < keep <= 1):
        raise InputError(f"keep must lie in (0, 1], not {keep!r}")
    return f"ls{count}" + ("" if float(keep) == STYLEGAN1_KEEP else f"_keep{float(keep)!r}")


def _make(name: str, groups: dict, *, attributes: int | str | list[str] = 40, space: str = "both",
          svm: str = "sklearn", **_) -> LinearSeparability:
    """A name's linear separability (ls_name's inverse); `attributes`, `space` and `svm` are options."""
    num = parse_count(groups["count"]) if groups["count"] else STYLEGAN1_SAMPLES
    try:
        keep = float(groups["keep"]) if groups["keep"] else STYLEGAN1_KEEP
    except ValueError:
        raise InputError(f"{name}: {groups['keep']!r} is not a fraction (write e.g. ls10k_keep0.25)") from None
    return LinearSeparability(ls_name(num, keep), num=num, keep=keep, attributes=attributes, space=space, svm=svm)


FAMILY = MetricFamily(
    "ls", r"ls{count}?(?:_keep(?P<keep>[0-9][0-9.e+-]*))?", _make, examples=("ls",),
    description="linear separability of 40 attributes in Z and W (StyleGAN1: 200k samples, half kept)")


def linear_separability(
    G,
    classifier: torch.nn.Module,
    *,
    num_samples: int = 200_000,
    keep: float = 0.5,
    attributes: int | str | list[str] = 40,
    space: str = "both",
    svm: str = "sklearn",
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    state_dir: str | os.PathLike | None = None,  # save finished chunks here; a rerun resumes from them
    chunk_size: int = DEFAULT_CHUNK,      # samples per chunk: the unit of sharding and of checkpointing
    distributed: bool = True,             # False: no sharding even in a torch.distributed group
    data: str | os.PathLike | None = None,  # a conditional G: labels drawn from this dataset's dataset.json
    class_index: int | None = None,       # a conditional G: this class for every sample (instead of `data`)
) -> MetricResult:
    """Results '<name>_z' and/or '<name>_w' (2 ** sum of H(Y|X) bits), the name the registry gives the computation
    (`ls_name`): 'ls' for StyleGAN1's 200,000 samples with half kept, else e.g. 'ls500', 'ls10k_keep0.25'; `details`
    has one row per attribute and space. A weak score (few kept samples, a classifier constant on the kept
    samples of an attribute) comes with a MetricWarning (rank 0 only).

    z ~ N(0, I), no truncation, random noise; w = ws[:, -1]; images above 256 px are box-downsampled by H // 256
    before the classifier; only z, w and the logits are kept (never the images). A conditional G draws labels as
    every metric does (`data`'s dataset.json, or `class_index`)."""
    from stylegan_metrics.metrics import build_metric  # the registry: one name per computation

    metric = build_metric(ls_name(num_samples, keep), attributes=attributes, space=space, svm=svm)
    options = EvaluationOptions(classifier=classifier, batch_size=batch_size, seed=seed, device=device,
                                progress=progress, state_dir=state_dir, chunk_size=chunk_size, distributed=distributed,
                                data=data, class_index=class_index)
    return run_metrics(G, [metric], options)[0]
