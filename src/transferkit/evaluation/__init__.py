"""Evaluation: metrics (and, later, intervals, calibration, reports)."""

from .metrics import classification_metrics, predict_labels, resolve_positive

__all__ = ["classification_metrics", "predict_labels", "resolve_positive"]
