"""What an evaluation runs with besides the generator and the metrics: one frozen object, built once by `evaluate`,
the single-metric functions and the CLI, read by the runner, the context and the metrics."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from stylegan_core.errors import InputError

from stylegan_metrics.precision import check_precision
from stylegan_metrics.stats import ReferenceStats

from .reference_images import is_image_dataset
from .state import DEFAULT_CHUNK

WeightsOption = str | os.PathLike | dict[str, str | os.PathLike] | None


def _positive_int(value, what: str, *, allow_none: bool = False, minimum: int = 1) -> int | None:
    """`value` as an int (numpy integers too), or an InputError; None where `allow_none`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _is_path(value) -> bool:
    return isinstance(value, (str, os.PathLike))


def _check_kinds(data, gen, weights, classifier) -> None:
    """What the reference, the generated side, the weights and the classifier may be, refused before any work
    (rather than a TypeError from deep inside a run)."""
    if not (data is None or _is_path(data) or isinstance(data, ReferenceStats) or is_image_dataset(data)):
        raise InputError(f"reference data of type {type(data).__name__}: give an image folder, a zip, statistics "
                         f"(.npz or ReferenceStats), or a dataset object with a fingerprint() method")
    if not (gen is None or _is_path(gen)):
        raise InputError(f"generated images of type {type(gen).__name__}: give a folder or a zip of images (FID: "
                         f"also statistics: a .npz or EDM2 .pkl path)")
    if not (weights is None or _is_path(weights) or (isinstance(weights, dict) and all(
            isinstance(name, str) and _is_path(path) for name, path in weights.items()))):
        raise InputError(f"weights must be a file path or a dict {{network name: file path}}, not {weights!r}")
    if not (classifier is None or isinstance(classifier, nn.Module)):
        raise InputError(f"the attribute classifier must be a torch module (a file or 'toyfaces' is what the CLI's "
                         f"--classifier loads), not {classifier!r}")


@dataclass(frozen=True, kw_only=True)
class EvaluationOptions:
    """The options of one evaluation. A metric's own definition (covariance, truncation, attributes, counts) is
    not here: it is part of the metric's name (`build_metric`)."""

    # what is compared
    data: Any = None                          # reference: folder, zip, dataset object, stats .npz or ReferenceStats
    gen: Any = None                           # instead of a generator: a folder or zip of images (FID: statistics)
    class_index: int | None = None            # a conditional G: this class for every sample (None: data's labels)
    # networks
    features: str | nn.Module | Any | None = None  # feature network of the metrics that read Inception features
                                              # (FID, KID, IS); None: each metric's own (inception-v3)
    similarity: str | Callable = "lpips-vgg16"  # perceptual distance of PPL
    weights: WeightsOption = None             # a weights file, or {network name: file} when several need one
    classifier: nn.Module | None = None       # attribute classifier of linear separability
    precision: str = "fp32"                   # feature networks' arithmetic (PPL's network always fp32)
    # samples
    seed: int = 0                             # sample i depends only on (seed, i)
    batch_size: int = 32                      # samples per generator call (never changes a result)
    feature_batch_size: int | None = None     # generated images per feature-network call (None: batch_size)
    # where and how
    device: str | torch.device | None = None  # None: CUDA when available
    distributed: bool = True                  # False: everything in this process even inside a process group
    workers: int | None = None                # image-decoding processes for reference images (None: by device)
    progress: bool = True                     # progress bars (a status line off a terminal)
    state_dir: str | os.PathLike | None = None  # finished chunks saved per metric; a rerun resumes
    chunk_size: int = DEFAULT_CHUNK           # samples per chunk: the unit of sharding and of saved state
    cache: bool = True                        # reference statistics and features cached under $STYLEGAN_METRICS_HOME
    # results
    out: str | os.PathLike | None = None      # append each result as a JSON line before the saved state goes
    snapshot_pkl: str | None = None           # the checkpoint path recorded in the results

    def __post_init__(self):
        checked = dict(batch_size=_positive_int(self.batch_size, "the batch size"),
                       feature_batch_size=_positive_int(self.feature_batch_size, "the feature batch size",
                                                        allow_none=True),
                       chunk_size=_positive_int(self.chunk_size, "the chunk size"),
                       seed=_positive_int(self.seed, "the seed", minimum=0),
                       workers=_positive_int(self.workers, "the number of image-decoding workers", allow_none=True,
                                             minimum=0),
                       class_index=_positive_int(self.class_index, "the class index (--class)", allow_none=True,
                                                 minimum=0))
        for name, value in checked.items():  # numpy integers as ints: they reach JSON results and state keys
            object.__setattr__(self, name, value)
        _check_kinds(self.data, self.gen, self.weights, self.classifier)
        check_precision(self.precision)

    @property
    def state_path(self) -> Path | None:
        return Path(self.state_dir) if self.state_dir else None
