"""The cross-validation splitter shared by the CV scores (stratified, shuffled, seeded)."""

from __future__ import annotations

import numpy as np

from ...errors import DataError


def stratified_folds(labels: np.ndarray, num_folds: int, seed: int, groups: np.ndarray | None = None):
    """``StratifiedKFold`` with as many folds as the smallest class allows (at least 2); with ``groups``
    (one subject id per example) ``StratifiedGroupKFold``, so a subject's examples are never on both sides."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if smallest < 2:
        raise DataError(f"cross-validation needs at least 2 images per class; the smallest class has {smallest}. Add images.")
    if groups is None:
        return StratifiedKFold(n_splits=min(num_folds, smallest), shuffle=True, random_state=seed)
    fewest = min(len(set(np.asarray(groups)[labels == c].tolist())) for c in np.unique(labels))
    if fewest < 2:
        raise DataError("grouped cross-validation needs at least 2 subjects per class; one class has images of a single subject. "
                        "Add subjects or drop --groups.")
    return StratifiedGroupKFold(n_splits=min(num_folds, fewest), shuffle=True, random_state=seed)
