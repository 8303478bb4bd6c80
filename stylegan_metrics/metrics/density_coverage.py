"""Density and coverage (Naeem et al. 2020): generated VGG16 fc2 features counted in the k-NN balls of reference
features, distances in blocks (formulas.density_coverage)."""

from __future__ import annotations

import warnings

import numpy as np

from stylegan_metrics.engine.metric import MetricWarning
from stylegan_metrics.formulas.density_coverage import density_coverage_from_arrays

from .precision_recall import NeighbourMetric, neighbour_family


class DensityCoverage(NeighbourMetric):
    """Density: how many reference balls hold each generated feature, over k; coverage: the fraction of reference
    features with a generated feature inside their own ball; each ball reaching the reference feature's k-th nearest
    reference neighbour. The features are precision/recall's: one VGG16 call per image serves both."""

    formula, results = staticmethod(density_coverage_from_arrays), ("density", "coverage")
    example = "dc50k5 = 50k images, k = 5"
    why = "a ball reaching k = {k} neighbours besides its centre holds k + 1 points"

    def compute(self, gen, real):
        values = super().compute(gen, real)
        if real.shape[0] and np.all(real == real[:1]):
            density, coverage = values.values()
            warnings.warn(f"{self.name}: the feature network gives one vector for every reference image, so every "
                          f"ball has radius 0 and density and coverage read {density:g} and {coverage:g} whatever the "
                          f"generator (check the network and its weights)", MetricWarning, stacklevel=2)
        return values


FAMILY = neighbour_family(
    "dc", DensityCoverage, examples=("dc50k5_full", "dc50k5"),
    description="density and coverage of VGG16 features, k nearest neighbours (the last digit); _full: up to "
                "200,000 reference images, else the first N; _<network>: another feature space (_dinov2: "
                "DINOv2 ViT-L/14)")
