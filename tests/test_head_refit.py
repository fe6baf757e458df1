"""``linear_refit``: a single-layer head takes C from K-fold CV on train + val and is refitted on all of them; the
validation numbers are then out-of-fold. Off where validation must stay unseen (fine-tuning's first stage)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

import transferkit as tk
from transferkit.config import DataConfig, FinetuneConfig, FitConfig, HeadConfig, HeadTrainConfig
from transferkit.training import HeadTrainer

from conftest import TINY
from test_head_logistic import _blobs

LINEAR = HeadConfig(hidden_dim=0)
GRID = (0.003, 0.03, 0.3, 3.0)


def _reference(X, y, folds, num_classes):
    """C by mean per-fold log loss, the out-of-fold probabilities at that C, and the model refitted on everything."""

    def fit(Xa, ya, C):
        scaler = StandardScaler().fit(Xa.astype(np.float64))
        return scaler, LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(scaler.transform(Xa), ya)

    losses, oofs = {}, {}
    for C in GRID:
        oof, per_fold = np.zeros((len(y), num_classes)), []
        for tr, te in folds:
            scaler, lr = fit(X[tr], y[tr], C)
            oof[te] = lr.predict_proba(scaler.transform(X[te]))
            per_fold.append(-np.log(oof[te][np.arange(len(te)), y[te]]).mean())
        losses[C], oofs[C] = float(np.mean(per_fold)), oof
    C = min(losses, key=losses.get)
    return C, losses, oofs[C], fit(X, y, C)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_refit_takes_C_from_cv_on_train_plus_val_and_fits_all_of_it(num_classes):
    X, y = _blobs(30, num_classes, spread=0.7)  # overlapping classes: C matters
    Xv, yv = _blobs(10, num_classes, seed=3, spread=0.7)
    t = HeadTrainer(LINEAR, HeadTrainConfig(linear_C=GRID), progress=False).fit(X, y, Xv, yv, num_classes)
    Xa, ya = np.concatenate([X, Xv]), np.concatenate([y, yv])
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(Xa, ya))
    C, losses, oof, (scaler, lr) = _reference(Xa, ya, folds, num_classes)
    assert t.C_ == C and t.refit_["folds"] == 5 and t.refit_["fitted_on"] == len(ya) and not t.refit_["grouped"]
    assert t.refit_["cv_log_loss"][f"{C:g}"] == pytest.approx(losses[C], abs=1e-4)
    X_new, _ = _blobs(8, num_classes, seed=9, spread=0.7)
    np.testing.assert_allclose(t.predict_proba(X_new), lr.predict_proba(scaler.transform(X_new)), atol=2e-4)
    # validation rows: out-of-fold probabilities, not the refitted model's in-sample ones
    np.testing.assert_allclose(t.val_proba_, oof[len(y):], atol=2e-4)
    assert not np.allclose(t.val_proba_, t.predict_proba(Xv), atol=1e-3)


def test_refit_with_groups_keeps_each_subject_in_one_fold():
    X, y = _blobs(24, 2, spread=0.7)
    Xv, yv = _blobs(8, 2, seed=4, spread=0.7)
    ya = np.concatenate([y, yv])
    groups = np.array([f"s{i // 2}" for i in range(len(ya))])  # pairs of rows share a subject
    t = HeadTrainer(LINEAR, HeadTrainConfig(linear_C=GRID), progress=False).fit(X, y, Xv, yv, 2, groups=groups)
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(np.zeros(len(ya)), ya, groups))
    C, _, oof, _ = _reference(np.concatenate([X, Xv]), ya, folds, 2)
    assert t.refit_["grouped"] and t.C_ == C
    np.testing.assert_allclose(t.val_proba_, oof[len(y):], atol=2e-4)


def test_too_few_examples_to_cross_validate_fall_back_to_the_validation_carve():
    X, y = _blobs(10, 2)
    X, y = np.concatenate([X, X[:1] + 5]), np.concatenate([y, [2]])  # class 2: one example, in train only
    t = HeadTrainer(LINEAR, HeadTrainConfig(linear_C=GRID), progress=False).fit(X, y, X[:6], y[:6], 3)
    assert t.refit_ is None and t.val_proba_ is None and t.C_ in GRID  # C chosen on the validation split, as without refit


def test_off_it_is_the_validation_carve():
    X, y = _blobs(30, 2, spread=0.7)
    Xv, yv = _blobs(10, 2, seed=3, spread=0.7)
    t = HeadTrainer(LINEAR, HeadTrainConfig(linear_C=GRID, linear_refit=False), progress=False).fit(X, y, Xv, yv, 2)
    assert t.refit_ is None and t.val_proba_ is None
    scaler = StandardScaler().fit(X.astype(np.float64))
    ref = LogisticRegression(C=t.C_, class_weight="balanced", max_iter=2000).fit(scaler.transform(X), y)
    np.testing.assert_allclose(t.predict_proba(Xv), ref.predict_proba(scaler.transform(Xv)), atol=2e-4)


def test_fit_saves_out_of_fold_validation_predictions_and_fine_tuning_never_refits(image_folder, tiny_weights, tmp_path, torch_single_thread):
    out = tmp_path / "run"
    r = tk.fit(image_folder, model=TINY, weights=str(tiny_weights), hidden_dim=0, out=out, progress=False, report=False)
    tr = json.loads((out / "metrics.json").read_text())["training"]
    n_train, n_val = len(r.splits.train), len(r.splits.val)
    assert tr["refit"]["fitted_on"] == n_train + n_val and tr["refit"]["val_predictions"] == "out-of-fold"
    assert tr["C"] == tr["refit"]["C"] and "best_val_loss" not in tr
    from transferkit.evaluation import load_predictions

    saved = load_predictions(out, "val")
    # the saved validation probabilities are the trainer's out-of-fold ones, not the refitted head's in-sample ones
    cache = tk.FeatureCache()
    feats = {s: tk.extract_features(r.model.backbone, r.splits.split(s), cache=cache, progress=False) for s in ("train", "val")}
    labels = {s: np.array([x.label for x in r.splits.split(s)]) for s in ("train", "val")}
    again = HeadTrainer(LINEAR, HeadTrainConfig(), progress=False).fit(feats["train"], labels["train"], feats["val"], labels["val"], 2)
    np.testing.assert_allclose(saved.proba, again.val_proba_, atol=1e-5)
    np.testing.assert_allclose(r.model.head.eval()(torch.from_numpy(feats["val"])).softmax(1).detach().numpy(), again.predict_proba(feats["val"]), atol=1e-5)
    assert not np.allclose(saved.proba, again.predict_proba(feats["val"]), atol=1e-6, rtol=0)
    assert r.metrics["val"]["accuracy"] == pytest.approx(float((saved.proba.argmax(1) == saved.y_true).mean()))

    cfg = FitConfig(data=DataConfig(root=image_folder), backbone=TINY, weights=str(tiny_weights), strategy="finetune",
                    head=HeadConfig(hidden_dim=0), finetune=FinetuneConfig(epochs=1, batch_size=8))
    ft = tk.fit(config=cfg, progress=False, report=False)
    stage_one = ft.metrics["stages"]["linear_probe"]["training"]
    assert stage_one["head"] == "linear" and "refit" not in stage_one and stage_one["best_val_loss"] is not None


def test_cli_summary_says_the_head_was_refitted_and_labels_validation_OOF(image_folder, tiny_weights, tmp_path, torch_single_thread):
    from typer.testing import CliRunner

    from transferkit.cli.app import app

    res = CliRunner().invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", str(tiny_weights), "--hidden-dim", "0",
                                   "--out", str(tmp_path / "run"), "--no-report"])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "val (OOF)" in flat and "refitted on all" in flat and "by 5-fold CV log loss" in flat


@pytest.mark.parametrize("hidden_dim", [None, 16])
def test_feature_rows_are_checked_before_anything_is_fitted(hidden_dim):
    # a length mismatch used to drop the extra val rows from the refit without a word (linear head) or fail inside torch
    from transferkit.errors import DataError

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), np.repeat([0, 1], 20)
    Xv, yv = rng.normal(size=(10, 5)), np.repeat([0, 1], 5)
    trainer = HeadTrainer(HeadConfig(hidden_dim=hidden_dim), HeadTrainConfig(epochs=3), progress=False)
    with pytest.raises(DataError, match="X_val has 10 rows but y_val has 7 labels"):
        trainer.fit(X, y, Xv, yv[:7])
    with pytest.raises(DataError, match="X_train has 39 rows but y_train has 40 labels"):
        trainer.fit(X[:39], y, Xv, yv)
    bad = X.copy()
    bad[3, 2], bad[7, 0] = np.nan, np.inf
    with pytest.raises(DataError, match="X_train has 2 row\\(s\\) with NaN or infinite values"):
        trainer.fit(bad, y, Xv, yv)
    with pytest.raises(DataError, match="X_train has 5 features per row and X_val 4"):
        trainer.fit(X, y, Xv[:, :4], yv)
    trainer.fit(X, y, Xv, yv)
    assert trainer.predict_proba(Xv).shape == (10, 2)
    with pytest.raises(DataError, match=r"X must be \(n, 5\) features"):
        trainer.predict_proba(Xv[0])
    with pytest.raises(DataError, match="NaN or infinite"):
        trainer.predict_proba(np.full((1, 5), np.nan))
