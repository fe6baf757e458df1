"""The cross-validation splitter shared by the CV scores (stratified, shuffled, seeded)."""

from __future__ import annotations

import numpy as np

from ...errors import DataError


def stratified_folds(labels: np.ndarray, num_folds: int, seed: int):
    """``StratifiedKFold`` with as many folds as the smallest class allows (at least 2)."""
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if smallest < 2:
        raise DataError(f"cross-validation needs at least 2 images per class; the smallest class has {smallest}. Add images.")
    return StratifiedKFold(n_splits=min(num_folds, smallest), shuffle=True, random_state=seed)
