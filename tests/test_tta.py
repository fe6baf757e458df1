"""Test-time views (``fit --tta flips``): features averaged over an image, its mirror images and its transpose,
the same in the feature cache, the saved model, predict, export and Grad-CAM; training stays one view."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY

import transferkit as tk
from transferkit.backbones import load_backbone
from transferkit.backbones.backbone import flip_views
from transferkit.evaluation.predictions import load_predictions
from transferkit.features import FeatureCache, extract_features


def test_flip_views_average_in_eval_and_one_view_in_training(torch_single_thread):
    torch.manual_seed(0)
    backbone = load_backbone(TINY, weights="none").eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        single = backbone(x)
        backbone.test_views = "flips"
        views = [x, x.flip(-1), x.flip(-2), x.transpose(-1, -2)]
        expected = torch.stack([backbone.body(v) for v in views]).mean(0)
        assert torch.allclose(backbone(x), expected, atol=1e-5)
        assert not torch.allclose(backbone(x), single, atol=1e-3)  # the views do change the features
        with backbone.single_view():
            assert torch.equal(backbone(x), single)
        assert backbone.test_views == "flips"  # restored after the context
        backbone.train()
        assert backbone(x).shape == single.shape  # training: one view (the batch is not quadrupled)
    # a non-square input is rotated by 180 degrees instead of transposed
    wide = torch.randn(2, 3, 32, 48)
    assert torch.equal(flip_views(wide)[6:], wide.flip(-2, -1))
    with pytest.raises(ValueError, match="test_views must be one of"):
        backbone.test_views = "rotations"


def test_the_feature_cache_keeps_the_views_apart(image_folder, tiny_weights, torch_single_thread, tmp_path):
    records = tk.load_image_folder(image_folder, progress=False).train[:6]
    cache = FeatureCache(tmp_path / "cache")
    backbone = load_backbone(TINY, weights=str(tiny_weights))
    one = extract_features(backbone, records, cache=cache, progress=False)
    backbone.test_views = "flips"
    four = extract_features(backbone, records, cache=cache, progress=False)  # not served from the single-view entry
    assert not np.allclose(one, four, atol=1e-4)
    fresh = load_backbone(TINY, weights=str(tiny_weights))
    fresh.test_views = "flips"
    again = extract_features(fresh, records, cache=FeatureCache(tmp_path / "cache", read_only=True), progress=False)
    np.testing.assert_array_equal(again, four)  # the flips entry itself is cached


def test_fit_with_flips_saves_loads_predicts_and_exports_with_the_same_views(image_folder, tiny_weights, torch_single_thread, tmp_path):
    from transferkit.export import export_model
    from transferkit.report.gradcam import gradcam_overlays
    from transferkit.runtime import ExportedModel

    run = tmp_path / "run"
    result = tk.fit(image_folder, model=TINY, weights=str(tiny_weights), tta="flips", out=run, progress=False, report=False)
    assert json.loads((run / "config.json").read_text())["fit"]["tta"] == "flips"
    model = tk.load(run)
    assert model.backbone.test_views == "flips" and result.model.backbone.test_views == "flips"
    # the saved test probabilities came from the cached (4-view) features; predict runs the images through the model
    saved = load_predictions(run, "test")
    fresh = model.predict(saved.paths)
    proba = np.array([[r["probabilities"][c] for c in saved.classes] for r in fresh])
    np.testing.assert_allclose(proba, saved.proba, atol=1e-4)
    with model.backbone.single_view():  # and one view would have given other numbers
        one = np.array([[r["probabilities"][c] for c in saved.classes] for r in model.predict(saved.paths)])
    assert np.abs(np.log(one) - np.log(saved.proba)).max() > 0.05  # log space: the tiny task's probabilities are near 0 / 1
    np.testing.assert_allclose(np.log(proba), np.log(saved.proba), atol=1e-3)
    # the export carries the views inside its graph: its parity check against the PyTorch model passes
    out = export_model(run, tmp_path / "export", parity_data=image_folder, num_parity=8, exporter="torchscript", progress=False)
    assert out.passed and json.loads((out.directory / "parity.json").read_text())["passed"]
    exported = ExportedModel(tmp_path / "export").predict(saved.paths)
    np.testing.assert_allclose(np.array([[r["probabilities"][c] for c in saved.classes] for r in exported]), saved.proba, atol=1e-4)
    # Grad-CAM runs on one view (one feature map per image) and leaves the views on afterwards
    overlays = gradcam_overlays(model, saved.paths[:2], [0, 1])
    assert len(overlays) == 2 and overlays[0].shape == (64, 64, 3) and model.backbone.test_views == "flips"
