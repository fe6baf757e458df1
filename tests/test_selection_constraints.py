"""Model-selection limits --max-size-mb and --max-memory-mb: a candidate over a limit is excluded, with the
limit and its measured value as the reason, and not scored; one under it is ranked.

Mirrors tests/test_selection_rank.py (which covers --max-params and --max-latency-ms) with two tiny
backbones of different size: the conftest's tiny EfficientNet and a twice-as-wide twin registered here.
"""

from __future__ import annotations

import json

import pytest
import timm
from typer.testing import CliRunner

from conftest import TINY
from transferkit.backbones import BackboneSpec, WeightsCfg, _registry, load_backbone, register_backbone
from transferkit.cli.app import app
from transferkit.selection import Limits, SelectionError, choose_backbone, rank_backbones
from transferkit.selection.cost import measure_cost

pytestmark = pytest.mark.usefixtures("torch_single_thread")

FAST = {"latency_runs": 2, "throughput_batch_size": 2, "num_folds": 3, "progress": False, "device": "cpu"}
WIDE = "tiny_effnet_wide_limits"

if WIDE not in _registry._REGISTRY:
    register_backbone(BackboneSpec(
        name=WIDE, family="efficientnet", library="timm", arch="test_efficientnet",
        build=lambda: timm.create_model("test_efficientnet", pretrained=False, channel_multiplier=2.0),
        weights=WeightsCfg(tag="test", input_size=(3, 64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0),
        num_features=512, num_params=896_992, tags=("test",),
    ))

# limit argument, cost key, the words of the reason, CLI flag
LIMITS = [("max_size_mb", "state_dict_mb", "size", "--max-size-mb"),
          ("max_memory_mb", "peak_memory_mb", "peak memory", "--max-memory-mb")]


@pytest.fixture(scope="module")
def costs():
    """Measured cost of each backbone, as the ranking measures it (size and peak memory are deterministic on CPU)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {n: measure_cost(load_backbone(n, "none"), device="cpu", batch_size=2, num_runs=2).as_dict() for n in (TINY, WIDE)}
    finally:
        torch.set_num_threads(before)
    for key in ("state_dict_mb", "peak_memory_mb"):
        assert out[WIDE][key] > 1.5 * out[TINY][key], key  # the scenario: the wide twin is clearly bigger on both
    return out


def test_limits_name_the_broken_size_and_memory_limits():
    limits = Limits(max_size_mb=10, max_memory_mb=100)
    assert limits.broken({"state_dict_mb": 12.34, "peak_memory_mb": 150.0, "num_params": 10**9, "latency_ms_p50": 1e6}) == [
        "size 12.3 MB > --max-size-mb 10 MB", "peak memory 150.0 MB > --max-memory-mb 100 MB"]
    assert limits.broken({"state_dict_mb": 10.0, "peak_memory_mb": 99.9}) == []  # at the limit is within it
    assert limits.broken({"state_dict_mb": 10.01}) == ["size 10.0 MB > --max-size-mb 10 MB"]
    for bad in ({"max_size_mb": 0}, {"max_memory_mb": -5.0}):
        with pytest.raises(SelectionError, match="must be a positive number"):
            Limits(**bad)


@pytest.mark.parametrize(("arg", "key", "what", "flag"), LIMITS)
def test_a_candidate_over_the_limit_is_excluded_and_one_under_it_ranked(image_folder, costs, arg, key, what, flag):
    bound = (costs[TINY][key] + costs[WIDE][key]) / 2
    ranking = rank_backbones(image_folder, [f"{WIDE}:none", f"{TINY}:none"], **{arg: bound}, **FAST)
    by_name = {c.name: c for c in ranking.candidates}
    wide, tiny = by_name[WIDE], by_name[TINY]
    assert wide.status == "excluded"
    assert wide.reason == f"{what} {costs[WIDE][key]:.1f} MB > {flag} {bound:g} MB"
    assert wide.cost[key] == pytest.approx(costs[WIDE][key]) and wide.scores == {} and wide.rank is None
    assert wide.explanation.startswith(f"Excluded: breaks {what}")
    assert tiny.status == "ranked" and tiny.reason is None and tiny.cost[key] <= bound and "linear_probe" in tiny.scores
    assert ranking.best is tiny and ranking.ranked == [tiny]
    assert getattr(ranking.limits, arg) == bound


@pytest.mark.parametrize(("arg", "key", "what", "flag"), LIMITS)
def test_a_limit_equal_to_the_cost_keeps_the_candidate(image_folder, costs, arg, key, what, flag):
    name, ranking = choose_backbone(image_folder, [f"{TINY}:none"], **{arg: costs[TINY][key]}, **FAST)
    assert name == TINY and ranking.best.status == "ranked"


@pytest.mark.parametrize(("arg", "key", "what", "flag"), LIMITS)
def test_choose_backbone_fails_naming_the_limit_when_nothing_fits(image_folder, costs, arg, key, what, flag):
    with pytest.raises(SelectionError, match=f"no candidate can be used: .*{what} .* > {flag}"):
        choose_backbone(image_folder, [f"{TINY}:none"], **{arg: costs[TINY][key] / 2}, **FAST)


def test_rank_cli_applies_both_limits(image_folder, costs, tmp_path):
    out = tmp_path / "ranking.json"
    size = (costs[TINY]["state_dict_mb"] + costs[WIDE]["state_dict_mb"]) / 2
    memory = 10 * costs[WIDE]["peak_memory_mb"]  # not binding
    res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", f"{WIDE}:none,{TINY}:none", "--device", "cpu",
                                   "--max-size-mb", str(size), "--max-memory-mb", str(memory), "--json", str(out), "-q"],
                             env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    assert saved["limits"]["max_size_mb"] == pytest.approx(size) and saved["limits"]["max_memory_mb"] == pytest.approx(memory)
    status = {c["label"]: (c["status"], c["reason"]) for c in saved["candidates"]}
    assert status[f"{TINY}:none"] == ("ranked", None)
    assert status[f"{WIDE}:none"][0] == "excluded" and "--max-size-mb" in status[f"{WIDE}:none"][1]
    assert "--max-memory-mb" not in status[f"{WIDE}:none"][1]
    assert saved["best"] == f"{TINY}:none"
    assert "excluded" in res.output
    # a memory limit below both: nothing usable, exit 1 with the reason
    res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", f"{WIDE}:none,{TINY}:none", "--device", "cpu",
                                   "--max-memory-mb", str(costs[TINY]["peak_memory_mb"] / 2), "-q"], env={"COLUMNS": "250"})
    assert res.exit_code == 1 and "no candidate is usable" in res.output
    assert res.output.count("--max-memory-mb") >= 2  # one reason per candidate
    assert "left out of the transfer evidence" not in res.output  # no candidate was scored: no notes about its evidence


def test_random_init_controls_stay_inside_the_chosen_cache_folder(image_folder, tmp_path):
    cache = tmp_path / "mycache"
    rank_backbones(image_folder, [f"{TINY}:none"], cache_dir=cache, **FAST)
    assert list((cache / "random-init").glob(f"{TINY}-seed0.safetensors"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "mycache"]  # nothing written beside it
