"""Cross-validated linear-probe accuracy: the most direct estimate of a frozen-base fit.

Standardised features + multinomial logistic regression (scikit-learn), predicted out of fold
in a stratified k-fold inside the training data; the accuracy comes with a 95 % Wilson interval
over the out-of-fold predictions. The regularisation ``C`` is a fixed default chosen a priori
(no tuning on any held-out data).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_features_labels
from .knn import CVAccuracy, out_of_fold_accuracy


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray, *, C: float = 0.1, num_folds: int = 5, seed: int = 0,
                          max_iter: int = 2000, groups: np.ndarray | None = None) -> CVAccuracy:
    """Out-of-fold accuracy of ``StandardScaler + LogisticRegression(C)`` with a Wilson interval."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f, y, _ = check_features_labels(features, labels)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    return out_of_fold_accuracy(probe, f, y, num_folds=num_folds, seed=seed, groups=groups)
