"""LEEP: the log expected empirical prediction of the source classifier re-used for the target.

Nguyen, Hassner, Seeger, Archambeau (2020), "LEEP: A New Measure to Evaluate Transferability of
Learned Representations", ICML. https://arxiv.org/abs/2002.12462

With ``theta(x)`` the source (ImageNet) class probabilities of an image, the empirical joint
``P(y, z) = 1/n sum_i theta(x_i)_z [y_i = y]`` gives ``P(y | z)``; LEEP is
``1/n sum_i log sum_z P(y_i | z) theta(x_i)_z`` (at most 0; higher is better).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_probabilities


def leep_score(source_probabilities: np.ndarray, labels: np.ndarray) -> float:
    """LEEP of target labels given the source model's class probabilities ``(n, num_source_classes)``."""
    p, y, classes = check_probabilities(source_probabilities, labels)
    n = len(y)
    onehot = (y[:, None] == classes[None, :]).astype(np.float64)  # (n, K)
    joint = onehot.T @ p / n  # (K, Z)
    p_y_given_z = joint / np.maximum(joint.sum(0, keepdims=True), 1e-300)
    eep = p @ p_y_given_z.T  # (n, K): expected empirical prediction
    picked = eep[np.arange(n), np.searchsorted(classes, y)]
    return float(np.log(np.maximum(picked, 1e-300)).mean())
