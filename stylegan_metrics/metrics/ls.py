"""Linear separability (StyleGAN1): keep z, w and the attribute classifier's logits of each generated sample,
then SVMs and conditional entropy (formulas.separability) on rank 0."""

from __future__ import annotations

import numbers
import os

import numpy as np
import pandas as pd
import torch

from stylegan_core import ranks
from stylegan_core.errors import InputError

from stylegan_metrics.engine.context import Context
from stylegan_metrics.engine.metric import Metric, MetricFamily, check_count, count_name, parse_count
from stylegan_metrics.engine.passes import RowsPart
from stylegan_metrics.engine.runner import run_metrics
from stylegan_metrics.networks.batching import batch_invariant
from stylegan_metrics.engine.state import DEFAULT_CHUNK, Payload
from stylegan_metrics.formulas.paths import box_downsample
from stylegan_metrics.formulas.separability import separability_from_arrays
from stylegan_metrics.networks.attributes import select_attributes
from stylegan_metrics.networks.registry import module_fingerprint
from stylegan_metrics.result import MetricResult

SPACES = {"both": ["z", "w"], "z": ["z"], "w": ["w"]}


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

    @property
    def folder(self) -> str:
        return "ls"

    needs_generator = True  # it keeps z and w

    def prepare(self, ctx: Context) -> None:
        self.classifier = ctx.attribute_classifier()
        available = list(getattr(self.classifier, "attributes", []))
        if not available:
            raise InputError("the classifier has no `.attributes` list")
        self.names = select_attributes(self.attributes, available=available)
        self.columns = [available.index(n) for n in self.names]
        self.device = ctx.device

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
        chunks = ranks.gather_chunks_to_main(chunks)
        outcome = None
        if ranks.is_main():  # the SVMs run once, on rank 0; every rank returns its result
            arrays = {k: np.concatenate([chunks[c][k] for c in sorted(chunks)]) for k in ("z", "w", "logits")}
            results, tables = {}, []
            for sp in SPACES[self.space]:
                score, table = separability_from_arrays(arrays[sp], arrays["logits"], keep=self.keep, svm=self.svm,
                                                        attributes=self.names, device=self.device)
                results[f"{self.name}_{sp}"] = score
                tables.append(table.assign(space=sp))
            outcome = results, pd.concat(tables, ignore_index=True)
        return ranks.broadcast_from_main(outcome)

    def params(self) -> dict:
        return dict(num_samples=self.num, keep=self.keep, attributes=self.names, space=self.space, svm=self.svm)


def _make(name: str, groups: dict, *, attributes: int | str | list[str] = 40, **_) -> LinearSeparability:
    num = parse_count(groups["count"]) if groups["count"] else 200_000
    return LinearSeparability(f"ls{count_name(num)}" if groups["count"] else "ls", num=num, attributes=attributes)


FAMILY = MetricFamily(
    "ls", r"ls{count}?", _make, examples=("ls",),
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
) -> MetricResult:
    """Results `ls_z` and/or `ls_w` (2 ** sum of H(Y|X) bits); `details` has one row per attribute and space.

    z ~ N(0, I), no truncation, random noise; w = ws[:, -1]; images above 256 px are box-downsampled by H // 256
    before the classifier; only z, w and the logits are kept (never the images)."""
    metric = LinearSeparability("ls", num=num_samples, keep=keep, attributes=attributes, space=space, svm=svm)
    return run_metrics(G, [metric], classifier=classifier, batch_size=batch_size, seed=seed, device=device,
                       progress=progress, state_dir=state_dir, chunk_size=chunk_size, distributed=distributed)[0]
