"""Evaluation: metrics, bootstrap intervals, calibration, operating points, saved predictions."""

from .bootstrap import Interval, bootstrap_classification, bootstrap_metrics, paired_loss_difference
from .calibration import TemperatureScaler, expected_calibration_error, reliability_bins
from .metrics import classification_metrics, predict_labels, resolve_positive, undefined_metrics
from .operating_point import OperatingPoint, choose_threshold, find_operating_point
from .predictions import Predictions, load_predictions, save_predictions

__all__ = [
    "Interval",
    "OperatingPoint",
    "Predictions",
    "TemperatureScaler",
    "bootstrap_classification",
    "bootstrap_metrics",
    "paired_loss_difference",
    "choose_threshold",
    "classification_metrics",
    "expected_calibration_error",
    "find_operating_point",
    "load_predictions",
    "predict_labels",
    "reliability_bins",
    "resolve_positive",
    "save_predictions",
    "undefined_metrics",
]
