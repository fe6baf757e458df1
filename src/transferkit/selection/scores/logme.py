"""LogME: the log maximum evidence of a Bayesian linear model on frozen features.

You, Liu, Wang, Long (2021), "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML. https://arxiv.org/abs/2102.11005 (reference code: thuml/LogME).

For each class ``k`` the one-hot target column ``y`` is modelled as ``y = F w + noise`` with a
prior ``w ~ N(0, I / alpha)`` and noise ``N(0, I / beta)``. The evidence (marginal likelihood)
of ``y`` is

    L(alpha, beta) = n/2 log beta + D/2 log alpha - n/2 log 2 pi - beta/2 ||F m - y||^2
                     - alpha/2 m^T m - 1/2 log |A|,
    A = alpha I + beta F^T F,   m = beta A^{-1} F^T y,

which equals ``log N(y; 0, F F^T / alpha + I / beta)``. alpha and beta are set by MacKay's
fixed-point iteration; LogME is the mean over classes of ``max L / n``. No maintained library
on PyPI provides it, so it is implemented here (numpy, one SVD shared by all classes).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_features_labels


class LogME:
    """``LogME().fit(features, labels).score_``: higher means features fit the labels better.

    Fitted attributes: ``score_`` (mean evidence per sample), ``evidences_`` (per class),
    ``alphas_`` and ``betas_`` (per class, at the maximum), ``num_iterations_``.
    """

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-6):
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "LogME":
        f, y, classes = check_features_labels(features, labels)
        f = f.astype(np.float64)
        n, d = f.shape
        _, sing, vt = np.linalg.svd(f, full_matrices=False)
        s = sing**2  # the non-zero part of F^T F's spectrum; the other d - r eigenvalues are 0
        evidences, alphas, betas, iters = [], [], [], []
        for k in classes:
            target = (y == k).astype(np.float64)
            proj = vt @ (f.T @ target)  # V^T F^T y
            alpha, beta = 1.0, 1.0
            it = 0
            for it in range(1, self.max_iter + 1):
                gamma = float((beta * s / (alpha + beta * s)).sum())
                m = vt.T @ (beta * proj / (alpha + beta * s))
                alpha_new = gamma / max(float(m @ m), 1e-12)
                beta_new = (n - gamma) / max(float(((f @ m - target) ** 2).sum()), 1e-12)
                converged = abs(alpha_new / beta_new - alpha / beta) <= self.tol * (alpha / beta)
                alpha, beta = alpha_new, beta_new
                if converged:
                    break
            evidences.append(evidence(f, target, alpha, beta, singular_values_sq=s, vt=vt) / n)
            alphas.append(alpha)
            betas.append(beta)
            iters.append(it)
        self.evidences_ = np.array(evidences)
        self.alphas_ = np.array(alphas)
        self.betas_ = np.array(betas)
        self.num_iterations_ = np.array(iters)
        self.score_ = float(self.evidences_.mean())
        return self


def evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float, *,
             singular_values_sq: np.ndarray | None = None, vt: np.ndarray | None = None) -> float:
    """The log evidence ``L(alpha, beta)`` of one target column (the formula in the module docstring)."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    if singular_values_sq is None or vt is None:
        _, sing, vt = np.linalg.svd(f, full_matrices=False)
        singular_values_sq = sing**2
    s = singular_values_sq
    m = vt.T @ (beta * (vt @ (f.T @ target)) / (alpha + beta * s))
    log_det_a = float(np.log(alpha + beta * s).sum()) + (d - len(s)) * np.log(alpha)
    return float(
        n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
        - beta / 2 * float(((f @ m - target) ** 2).sum()) - alpha / 2 * float(m @ m) - log_det_a / 2
    )


def logme_score(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME of frozen features for class labels (see :class:`LogME`)."""
    return LogME().fit(features, labels).score_
