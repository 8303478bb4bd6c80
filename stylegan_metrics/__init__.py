"""Metrics of the StyleGAN papers (FID, PPL, linear separability) for any generator of NVIDIA's protocol."""

from .classifier import AttributeClassifier, load_classifier
from .fid import compute_reference_stats, fid
from .ls import linear_separability
from .ppl import ppl
from .frechet import frechet_distance
from .result import MetricResult
from .separability import separability_from_arrays
from .stats import FeatureStats, ReferenceStats

__version__ = "0.1.0"

__all__ = [
    "AttributeClassifier", "FeatureStats", "MetricResult", "ReferenceStats", "compute_reference_stats", "fid",
    "frechet_distance", "linear_separability", "load_classifier", "ppl", "separability_from_arrays",
]
