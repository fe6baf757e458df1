"""`transferkit fit DATA --model auto` for images, end to end on tiny data: the offline candidates are ranked
on the training images under the --max-* limits, RUN/ranking.json is written, and the backbone fitted (with
its offline weights) is the ranking's top.

The registered candidates are real ImageNet models (seconds each); as tests/test_selection_text.py does for
text, ``default_candidates`` is replaced by two tiny backbones whose "pretrained" weights sit in the (isolated)
torch hub cache, so they are found offline exactly like torchvision's files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import timm
import torch
from typer.testing import CliRunner

from transferkit.backbones import BackboneSpec, WeightsCfg, _registry, register_backbone
from transferkit.cli.app import app
from transferkit.selection import Candidate
from transferkit.selection import rank as rank_module

pytestmark = pytest.mark.usefixtures("torch_single_thread")

SMALL, WIDE = "auto_tiny_effnet", "auto_tiny_effnet_wide"
BUILDS = {
    SMALL: lambda: timm.create_model("test_efficientnet", pretrained=False),
    WIDE: lambda: timm.create_model("test_efficientnet", pretrained=False, channel_multiplier=2.0),
}
FILES = {SMALL: "auto_tiny_effnet-0000.pth", WIDE: "auto_tiny_effnet_wide-0000.pth"}

for _name, _build in BUILDS.items():
    if _name not in _registry._REGISTRY:
        register_backbone(BackboneSpec(
            name=_name, family="efficientnet", library="timm", arch="test_efficientnet", build=_build,
            weights=WeightsCfg(tag="test", file_name=FILES[_name], input_size=(3, 64, 64), mean=(0.5, 0.5, 0.5),
                               std=(0.5, 0.5, 0.5), crop_pct=1.0),
            num_features=256 if _name == SMALL else 512, num_params=356_196 if _name == SMALL else 896_992, tags=("test",),
        ))


@pytest.fixture
def candidates_in_the_hub_cache(monkeypatch):
    """Both backbones' weights in $TORCH_HOME/hub/checkpoints (tmp, see conftest), and they are the only candidates;
    the wide one listed first."""
    hub = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    for i, (name, build) in enumerate(BUILDS.items()):
        torch.manual_seed(100 + i)
        torch.save(build().state_dict(), hub / FILES[name])
    monkeypatch.setattr(rank_module, "default_candidates", lambda modality="image": [Candidate(WIDE), Candidate(SMALL)])
    return hub


def _fit_auto(image_folder, out, *extra):
    res = CliRunner().invoke(app, ["fit", str(image_folder), "--model", "auto", "--out", str(out), "--device", "cpu",
                                   "--epochs", "30", "--no-report", "-q", *extra], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    return res


def _check_fitted_is_the_top(out: Path, res) -> dict:
    ranking = json.loads((out / "ranking.json").read_text())
    best = ranking["best"]
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "done"
    assert config["fit"]["backbone"] == best and config["backbone"]["name"] == best
    assert json.loads((out / "model" / "config.json").read_text())["backbone"]["name"] == best
    weights = config["backbone"]["weights"]  # the fit used the same offline pretrained file the ranking scored
    assert weights["source"] == "torch-hub-cache" and Path(weights["path"]).name == FILES[best]
    ranked_weights = next(c for c in ranking["candidates"] if c["label"] == best)["weights_record"]
    assert ranked_weights["sha256"] == weights["sha256"]
    assert f"chosen by ranking: {best}" in " ".join(res.output.replace("│", " ").split())
    return ranking


def test_fit_model_auto_fits_the_top_of_the_ranking(image_folder, tmp_path, candidates_in_the_hub_cache):
    out = tmp_path / "run"
    res = _fit_auto(image_folder, out)
    ranking = _check_fitted_is_the_top(out, res)
    assert [c["status"] for c in ranking["candidates"]] == ["ranked", "ranked"]
    assert {c["name"] for c in ranking["candidates"]} == {SMALL, WIDE}
    assert ranking["data"]["test_split_read"] is False
    assert json.loads((out / "metrics.json").read_text())["test"]["accuracy"] >= 0.9  # colour-coded classes


def test_fit_model_auto_respects_a_limit(image_folder, tmp_path, candidates_in_the_hub_cache):
    """--max-size-mb between the two sizes: the wide candidate (listed first) is excluded, the small one fitted."""
    from transferkit.backbones import load_backbone
    from transferkit.selection.cost import _state_dict_mb

    small, wide = (_state_dict_mb(load_backbone(n, "none")) for n in (SMALL, WIDE))
    assert wide > small
    out = tmp_path / "run"
    res = _fit_auto(image_folder, out, "--max-size-mb", str((small + wide) / 2))
    ranking = _check_fitted_is_the_top(out, res)
    assert ranking["best"] == SMALL
    status = {c["name"]: c for c in ranking["candidates"]}
    assert status[WIDE]["status"] == "excluded" and "--max-size-mb" in status[WIDE]["reason"]
    assert ranking["limits"]["max_size_mb"] == pytest.approx((small + wide) / 2)
