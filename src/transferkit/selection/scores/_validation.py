"""Input checks shared by the transferability scores."""

from __future__ import annotations

import numpy as np

from ...errors import DataError


def check_features_labels(features, labels, *, min_per_class: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D finite features, 1-D integer labels of the same length, at least two classes."""
    f = np.asarray(features)
    y = np.asarray(labels)
    if f.ndim != 2:
        raise DataError(f"features must be a 2-D array (samples x dims), got shape {f.shape}.")
    if y.ndim != 1 or len(y) != len(f):
        raise DataError(f"labels must be 1-D with one entry per feature row: got {y.shape} for {len(f)} rows.")
    if not np.isfinite(f).all():
        raise DataError("features contain NaN or infinite values; re-extract them (a broken backbone or weights file?).")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"need at least two classes to score transferability, got {len(classes)}.")
    if counts.min() < min_per_class:
        raise DataError(f"every class needs at least {min_per_class} samples here; the smallest has {counts.min()}.")
    return f, y, classes


def check_probabilities(probabilities, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of source-class probabilities (non-negative, summing to 1) and target labels."""
    p, y, classes = check_features_labels(probabilities, labels)
    if (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise DataError("source probabilities must be non-negative and each row must sum to 1 (apply softmax to the logits).")
    return p.astype(np.float64), y, classes
