"""Metrics of the StyleGAN papers (FID, PPL, linear separability) for any generator of NVIDIA's protocol."""

from .fid import compute_reference_stats, fid
from .frechet import frechet_distance
from .result import MetricResult
from .stats import FeatureStats, ReferenceStats

__version__ = "0.1.0"

__all__ = ["FeatureStats", "MetricResult", "ReferenceStats", "compute_reference_stats", "fid", "frechet_distance"]
