"""Augmented training copies for the frozen-base head (``fit --train-views N``): computed once, cached, fixed per image,
and used only where the image they copy trains."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import transferkit as tk
from conftest import TINY
from transferkit.backbones import load_backbone
from transferkit.config import AugmentConfig, HeadConfig, HeadTrainConfig
from transferkit.data import load_image_folder
from transferkit.errors import ConfigError
from transferkit.features import ExtractionStats, FeatureCache, extract_features, extract_train_views
from transferkit.training.head_trainer import HeadTrainer, subset_augmented, views_as_augmented, with_augmented

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture
def records(image_folder):
    splits = load_image_folder(image_folder, progress=False)
    return splits.train[:10]


@pytest.fixture
def backbone(tiny_weights):
    return load_backbone(TINY, weights=str(tiny_weights))


def test_copies_are_fixed_per_image_cached_and_differ_from_the_clean_features(backbone, records, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    first_stats = ExtractionStats()
    views = extract_train_views(backbone, records, 3, cache=cache, batch_size=4, progress=False, stats=first_stats)
    assert views.shape == (3, len(records), backbone.num_features)
    assert (first_stats.num_computed, first_stats.num_cached) == (3 * len(records), 0)
    clean = extract_features(backbone, records, cache=cache, progress=False)
    assert not np.allclose(views[0], clean, atol=1e-4)      # augmented, not the eval transform
    assert not np.allclose(views[0], views[1], atol=1e-4)   # each copy its own draw
    # a fresh cache object serves every copy from disk, in any record order and batch size
    again_stats = ExtractionStats()
    reordered = extract_train_views(backbone, records[::-1], 3, cache=FeatureCache(tmp_path / "cache"), batch_size=3, progress=False,
                                    stats=again_stats)
    assert (again_stats.num_computed, again_stats.num_cached) == (0, 3 * len(records))
    np.testing.assert_array_equal(reordered[:, ::-1], views)
    # without a cache, copy v of an image is recomputed identically (seeded by its content and v, not by the batch)
    uncached = extract_train_views(backbone, records[::-1], 2, batch_size=5, progress=False)
    np.testing.assert_allclose(uncached[:, ::-1], views[:2], rtol=1e-5, atol=1e-6)
    # another augmentation is another feature space
    other = ExtractionStats()
    extract_train_views(backbone, records, 1, augment=AugmentConfig(rotation=0.0), cache=cache, progress=False, stats=other)
    assert other.num_computed == len(records)


def test_copies_join_exactly_the_rows_of_the_examples_they_copy():
    X = np.arange(10, dtype=np.float32).reshape(5, 2)
    y = np.array([0, 1, 0, 1, 1])
    views = np.stack([X + 100, X + 200])[:, :3]  # two copies of train examples 0-2
    aug = views_as_augmented(views, np.stack([X[3:] + 300]), num_train=3)  # one copy of each val example (3, 4)
    assert aug[0].shape == (2 * 3 + 2, 2) and sorted(aug[1].tolist()) == [0, 0, 1, 1, 2, 2, 3, 4]
    Xs, ys = with_augmented(X, y, np.array([1, 4]), aug)
    assert Xs[:2].tolist() == X[[1, 4]].tolist()
    assert sorted(map(tuple, Xs[2:].tolist())) == sorted([tuple(X[1] + 100), tuple(X[1] + 200), tuple(X[4] + 300)])
    assert ys.tolist() == [1, 1, 1, 1, 1]
    rows, owner = subset_augmented(aug, np.array([4, 1]))  # owners renumbered to positions in the subset
    assert sorted(zip(owner.tolist(), map(tuple, rows.tolist()))) == sorted(
        [(1, tuple(X[1] + 100)), (1, tuple(X[1] + 200)), (0, tuple(X[4] + 300))])


def test_the_refit_logistic_head_trains_on_the_copies_and_scores_folds_without_them():
    rng = np.random.default_rng(0)
    X_train, X_val = rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(12, 6)).astype(np.float32)
    y_train, y_val = np.arange(40) % 2, np.arange(12) % 2
    X_train[:, 0] += 1.5 * y_train
    X_val[:, 0] += 1.5 * y_val
    copies = (X_train + rng.normal(scale=0.3, size=X_train.shape)).astype(np.float32)[None]
    aug = views_as_augmented(copies, None, num_train=40)
    cfg = HeadTrainConfig(linear_C=(0.1,))
    t = HeadTrainer(HeadConfig(hidden_dim=None), cfg, progress=False).fit(X_train, y_train, X_val, y_val, 2, augmented=aug)
    assert t.refit_["augmented_rows"] == 40 and t.refit_["fitted_on"] == 52
    # the final head is scikit-learn's logistic regression on all 52 examples plus the 40 copies, standardised by their statistics
    Xall = np.concatenate([X_train, X_val, copies[0]]).astype(np.float64)
    yall = np.concatenate([y_train, y_val, y_train])
    mean, std = Xall.mean(0), Xall.std(0)
    ref = LogisticRegression(C=0.1, class_weight="balanced", max_iter=cfg.linear_max_iter).fit((Xall - mean) / std, yall)
    probe = rng.normal(size=(7, 6)).astype(np.float32)
    np.testing.assert_allclose(t.predict_proba(probe)[:, 1], ref.predict_proba((probe - mean) / std)[:, 1], atol=1e-4)
    # the validation rows' out-of-fold probabilities never saw a copy of themselves: copies only exist for train rows
    # here, so a head fitted without any copies gives different out-of-fold numbers while the val rows are unchanged
    plain = HeadTrainer(HeadConfig(hidden_dim=None), cfg, progress=False).fit(X_train, y_train, X_val, y_val, 2)
    assert t.val_proba_.shape == plain.val_proba_.shape and not np.allclose(t.val_proba_, plain.val_proba_)
    with pytest.raises(ValueError, match="augmented"):
        HeadTrainer(HeadConfig(hidden_dim=None), cfg, progress=False).fit(X_train, y_train, X_val, y_val, 2,
                                                                          augmented=(copies[0], np.full(40, 99)))


def test_fit_with_train_views_end_to_end(image_folder, tmp_path, tiny_weights):
    out = tmp_path / "run"
    r = tk.fit(image_folder, model=TINY, weights=str(tiny_weights), train_views=2, hidden_dim=0, out=out, progress=False,
               cache_dir=tmp_path / "cache", report=False)
    n_train_side = len(r.splits.train) + len(r.splits.val)
    assert r.metrics["training"]["train_views"] == {"copies_per_image": 2, "rows": 2 * n_train_side}
    assert r.metrics["training"]["refit"]["augmented_rows"] == 2 * n_train_side
    from transferkit.training.head_selection import describe_refit

    assert f"and {2 * n_train_side} augmented copies" in describe_refit(r.metrics["training"]["refit"])
    assert json.loads((out / "config.json").read_text())["fit"]["train_views"] == 2
    # the saved model is the usual frozen base + head: prediction needs no copies
    loaded = tk.load(out)
    assert loaded.predict([r.splits.test[0].path])[0]["label"] in r.splits.classes
    # a second fit reads every copy from the cache
    r2 = tk.fit(image_folder, model=TINY, weights=str(tiny_weights), train_views=2, hidden_dim=0, progress=False,
                cache_dir=tmp_path / "cache", report=False)
    assert r2.metrics["timing_s"]["features_computed"] == 0
    assert r2.test == r.test
    with pytest.raises(ConfigError, match="augmentation is off"):
        tk.fit(image_folder, model=TINY, weights="none", train_views=2, augment=False, progress=False)


def test_no_fold_trains_on_a_copy_of_what_it_scores():
    """Random labels in 200 dimensions, and each copy an exact duplicate of its example: a fold that trained on a copy of a
    held-out example would score it perfectly. Out-of-fold scores must stay at chance, in the refit and the width CV."""
    from transferkit.training.head_selection import choose_head

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 200)).astype(np.float32)
    y = rng.permutation(np.arange(80) % 2)
    dup = views_as_augmented(X[:60][None], X[60:][None], num_train=60)
    cfg = HeadTrainConfig(linear_C=(100.0,))
    t = HeadTrainer(HeadConfig(hidden_dim=None), cfg, progress=False).fit(X[:60], y[:60], X[60:], y[60:], 2, augmented=dup)
    assert t.refit_["augmented_rows"] == 80
    assert (t.val_proba_.argmax(1) == y[60:]).mean() < 0.8
    # the leak this guards against is real: a head trained on the copies of the val rows scores them perfectly
    leaky = HeadTrainer(HeadConfig(hidden_dim=None), cfg.model_copy(update={"linear_refit": False}), progress=False)
    leaky.fit(X, y, X[60:], y[60:], 2)
    assert (leaky.predict_proba(X[60:]).argmax(1) == y[60:]).mean() == 1.0
    choice = choose_head(X, y, num_classes=2, head=HeadConfig(candidates=(0, 16)), train=cfg, augmented=dup)
    assert all(c["balanced_accuracy"] < 0.8 for c in choice.scores)


def test_cli_train_views(image_folder, tmp_path, tiny_weights):
    from typer.testing import CliRunner

    from transferkit.cli.app import app

    out = tmp_path / "cli-run"
    res = CliRunner().invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", str(tiny_weights), "--train-views", "1",
                                   "--hidden-dim", "0", "--no-report", "-q", "--out", str(out)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert res.exit_code == 0, res.output
    assert "training copies: the head also trained on 1 augmented copies" in res.output
    assert json.loads((out / "metrics.json").read_text())["training"]["train_views"]["copies_per_image"] == 1
    bad = CliRunner().invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", "none", "--train-views", "1", "--no-augment",
                                   "--no-report", "-q", "--out", str(tmp_path / "bad")], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert bad.exit_code != 0 and "augmentation is off" in bad.output and "Traceback" not in bad.output


def _two_blobs(n_train=24, n_val=8, d=60, seed=0):
    """Few, very noisy examples of two classes whose means differ: the head learns the class direction poorly from them."""
    rng = np.random.default_rng(seed)
    mu = np.zeros((2, d), np.float32)
    mu[1, :5] = 1.0
    y = np.arange(n_train + n_val) % 2
    X = (mu[y] + rng.normal(scale=2.0, size=(len(y), d))).astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:], mu, rng


def _copies_near(centres: np.ndarray, owner_labels: np.ndarray, rng, views=4) -> tuple[np.ndarray, np.ndarray]:
    """``views`` copies of every example, each placed near ``centres[label]`` (an augmentation that keeps, or breaks, the class)."""
    n = len(owner_labels)
    owner = np.tile(np.arange(n), views)
    rows = (centres[owner_labels[owner]] + rng.normal(scale=0.1, size=(len(owner), centres.shape[1]))).astype(np.float32)
    return rows, owner


@pytest.mark.parametrize("helpful", [True, False])
def test_auto_train_views_keeps_copies_only_when_the_cv_scores_them_higher(helpful):
    """Copies that sit on their class's mean teach the head the class direction that 24 noisy examples hide; copies placed
    on the *other* class's mean teach it backwards. The head's CV must take the first and refuse the second, and a refused
    set of copies must leave no trace in the final head."""
    X_train, y_train, X_val, y_val, mu, rng = _two_blobs()
    y_all = np.concatenate([y_train, y_val])
    centres = mu if helpful else mu[::-1].copy()
    augmented = _copies_near(centres, y_all, rng)
    cfg = HeadTrainConfig(linear_C=(1.0,))
    t = HeadTrainer(HeadConfig(hidden_dim=None), cfg, progress=False).fit(X_train, y_train, X_val, y_val, 2, augmented=augmented,
                                                                         choose_copies=True)
    choice = t.head_choice_
    assert [c["copies"] for c in choice.scores] == [False, True]  # a fixed width: only the copies are in question
    with_copies, without = choice.scores[1]["balanced_accuracy"], choice.scores[0]["balanced_accuracy"]
    assert (with_copies > without) if helpful else (with_copies < without)
    assert choice.copies is helpful and choice.as_dict()["chosen"] == ("linear + copies" if helpful else "linear, no copies")
    assert t.augmented_rows_ == (len(augmented[1]) if helpful else 0)
    plain = HeadTrainer(HeadConfig(hidden_dim=None), cfg, progress=False).fit(X_train, y_train, X_val, y_val, 2)
    forced = HeadTrainer(HeadConfig(hidden_dim=None), cfg, progress=False).fit(X_train, y_train, X_val, y_val, 2, augmented=augmented)
    same_as = forced if helpful else plain
    np.testing.assert_allclose(t.predict_proba(X_val), same_as.predict_proba(X_val), atol=1e-6)


def test_auto_train_views_with_auto_width_compares_every_pair():
    X_train, y_train, X_val, y_val, mu, rng = _two_blobs()
    augmented = _copies_near(mu, np.concatenate([y_train, y_val]), rng)
    fast = HeadTrainConfig(linear_C=(1.0,), epochs=30, patience=5)
    t = HeadTrainer(HeadConfig(candidates=(0, 16)), fast, progress=False).fit(X_train, y_train, X_val, y_val, 2, augmented=augmented,
                                                                              choose_copies=True)
    labels = [c["label"] for c in t.head_choice_.scores]
    assert labels == ["linear, no copies", "linear + copies", "hidden 16, no copies", "hidden 16 + copies"]
    best = max(t.head_choice_.scores, key=lambda c: (round(c["balanced_accuracy"], 10), -c["log_loss"]))
    assert (t.head_choice_.hidden_dim, t.head_choice_.copies) == (best["hidden_dim"], best["copies"])
    # without choose_copies the copies are simply used, and the CV compares widths only (as before)
    t2 = HeadTrainer(HeadConfig(candidates=(0, 16)), fast, progress=False).fit(X_train, y_train, X_val, y_val, 2, augmented=augmented)
    assert [c["label"] for c in t2.head_choice_.scores] == ["linear", "hidden 16"] and t2.head_choice_.copies is None


def test_train_views_config_accepts_a_count_or_auto():
    from pydantic import ValidationError

    from transferkit.config import AUTO_TRAIN_VIEWS, DataConfig, FitConfig

    data = DataConfig(root="x")
    assert FitConfig(data=data, train_views="AUTO").train_views == "auto"
    assert FitConfig(data=data, train_views="auto").train_view_copies == AUTO_TRAIN_VIEWS
    assert FitConfig(data=data, train_views="3").train_views == 3 == FitConfig(data=data, train_views=3).train_view_copies
    for bad in (-1, 33, "four", 2.5):
        with pytest.raises(ValidationError, match="train_views must be"):
            FitConfig(data=data, train_views=bad)


def test_fit_and_cli_with_train_views_auto(image_folder, tmp_path, tiny_weights):
    from typer.testing import CliRunner

    from transferkit.cli.app import app
    from transferkit.config import AUTO_TRAIN_VIEWS

    out = tmp_path / "auto-run"
    res = CliRunner().invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", str(tiny_weights), "--train-views", "auto",
                                   "--hidden-dim", "0", "--no-report", "-q", "--out", str(out)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    record, choice = metrics["training"]["train_views"], metrics["training"]["head_selection"]
    assert record["requested"] == "auto" and record["compared"] == AUTO_TRAIN_VIEWS
    assert [c["copies"] for c in choice["candidates"]] == [False, True]
    n_train_side = sum(metrics["data"]["counts"]["train"].values()) + sum(metrics["data"]["counts"]["val"].values())
    assert record["rows"] == (AUTO_TRAIN_VIEWS * n_train_side if choice["copies"] else 0)
    assert record["copies_per_image"] == (AUTO_TRAIN_VIEWS if choice["copies"] else 0)
    assert ("the head's CV on train + val preferred " + ("them to the images alone" if choice["copies"] else "that to 4 augmented copies")
            in " ".join(res.output.split()))
    assert json.loads((out / "config.json").read_text())["fit"]["train_views"] == "auto"
    bad = CliRunner().invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", "none", "--train-views", "many",
                                   "--no-report", "-q", "--out", str(tmp_path / "bad")], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert bad.exit_code != 0 and "train_views must be a number of copies" in " ".join(bad.output.split()) and "Traceback" not in bad.output
