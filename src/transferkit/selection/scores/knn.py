"""k-nearest-neighbour accuracy of frozen features (cosine distance), cross-validated in train.

A non-parametric view of task similarity: do images of one class land next to each other in
the pretrained feature space? scikit-learn's ``KNeighborsClassifier`` and ``cross_val_predict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...crossval import splitter_for
from ._validation import check_features_labels


@dataclass(frozen=True)
class CVAccuracy:
    """Out-of-fold accuracy over ``num_samples`` predictions, with a 95 % Wilson interval."""

    accuracy: float
    ci_low: float
    ci_high: float
    num_samples: int
    num_folds: int
    correct: np.ndarray = field(repr=False, compare=False, default=None)  # per sample: predicted right out of fold

    def as_dict(self) -> dict[str, float | int]:
        return {k: v for k, v in vars(self).items() if k != "correct"}


def wilson_interval(num_correct: int, num_total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (scipy's ``binomtest``)."""
    from scipy.stats import binomtest

    ci = binomtest(int(num_correct), int(num_total)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def out_of_fold_accuracy(estimator, features: np.ndarray, labels: np.ndarray, *, num_folds: int, seed: int,
                         groups: np.ndarray | None = None) -> CVAccuracy:
    """Accuracy of ``cross_val_predict`` predictions (each sample predicted by a model that never saw it, nor,
    with ``groups``, any example of the same subject)."""
    from sklearn.model_selection import cross_val_predict

    cv = splitter_for(labels, num_folds, seed, groups)
    pred = cross_val_predict(estimator, features, labels, cv=cv, groups=groups)
    hits = pred == labels
    low, high = wilson_interval(int(hits.sum()), len(labels))
    return CVAccuracy(float(hits.mean()), low, high, len(labels), cv.get_n_splits(), hits)


def knn_accuracy(features: np.ndarray, labels: np.ndarray, *, k: int = 10, num_folds: int = 5, seed: int = 0,
                 groups: np.ndarray | None = None) -> CVAccuracy:
    """Out-of-fold k-NN accuracy (cosine distance, distance-weighted votes)."""
    from sklearn.neighbors import KNeighborsClassifier

    f, y, _ = check_features_labels(features, labels)
    k = max(1, min(k, len(y) // 2))
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine", weights="distance")
    return out_of_fold_accuracy(knn, f, y, num_folds=num_folds, seed=seed, groups=groups)
