"""Inception Score: exp of the mean KL divergence between each image's class distribution and the marginal, over
consecutive splits of the generated images (formulas.inception_score)."""

from __future__ import annotations

import numpy as np

from stylegan_metrics.engine.metric import MetricFamily, parse_count
from stylegan_metrics.formulas.inception_score import inception_score_from_probs

from .kept import KeptFeatures


class InceptionScore(KeptFeatures):
    """Mean and standard deviation over `num_splits` splits of softmax(Inception logits without the output bias)."""

    output = 1            # inception-v3's second output: the unbiased logits [N, 1008]
    compares = False      # generated images only

    def __init__(self, name: str, *, num: int, num_splits: int = 10, truncation_psi: float = 1.0):
        super().__init__(name, num=num, truncation_psi=truncation_psi)
        self.num_splits = num_splits

    def compute(self, gen, real):
        logits = gen.astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)  # softmax in float64
        mean, std = inception_score_from_probs(probs, num_splits=self.num_splits)
        return {f"{self.name}_mean": mean, f"{self.name}_std": std}

    def params(self) -> dict:
        return dict(super().params(), num_splits=self.num_splits)


FAMILY = MetricFamily(
    "is", r"is{count}",
    lambda name, groups, *, truncation_psi=1.0, **_: InceptionScore(name, num=parse_count(groups["count"]),
                                                                    truncation_psi=truncation_psi),
    examples=("is50k",), description="Inception Score: mean and std over 10 consecutive splits")
