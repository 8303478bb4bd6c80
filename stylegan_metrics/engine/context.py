"""Everything one evaluation shares: the generator, its device and options, the networks (each built once however
many metrics use it), the generator's fingerprint and labels, and the reference data (engine.reference)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from stylegan_core.errors import InputError

from stylegan_metrics.networks.registry import (FeatureExtractor, Similarity, build_feature_extractor,
                                                build_similarity, module_fingerprint)
from stylegan_metrics.stats import ReferenceStats

from .labels import conditioning, conditioning_key
from .options import EvaluationOptions
from .reference import ReferenceService
from .reference_images import is_images

DEFAULT_FEATURES = "inception-v3"


@dataclass
class Context:
    G: Any                                   # a generator of NVIDIA's protocol, on `device`, in eval mode (or None
                                             # when `options.gen` gives the generated images)
    device: torch.device
    options: EvaluationOptions = field(default_factory=EvaluationOptions)
    _networks: dict = field(default_factory=dict, repr=False)
    _weights_used: set = field(default_factory=set, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.reference = ReferenceService(self.options, self.device,
                                          resolution=self.G.img_resolution if self.G is not None else None)

    def weights_for(self, network: str) -> str | os.PathLike | None:
        """The weights file of a standard network: the dict entry, or the single path when one network needs it.
        A '-pil' variant reads its network's file: under either name."""
        weights, base = self.options.weights, network.removesuffix("-pil")
        self._weights_used.add(base)
        if isinstance(weights, dict):
            return weights.get(network, weights.get(base))
        if weights is not None:
            if len(self._weights_used) > 1:
                raise InputError(f"one weights file given but {' and '.join(sorted(self._weights_used))} both need "
                                 f"one: pass a dict {{network name: file}}")
        return weights

    def check_weights_used(self) -> None:
        """Once every metric has built its networks: a weights file named for a network that no metric runs, or a
        single file when none runs, is refused (a typo or a forgotten metric would otherwise go unnoticed)."""
        weights = self.options.weights
        if isinstance(weights, dict):
            unused = sorted(name for name in weights if name.removesuffix("-pil") not in self._weights_used)
            if unused:
                runs = ", ".join(sorted(self._weights_used)) or "no standard network"
                raise InputError(f"weights given for {', '.join(unused)}, which no metric of this evaluation runs "
                                 f"(they run {runs})")
        elif weights is not None and not self._weights_used:
            raise InputError(f"weights file {weights} given, but no metric of this evaluation runs a standard network "
                             f"that reads one")

    def feature_extractor(self, network: str | nn.Module | FeatureExtractor = DEFAULT_FEATURES, *,
                          replaceable: bool = False) -> FeatureExtractor:
        """The feature network `network` (a registry name or a module), or the evaluation's `features` option where
        one is given and the metric lets it replace its own (`replaceable`); built once per evaluation."""
        features = self.options.features if replaceable and self.options.features is not None else network
        precision = self.options.precision
        key = ("features", features if isinstance(features, str) else id(features), precision)
        if key not in self._networks:
            name = features if isinstance(features, str) else None
            self._networks[key] = build_feature_extractor(features, weights=self.weights_for(name) if name else None,
                                                          device=self.device, precision=precision)
        return self._networks[key]

    def similarity_network(self) -> Similarity:
        similarity = self.options.similarity
        key = ("similarity", similarity if isinstance(similarity, str) else id(similarity))
        if key not in self._networks:
            name = similarity if isinstance(similarity, str) else None
            self._networks[key] = build_similarity(similarity, weights=self.weights_for(name) if name else None,
                                                   device=self.device)
        return self._networks[key]

    def attribute_classifier(self) -> nn.Module:
        if self.options.classifier is None:
            raise InputError("linear separability needs an attribute classifier (classifier=..., --classifier)")
        if ("classifier",) not in self._networks:
            self._networks[("classifier",)] = self.options.classifier.to(self.device).eval()
        return self._networks[("classifier",)]

    def generator_fingerprint(self) -> str | None:
        """The generator's weights hashed, once per evaluation (None without a generator)."""
        if "generator" not in self._memo:
            self._memo["generator"] = module_fingerprint(self.G) if self.G is not None else None
        return self._memo["generator"]

    def conditioning(self) -> tuple[Callable[[int, int], torch.Tensor] | None, dict]:
        """A conditional G's labels by sample index ((start, count) -> c [count, c_dim]; None for an unconditional
        G) and what fixes them (engine.labels), read once per evaluation."""
        if "conditioning" not in self._memo:
            table = self._label_table()
            o = self.options
            self._memo["conditioning"] = (conditioning(self.G, table=table, seed=o.seed, class_index=o.class_index),
                                          conditioning_key(self.G, table=table, class_index=o.class_index))
        return self._memo["conditioning"]

    def _label_table(self) -> np.ndarray | None | InputError:
        """The reference dataset's dataset.json labels for a conditional G without --class (else None); the reason
        when there are none, raised only where labels are drawn."""
        c_dim = int(getattr(self.G, "c_dim", 0) or 0)
        data = self.options.data
        if not c_dim or self.options.class_index is not None:
            return None
        if data is None or not isinstance(data, (str, os.PathLike)) or not is_images(data):
            return InputError(f"the generator is conditional (c_dim = {c_dim}): give the labelled reference dataset "
                              f"(--data with dataset.json) to draw labels from, or --class N")
        labels = self.reference.images(check_size=False).dataset.read_labels()
        if labels is None:
            return InputError(f"{data} has no dataset.json labels to draw a conditional generator's labels from; "
                              f"use --class N")
        return labels

    def reference_stats(self, extractor: FeatureExtractor, max_real: int | None = None, *,
                        folder: str = "reference") -> ReferenceStats:
        """Feature statistics of the reference (its first `max_real` images): given, cached or computed, once."""
        return self.reference.stats(extractor, max_real, folder=folder)

    def reference_features(self, extractor: FeatureExtractor, output: int = 0, max_real: int | None = None, *,
                           folder: str = "reference") -> np.ndarray | None:
        """Output `output` of `extractor` on the reference images, [N, D] float32 on the main rank (None elsewhere)."""
        return self.reference.features(extractor, output, max_real, folder=folder)
