"""Metrics of the StyleGAN papers (FID, PPL, linear separability) for any generator of NVIDIA's protocol."""

from .classifier import AttributeClassifier, load_classifier
from .demo import run_demo
from .fid import compute_reference_stats, fid
from .ls import linear_separability
from .ppl import ppl
from .frechet import frechet_distance
from .report import plot_results, read_results, write_report
from .result import MetricResult
from .separability import separability_from_arrays
from .stats import FeatureStats, ReferenceStats
from .toyfaces_nets import load_toyfaces_classifier, load_toyfaces_generator

__version__ = "0.1.0"

__all__ = [
    "AttributeClassifier", "FeatureStats", "MetricResult", "ReferenceStats", "compute_reference_stats", "fid",
    "frechet_distance", "linear_separability", "load_classifier", "load_toyfaces_classifier",
    "load_toyfaces_generator", "plot_results", "ppl", "read_results", "run_demo", "separability_from_arrays",
    "write_report",
]
