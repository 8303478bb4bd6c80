"""Everything one evaluation shares: the generator, device, seed and batch sizes, the options metrics read,
and the networks, each built once however many metrics use it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from stylegan_core.errors import InputError

from stylegan_metrics.networks.registry import (FeatureExtractor, Similarity, build_feature_extractor,
                                                build_similarity)

from .state import DEFAULT_CHUNK

WeightsOption = str | os.PathLike | dict[str, str | os.PathLike] | None


@dataclass
class Context:
    G: Any                                   # a generator of NVIDIA's protocol, on `device`, in eval mode (or None
                                             # when `gen` gives the generated images)
    device: torch.device
    seed: int = 0                            # sample i depends only on (seed, i)
    batch_size: int = 32                     # samples per generator call (never changes a result)
    chunk_size: int = DEFAULT_CHUNK          # samples per chunk: the unit of sharding and of saved state
    progress: bool = True
    state_dir: Path | None = None            # finished chunks saved here per metric; a rerun resumes
    data: Any = None                         # reference: folder, zip, dataset object, stats .npz or ReferenceStats
    workers: int | None = None               # image-decoding processes for the reference data
    features: str | nn.Module | FeatureExtractor = "inception-v3"  # feature network of FID-like metrics
    similarity: str | Callable = "lpips-vgg16"                   # perceptual distance of PPL
    weights: WeightsOption = None            # a weights file, or {network name: file} when several need one
    precision: str = "fp32"                  # feature networks' arithmetic (never PPL's)
    classifier: nn.Module | None = None      # attribute classifier of linear separability
    cov: str | None = None                   # None: each name's own covariance rule
    truncation_psi: float = 1.0              # images of FID-like metrics (never PPL or LS)
    gen: Any = None                          # instead of G: a folder or zip of images (or, for FID, statistics .npz)
    class_index: int | None = None           # a conditional G: this class for every sample (None: the data's labels)
    _networks: dict = field(default_factory=dict, repr=False)
    _weights_used: set = field(default_factory=set, repr=False)

    def weights_for(self, network: str) -> str | os.PathLike | None:
        """The weights file of a standard network: the dict entry, or the single path when one network needs it."""
        if isinstance(self.weights, dict):
            return self.weights.get(network)
        if self.weights is not None:
            self._weights_used.add(network)
            if len(self._weights_used) > 1:
                raise InputError(f"one weights file given but {' and '.join(sorted(self._weights_used))} both need "
                                 f"one: pass a dict {{network name: file}}")
        return self.weights

    def feature_extractor(self, features: str | nn.Module | FeatureExtractor | None = None) -> FeatureExtractor:
        features = self.features if features is None else features
        key = ("features", features if isinstance(features, str) else id(features), self.precision)
        if key not in self._networks:
            name = features if isinstance(features, str) else None
            self._networks[key] = build_feature_extractor(features, weights=self.weights_for(name) if name else None,
                                                          device=self.device, precision=self.precision)
        return self._networks[key]

    def similarity_network(self) -> Similarity:
        key = ("similarity", self.similarity if isinstance(self.similarity, str) else id(self.similarity))
        if key not in self._networks:
            name = self.similarity if isinstance(self.similarity, str) else None
            self._networks[key] = build_similarity(self.similarity, weights=self.weights_for(name) if name else None,
                                                   device=self.device)
        return self._networks[key]

    def attribute_classifier(self) -> nn.Module:
        if self.classifier is None:
            raise InputError("linear separability needs an attribute classifier (classifier=..., --classifier)")
        if ("classifier",) not in self._networks:
            self._networks[("classifier",)] = self.classifier.to(self.device).eval()
        return self._networks[("classifier",)]
