"""Metrics of the StyleGAN papers (FID, PPL, linear separability) for any generator of NVIDIA's protocol, by
NVIDIA's metric names, on one engine."""

from stylegan_metrics.demo import run_demo
from stylegan_metrics.formulas.density_coverage import density_coverage_from_arrays
from stylegan_metrics.formulas.frechet import frechet_distance
from stylegan_metrics.formulas.inception_score import inception_score_from_probs
from stylegan_metrics.formulas.kid import kid_from_arrays
from stylegan_metrics.formulas.precision_recall import precision_recall_from_arrays
from stylegan_metrics.formulas.separability import separability_from_arrays
from stylegan_metrics.metrics import METRICS, evaluate, register
from stylegan_metrics.metrics.fid import fid
from stylegan_metrics.metrics.ls import linear_separability
from stylegan_metrics.metrics.ppl import ppl
from stylegan_metrics.networks.classifier import AttributeClassifier, load_classifier
from stylegan_metrics.networks.toyfaces_nets import (bundled_files, load_toyfaces_classifier,
                                                     load_toyfaces_generator)
from stylegan_metrics.reference import compute_reference_stats
from stylegan_metrics.report import plot_results, read_results, write_report
from stylegan_metrics.result import MetricResult
from stylegan_metrics.stats import FeatureStats, ReferenceStats

__version__ = "0.1.0"

__all__ = [
    "AttributeClassifier", "FeatureStats", "METRICS", "MetricResult", "ReferenceStats", "bundled_files",
    "compute_reference_stats", "density_coverage_from_arrays",
    "evaluate", "fid", "frechet_distance", "inception_score_from_probs", "kid_from_arrays", "linear_separability",
    "load_classifier", "load_toyfaces_classifier", "load_toyfaces_generator", "plot_results", "ppl",
    "precision_recall_from_arrays", "read_results", "register", "run_demo", "separability_from_arrays",
    "write_report",
]
