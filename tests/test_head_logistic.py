"""A single Dense layer is fitted as scikit-learn's logistic regression (lbfgs) and carried by a DenseHead. These tests
fix ``linear_refit=False`` (C on the validation split, fitted on train); the refit default is in test_head_refit.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from transferkit.config import HeadConfig, HeadTrainConfig
from transferkit.training import HeadTrainer, class_weights

LINEAR = HeadConfig(hidden_dim=0)
CARVE = HeadTrainConfig(linear_refit=False)


def _blobs(n_per_class: int, num_classes: int, dim: int = 12, seed: int = 0, spread: float = 1.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(num_classes, dim))
    X = np.concatenate([c + rng.normal(size=(n_per_class, dim)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(num_classes), n_per_class)
    order = rng.permutation(len(y))
    return X[order], y[order]


@pytest.mark.parametrize("num_classes", [2, 4])
def test_the_head_reproduces_scikit_learns_probabilities_at_the_chosen_C(num_classes):
    X, y = _blobs(40, num_classes)
    Xv, yv = _blobs(15, num_classes, seed=1)
    trainer = HeadTrainer(LINEAR, CARVE, progress=False).fit(X, y, Xv, yv, num_classes)
    assert trainer.solver_ == "lbfgs" and trainer.history_ == [] and trainer.best_epoch_ is None
    scaler = StandardScaler().fit(X.astype(np.float64))
    ref = LogisticRegression(C=trainer.C_, class_weight="balanced", max_iter=2000).fit(scaler.transform(X), y)
    expected = ref.predict_proba(scaler.transform(Xv))
    np.testing.assert_allclose(trainer.predict_proba(Xv), expected, atol=2e-4)
    assert trainer.head_.hidden_dim is None and trainer.head_.num_classes == num_classes


def test_C_is_the_grid_value_with_the_lowest_class_weighted_validation_loss():
    X, y = _blobs(30, 3, spread=0.6)  # overlapping classes: the L2 strength matters
    Xv, yv = _blobs(20, 3, seed=2, spread=0.6)
    grid = (0.001, 0.01, 0.1, 1.0, 10.0)
    trainer = HeadTrainer(LINEAR, HeadTrainConfig(linear_C=grid, linear_refit=False), progress=False).fit(X, y, Xv, yv, 3)
    scaler = StandardScaler().fit(X.astype(np.float64))
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights(y, 3))
    losses = {}
    for C in grid:
        p = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(scaler.transform(X), y).predict_proba(scaler.transform(Xv))
        losses[C] = loss_fn(torch.log(torch.from_numpy(p)), torch.from_numpy(yv)).item()
    assert trainer.C_ == min(losses, key=losses.get)
    assert trainer.best_val_loss_ == pytest.approx(losses[trainer.C_], abs=1e-4)


def test_a_class_missing_from_training_is_never_predicted():
    X, y = _blobs(20, 3)
    keep = y != 2
    trainer = HeadTrainer(LINEAR, CARVE, progress=False).fit(X[keep], y[keep], X[:10], y[:10], 3)
    proba = trainer.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba[:, 2].max() < 1e-6


def test_adamw_solver_keeps_the_epoch_loop_and_bad_C_is_rejected():
    X, y = _blobs(30, 2)
    trainer = HeadTrainer(LINEAR, HeadTrainConfig(linear_solver="adamw", epochs=30), progress=False).fit(X, y, X[:20], y[:20], 2)
    assert trainer.solver_ == "adamw" and trainer.C_ is None and len(trainer.history_) > 0 and trainer.best_epoch_ >= 1
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        HeadTrainConfig(linear_C=(0.1, 0.0))
