"""Multi-stage features (``fit --stages K``, ``Backbone.feature_stages``): the pooled outputs of a backbone's last K
stages, concatenated; in the feature cache under their own key, in the saved model, predict, export and the ranking."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY
from typer.testing import CliRunner

import transferkit as tk
from transferkit.backbones import load_backbone
from transferkit.cli.app import app
from transferkit.config import DEFAULT_FEATURE_STAGES, FitConfig
from transferkit.errors import ConfigError
from transferkit.evaluation.predictions import load_predictions
from transferkit.features import FeatureCache, extract_features, feature_key


def _pooled(x: torch.Tensor) -> torch.Tensor:
    return x.mean((2, 3))


def _reference(name: str, body: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The pooled output and every stage's pooled output, computed by walking the network by hand (no hooks)."""
    if name == TINY:  # timm EfficientNet: stem, stages, head conv
        h = body.bn1(body.conv_stem(x))
        stages = []
        for block in body.blocks:
            h = block(h)
            stages.append(_pooled(h))
        return body.forward_head(body.bn2(body.conv_head(h))), stages
    if name == "mobilenet_v2":  # torchvision: features[0..18]; stages end where the channel count changes
        h, outs = x, []
        for layer in body[0]:
            h = layer(h)
            outs.append(h)
        ends = [i for i in range(len(outs) - 1) if outs[i].shape[1:] != outs[i + 1].shape[1:]]
        return _pooled(outs[-1]), [_pooled(outs[i]) for i in ends]
    if name == "resnet18":
        h = body.maxpool(body.relu(body.bn1(body.conv1(x))))
        stages = []
        for layer in (body.layer1, body.layer2, body.layer3, body.layer4):
            h = layer(h)
            stages.append(_pooled(h))
        return stages[-1], stages[:-1]
    raise AssertionError(name)


@pytest.mark.parametrize("name", [TINY, "mobilenet_v2", "resnet18"])
def test_stages_are_the_pooled_outputs_of_the_last_stages(name, torch_single_thread):
    torch.manual_seed(0)
    backbone = load_backbone(name, weights="none").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        last, stages = _reference(name, backbone.body, x)
        assert torch.allclose(backbone(x), last, atol=1e-5)  # K = 1: what it always was
        backbone.feature_stages = 3
        got = backbone(x)
    expected = torch.cat([last, stages[-2], stages[-1]], 1)  # the last stage first, then the earlier ones in order
    assert got.shape == expected.shape and backbone.num_features == expected.shape[1] > backbone.spec.num_features
    assert torch.allclose(got, expected, atol=1e-5)
    assert backbone.max_feature_stages == min(8, len(stages) + 1)
    backbone.train()
    assert backbone(x).shape[1] == backbone.num_features  # fine-tuning sees the same width


def test_bad_feature_stages_say_what_is_allowed():
    backbone = load_backbone("resnet18", weights="none")  # 4 stages
    for bad in (0, 9, True, 2.0):
        with pytest.raises(ConfigError, match="feature_stages must be an integer from 1"):
            backbone.feature_stages = bad
    with pytest.raises(ConfigError, match="has 4 stages; feature_stages=5 asks for more. Pass at most 4"):
        backbone.feature_stages = 5
    assert backbone.feature_stages == 1 and backbone.num_features == 512  # unchanged after a refusal
    with pytest.raises(ValueError):
        FitConfig(data={"root": "x"}, feature_stages=0)
    assert FitConfig(data={"root": "x"}).feature_stages == DEFAULT_FEATURE_STAGES == 3


def test_the_feature_cache_keeps_the_stages_apart(image_folder, tiny_weights, torch_single_thread, tmp_path):
    records = tk.load_image_folder(image_folder, progress=False).train[:6]
    cache = FeatureCache(tmp_path / "cache")
    backbone = load_backbone(TINY, weights=str(tiny_weights))
    one = extract_features(backbone, records, cache=cache, progress=False)
    backbone.feature_stages = 3
    three = extract_features(backbone, records, cache=cache, progress=False)  # not served from the one-stage entry
    assert three.shape == (6, backbone.num_features) and one.shape == (6, 256)
    np.testing.assert_allclose(three[:, :256], one, atol=1e-5)
    sha, cfg = backbone.weights_record["sha256"], backbone.data_cfg
    assert feature_key(TINY, sha, cfg, stages=3) != feature_key(TINY, sha, cfg) == feature_key(TINY, sha, cfg, stages=1)
    fresh = load_backbone(TINY, weights=str(tiny_weights))
    fresh.feature_stages = 3
    again = extract_features(fresh, records, cache=FeatureCache(tmp_path / "cache", read_only=True), progress=False)
    np.testing.assert_array_equal(again, three)  # the three-stage entry itself is cached


def test_fit_with_stages_saves_loads_predicts_and_exports_the_same_features(image_folder, tiny_weights, torch_single_thread, tmp_path):
    from transferkit.export import export_model
    from transferkit.report.gradcam import gradcam_overlays
    from transferkit.runtime import ExportedModel

    run = tmp_path / "run"
    result = tk.fit(image_folder, model=TINY, weights=str(tiny_weights), feature_stages=2, out=run, progress=False, report=False)
    assert json.loads((run / "config.json").read_text())["fit"]["feature_stages"] == 2
    model = tk.load(run)
    assert model.backbone.feature_stages == 2 == result.model.backbone.feature_stages
    width = model.backbone.num_features
    assert width > 256 and model.head.config()["in_features"] == width
    saved = load_predictions(run, "test")
    fresh = model.predict(saved.paths)  # images through the loaded model, against the cached-feature probabilities
    proba = np.array([[r["probabilities"][c] for c in saved.classes] for r in fresh])
    np.testing.assert_allclose(np.log(proba), np.log(saved.proba), atol=1e-3)
    out = export_model(run, tmp_path / "export", parity_data=image_folder, num_parity=8, exporter="torchscript", progress=False)
    assert out.passed
    exported = ExportedModel(tmp_path / "export").predict(saved.paths)
    np.testing.assert_allclose(np.array([[r["probabilities"][c] for c in saved.classes] for r in exported]), saved.proba, atol=1e-4)
    overlays = gradcam_overlays(model, saved.paths[:2], [0, 1])
    assert len(overlays) == 2 and overlays[0].shape == (64, 64, 3)


def test_cli_fit_stages_option(image_folder, tiny_weights, torch_single_thread, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", str(tiny_weights), "--stages", "1",
                              "--out", str(tmp_path / "one"), "--no-report", "-q"])
    assert res.exit_code == 0, res.output
    assert "feature stages" not in res.output and tk.load(tmp_path / "one").backbone.num_features == 256
    res = runner.invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", str(tiny_weights),
                              "--out", str(tmp_path / "default"), "--no-report"])
    assert res.exit_code == 0, res.output
    width = tk.load(tmp_path / "default").backbone.num_features
    assert f"feature stages: last 3 pooled and concatenated ({width} features)" in " ".join(res.output.split()) and width > 256
    res = runner.invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", str(tiny_weights), "--stages", "8",
                              "--out", str(tmp_path / "eight"), "--no-report", "-q"])
    assert res.exit_code != 0 and "asks for more" in res.output and "Traceback" not in res.output


def test_finding_the_stages_leaves_train_and_eval_modes_as_they_were():
    backbone = load_backbone("resnet18", weights="none").train()
    backbone.body.bn1.eval()  # e.g. fine-tuning's frozen BatchNorm
    before = [m.training for m in backbone.modules()]
    backbone.feature_stages = 2
    assert [m.training for m in backbone.modules()] == before and not backbone.body.bn1.training


def test_rank_refuses_bad_feature_stages_before_any_work(image_folder):
    from transferkit.selection import SelectionError, rank_backbones

    with pytest.raises(SelectionError, match="feature_stages must be an integer from 1"):
        rank_backbones(image_folder, ["resnet18:none"], feature_stages=0, progress=False)
