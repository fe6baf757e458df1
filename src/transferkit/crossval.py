"""Stratified K-fold splits, shuffled and seeded, grouped by subject when subject ids are given.

Every cross-validation in transferkit splits through here, so they agree on how: the head's width and the
logistic head's C (``training``), the ranking's CV scores (``selection.scores``) and text ``--cv``
(``data.text``, grouped by duplicate text). scikit-learn's ``StratifiedKFold``, or ``StratifiedGroupKFold``
when ``groups`` is given (a subject's examples never on both sides of a fold).
"""

from __future__ import annotations

import numpy as np

from .errors import DataError


def smallest_class(y: np.ndarray, groups: np.ndarray | None = None) -> int:
    """Examples (subjects, with ``groups``) in the smallest class: the most folds a stratified CV can have."""
    y = np.asarray(y)
    g = None if groups is None else np.asarray(groups)
    return min((len(set(g[y == c].tolist())) if g is not None else int((y == c).sum()) for c in np.unique(y)), default=0)


def stratified_splitter(k: int, seed: int, grouped: bool = False):
    """The scikit-learn splitter: ``StratifiedGroupKFold`` when ``grouped``, else ``StratifiedKFold``."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    return (StratifiedGroupKFold if grouped else StratifiedKFold)(n_splits=k, shuffle=True, random_state=seed)


def stratified_folds(y: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, held-out) index pairs; the caller has checked that each class has ``k`` examples (subjects)."""
    y = np.asarray(y)
    return list(stratified_splitter(k, seed, groups is not None).split(np.zeros(len(y)), y, groups))


def splitter_for(labels: np.ndarray, num_folds: int, seed: int, groups: np.ndarray | None = None):
    """A splitter with as many folds as the smallest class allows (``num_folds`` at most, 2 at least); a
    :class:`DataError` that says what to add when a class has fewer than 2 examples (or subjects)."""
    labels = np.asarray(labels)
    smallest = smallest_class(labels)
    if smallest < 2:
        raise DataError(f"cross-validation needs at least 2 images per class; the smallest class has {smallest}. Add images.")
    if groups is None:
        return stratified_splitter(min(num_folds, smallest), seed)
    fewest = smallest_class(labels, groups)
    if fewest < 2:
        raise DataError("grouped cross-validation needs at least 2 subjects per class; one class has images of a single subject. "
                        "Add subjects or drop --groups.")
    return stratified_splitter(min(num_folds, fewest), seed, grouped=True)
