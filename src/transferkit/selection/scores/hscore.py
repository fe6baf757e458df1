"""Shrinkage H-score: how well class-conditional feature means separate, relative to the spread.

Bao et al. (2019), "An Information-Theoretic Approach to Transferability in Task Transfer
Learning" (the H-score ``tr(cov(f)^-1 cov(E[f|y]))``), with the shrinkage estimate of
``cov(f)`` of Ibrahim, Ponomareva, Mazumder (2022), "Newer is not always better: Rethinking
transferability metrics, their peculiarities, stability and performance", ECML-PKDD
(https://arxiv.org/abs/2110.06893). The covariance is scikit-learn's Ledoit-Wolf estimate;
the between-class part is scaled by ``1 - shrinkage`` as in the paper.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_features_labels


def hscore_shrinkage(features: np.ndarray, labels: np.ndarray) -> float:
    """Shrinkage H-score of features for labels (higher is better; 0 when class means coincide)."""
    from sklearn.covariance import LedoitWolf

    f, y, classes = check_features_labels(features, labels)
    f = f.astype(np.float64)
    f = f - f.mean(0)
    lw = LedoitWolf(assume_centered=True).fit(f)
    g = np.zeros_like(f)
    for k in classes:
        g[y == k] = f[y == k].mean(0)
    cov_g = g.T @ g / len(g)
    return float(np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15, hermitian=True) @ ((1 - lw.shrinkage_) * cov_g)))
