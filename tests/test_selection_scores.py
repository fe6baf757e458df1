"""Transferability scores against small cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from transferkit.errors import DataError
from transferkit.selection.scores import (
    LogME,
    evidence,
    hscore_shrinkage,
    knn_accuracy,
    leep_score,
    linear_probe_accuracy,
    logme_score,
    nce_score,
)


def _separable_and_noise(n_per_class=30, dim=8, num_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), n_per_class)
    centers = rng.normal(0, 1, (num_classes, dim)) * 6
    separable = centers[y] + rng.normal(0, 0.5, (len(y), dim))
    noise = rng.normal(0, 1, (len(y), dim))
    return separable, noise, y


@pytest.mark.parametrize("n,d", [(25, 4), (8, 15)])  # more samples than dims, and fewer
def test_logme_equals_direct_evidence_formula(n, d):
    rng = np.random.default_rng(1)
    f = rng.normal(size=(n, d))
    y = np.arange(n) % 2
    f[:, 0] += 2 * y
    model = LogME().fit(f, y)
    for k, (alpha, beta, ev) in enumerate(zip(model.alphas_, model.betas_, model.evidences_)):
        target = (y == k).astype(float)
        # the evidence is the marginal likelihood y ~ N(0, F F^T / alpha + I / beta)
        direct = multivariate_normal(mean=np.zeros(n), cov=f @ f.T / alpha + np.eye(n) / beta).logpdf(target)
        assert ev * n == pytest.approx(direct, rel=1e-8, abs=1e-8)
        assert evidence(f, target, alpha, beta) == pytest.approx(direct, rel=1e-8, abs=1e-8)
        # and the fixed point is a maximum over (alpha, beta) (where the supremum is at alpha -> inf,
        # i.e. the features do not explain the column, the iteration walks there and the evidence is flat)
        for a, b in [(alpha * 1.3, beta), (alpha / 1.3, beta), (alpha, beta * 1.3), (alpha, beta / 1.3)]:
            assert evidence(f, target, a, b) <= ev * n + 1e-5
    assert model.score_ == pytest.approx(model.evidences_.mean())


def test_scores_rank_separable_features_above_noise():
    sep, noise, y = _separable_and_noise()
    assert logme_score(sep, y) > logme_score(noise, y)
    assert hscore_shrinkage(sep, y) > 5 * hscore_shrinkage(noise, y)
    assert knn_accuracy(sep, y).accuracy == 1.0
    assert knn_accuracy(noise, y).accuracy < 0.7
    lp_sep, lp_noise = linear_probe_accuracy(sep, y), linear_probe_accuracy(noise, y)
    assert lp_sep.accuracy == 1.0 and lp_noise.accuracy < 0.7
    assert lp_noise.ci_low <= lp_noise.accuracy <= lp_noise.ci_high
    assert lp_sep.ci_low > lp_noise.ci_high  # the intervals say the difference is real
    assert lp_sep.num_samples == len(y) and lp_sep.num_folds == 5


def test_hscore_matches_the_plain_h_score_when_shrinkage_vanishes():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 4000)
    f = np.c_[y * 2.0, np.zeros_like(y)] + rng.normal(size=(4000, 2))
    fc = f - f.mean(0)
    g = np.stack([fc[y == k].mean(0) for k in (0, 1)])[y]
    plain = np.trace(np.linalg.inv(np.cov(fc.T, bias=True)) @ (g.T @ g / len(g)))
    assert hscore_shrinkage(f, y) == pytest.approx(plain, rel=0.02)
    assert hscore_shrinkage(rng.normal(size=(4000, 2)), y) < 0.01  # class means coincide -> about 0


def test_leep_and_nce_known_answers():
    y = np.array([0, 1] * 20)
    perfect = np.eye(5)[y + 2]  # source class 2 <-> target 0, source 3 <-> target 1, one-hot
    assert leep_score(perfect, y) == pytest.approx(0.0, abs=1e-12)
    assert nce_score(perfect, y) == pytest.approx(0.0, abs=1e-12)
    uninformative = np.full((len(y), 5), 0.2)  # same distribution for every image
    assert leep_score(uninformative, y) == pytest.approx(-np.log(2))  # = mean log P(y)
    assert nce_score(uninformative, y) == pytest.approx(-np.log(2))  # = -H(Y)
    rng = np.random.default_rng(3)
    partial = 0.6 * perfect + 0.4 * rng.dirichlet(np.ones(5), len(y))
    assert -np.log(2) < leep_score(partial, y) < 0


def test_scores_reject_bad_input():
    with pytest.raises(DataError, match="two classes"):
        logme_score(np.ones((5, 3)), np.zeros(5, int))
    with pytest.raises(DataError, match="one entry per feature row"):
        hscore_shrinkage(np.ones((5, 3)), np.zeros(4, int))
    with pytest.raises(DataError, match="sum to 1"):
        leep_score(np.ones((4, 3)), np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="NaN"):
        logme_score(np.full((4, 2), np.nan), np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="at least 2 images per class"):
        knn_accuracy(np.ones((3, 2)), np.array([0, 0, 1]))
