"""Model-selection limits --max-size-mb and --max-memory-mb: a candidate over a limit is excluded, with the
limit and its measured value as the reason, and not scored; one under it is ranked.

Mirrors tests/test_selection_rank.py (which covers --max-params and --max-latency-ms) with two tiny
backbones of different size: the conftest's tiny EfficientNet and a twice-as-wide twin registered here.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import timm
from typer.testing import CliRunner

from conftest import TINY
from transferkit.backbones import BackboneSpec, WeightsCfg, _registry, get_backbone_spec, load_backbone, register_backbone
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


def test_max_params_is_checked_on_the_backbone_count_before_and_after_loading(image_folder, costs):
    """The pre-load check compared the published count (with the ImageNet classifier: 3.50 M for mobilenet_v2) with the
    limit, so a backbone of 2.22 M was excluded under --max-params 2.3 M. Both checks now count the backbone."""
    from transferkit.backbones import backbone_num_params

    assert backbone_num_params(TINY) == costs[TINY]["num_params"] < get_backbone_spec(TINY).num_params  # the classifier is cut off
    between = (costs[TINY]["num_params"] + get_backbone_spec(TINY).num_params) // 2  # above the backbone, below the published count
    ranking = rank_backbones(image_folder, [f"{TINY}:none"], max_params=between, **FAST)
    assert ranking.best is not None and ranking.best.cost["num_params"] <= between
    ranking = rank_backbones(image_folder, [f"{TINY}:none"], max_params=costs[TINY]["num_params"] - 1, **FAST)
    assert ranking.best is None and "counted before loading" in ranking.candidates[0].reason


def test_python_ranking_boundaries(image_folder, tmp_path, tiny_weights):
    import shutil

    with pytest.raises(SelectionError, match="either as limits=Limits"):
        rank_backbones(image_folder, [f"{TINY}:none"], limits=Limits(max_memory_mb=100), max_memory_mb=20, **FAST)
    with pytest.raises(SelectionError, match="must be a number"):
        Limits(max_latency_ms="50")
    one = rank_backbones(image_folder, f"{TINY}:none", **FAST)  # one candidate as a string, not its characters
    assert [c.label for c in one.candidates] == [f"{TINY}:none"]
    with pytest.raises(SelectionError, match="'lora' is for text encoders"):
        rank_backbones(image_folder, [f"{TINY}:none"], strategy="lora", **FAST)
    # two files of one name in two folders: two candidates, labelled apart
    for run in ("run1", "run2"):
        (tmp_path / run).mkdir()
        shutil.copy(tiny_weights, tmp_path / run / "model.safetensors")
    both = rank_backbones(image_folder, [f"{TINY}:{tmp_path / 'run1' / 'model.safetensors'}", f"{TINY}:{tmp_path / 'run2' / 'model.safetensors'}"], **FAST)
    assert sorted(c.label for c in both.candidates) == [f"{TINY}:run1/model.safetensors", f"{TINY}:run2/model.safetensors"]
    with pytest.raises(SelectionError, match="listed twice"):
        rank_backbones(image_folder, [f"{TINY}:{tmp_path / 'run1' / 'model.safetensors'}"] * 2, **FAST)


def test_a_device_that_is_not_here_is_one_line(image_folder):
    import torch

    from transferkit.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the case is a machine without one")
    for dev, msg in (("cuda", "no CUDA GPU is visible here"), ("gpu", "unknown device 'gpu'")):
        with pytest.raises(ConfigError, match=msg):
            rank_backbones(image_folder, [f"{TINY}:none"], **{**FAST, "device": dev})
    res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", f"{TINY}:none", "--device", "cuda", "-q"])
    assert res.exit_code == 1 and "no CUDA GPU is visible here" in res.output and "Traceback" not in res.output


def test_rank_hint_and_fit_auto_keep_the_weights_they_rank(image_folder, tiny_weights, tmp_path):
    import transferkit as tk
    from transferkit.errors import ConfigError

    res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", f"{TINY}:{tiny_weights}", "--device", "cpu", "--stages", "2",
                                   "-q", "--no-explain"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert f"--weights {tiny_weights}" in flat and "--stages 2" in flat
    with pytest.raises(ConfigError, match="model='auto' ranks the pretrained candidates"):
        tk.fit(image_folder, model="auto", weights="none", progress=False)
    res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", ",", "-q"])
    assert res.exit_code == 1 and "names no backbone" in res.output


def test_limits_take_numpy_numbers_and_whole_floats_for_max_params():
    """np.int64 (a count read from a table) and np.float32 were refused as "must be a number"; 3e6 for --max-params too."""
    limits = Limits(max_params=np.int64(3_000_000), max_latency_ms=np.float32(25.5), max_size_mb=np.float64(10), max_memory_mb=100)
    assert limits.max_params == 3_000_000 and type(limits.max_params) is int
    assert limits.max_latency_ms == 25.5 and type(limits.max_latency_ms) is float and type(limits.max_memory_mb) is float
    assert limits.broken({"num_params": 3_000_001, "latency_ms_p50": 26.0}) == [
        "parameters 3.00 M > --max-params 3.00 M", "latency p50 26.0 ms > --max-latency-ms 25.5 ms"]
    assert json.loads(json.dumps(limits.as_dict()))["max_params"] == 3_000_000
    assert Limits(max_params=3e6).max_params == 3_000_000 and Limits(max_params=np.float32(2e6)).max_params == 2_000_000
    with pytest.raises(SelectionError, match="--max-params must be a whole number of parameters, got 2.5"):
        Limits(max_params=2.5)
    for bad in (True, np.bool_(True), "3e6"):
        with pytest.raises(SelectionError, match="--max-params must be a number"):
            Limits(max_params=bad)


@pytest.mark.parametrize("flag", ["max_params", "max_size_mb", "max_latency_ms", "max_memory_mb"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_limits_are_refused_like_zero_and_negative_ones(flag, value):
    """--max-memory-mb inf was accepted and the JSON record then held `Infinity` (not JSON)."""
    with pytest.raises(SelectionError, match=f"must be a positive number, got {value!r}"):
        Limits(**{flag: value})


def test_ranking_json_is_strict_even_with_non_finite_numbers(tmp_path):
    from transferkit.selection import Candidate, CandidateReport, RankingResult

    report = CandidateReport(Candidate("a"), "ranked", predicted_accuracy=float("nan"), scores={"logme": float("-inf")},
                             cost={"latency_ms_p50": np.float32(3.5)})
    ranking = RankingResult([report], Limits(), {"root": "x"}, "cpu", {"total": float("inf")})

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    saved = json.loads(ranking.save_json(tmp_path / "sub" / "r.json").read_text(), parse_constant=refuse)
    assert saved["timing_s"]["total"] is None and saved["candidates"][0]["predicted_accuracy"] is None
    assert saved["candidates"][0]["scores"]["logme"] is None and saved["candidates"][0]["cost"]["latency_ms_p50"] == 3.5


def test_rank_cli_takes_3e6_for_max_params_and_refuses_inf_in_one_line(image_folder, tmp_path):
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", f"{TINY}:none", "--device", "cpu", "--max-params", "3e6",
                                   "--json", str(out), "-q", "--no-explain"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["limits"]["max_params"] == 3_000_000
    for flag, value, words in (("--max-memory-mb", "inf", "--max-memory-mb must be a positive number, got inf"),
                               ("--max-params", "inf", "--max-params must be a positive number, got inf"),
                               ("--max-params", "2.5", "--max-params must be a whole number of parameters, got 2.5")):
        res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", f"{TINY}:none", flag, value, "-q"],
                                 env={"COLUMNS": "250"})
        assert res.exit_code == 1 and words in " ".join(res.output.split()) and "Traceback" not in res.output, res.output
