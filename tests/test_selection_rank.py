"""Ranking: limits, unavailable weights, scratch controls, the rule, Pareto marking, cost, ImageNet head, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY
from transferkit.backbones import load_backbone
from transferkit.backbones.imagenet_head import ImageNetHeadUnavailableError, imagenet_probabilities
from transferkit.cli.app import app
from transferkit.config import DEFAULT_FEATURE_STAGES
from transferkit.data import load_image_folder
from transferkit.features import FeatureCache, feature_key
from transferkit.selection import Candidate, CandidateReport, Limits, SelectionError, choose_backbone, rank_backbones
from transferkit.selection.cost import _LiveTensorBytes
from transferkit.selection.rank import mark_pareto_front, order_candidates

FAST = {"latency_runs": 2, "throughput_batch_size": 2, "num_folds": 3, "progress": False}


def _report(label, acc, latency, hits, *, logme=0.0, control=False, top1=70.0):
    name, _, weights = label.partition(":")
    r = CandidateReport(Candidate(name, "none" if control else (weights or "auto")), "ranked", quality={"imagenet_top1": top1})
    r.predicted_accuracy, r.cost, r.oof_correct = acc, {"latency_ms_p50": latency}, np.asarray(hits, bool)
    r.scores = {"logme": logme, "hscore": logme, "knn_accuracy": acc, "linear_probe": {"accuracy": acc}}
    return r


def test_limits_name_the_broken_limit_and_reject_nonsense():
    limits = Limits(max_params=1_000_000, max_latency_ms=10)
    broken = limits.broken({"num_params": 3_400_000, "latency_ms_p50": 12.5, "peak_memory_mb": 900})
    assert broken == ["parameters 3.40 M > --max-params 1.00 M", "latency p50 12.5 ms > --max-latency-ms 10 ms"]
    assert limits.broken({"num_params": 10, "latency_ms_p50": 1.0}) == []
    with pytest.raises(SelectionError, match="--max-memory-mb must be a positive number"):
        Limits(max_memory_mb=0)


def test_candidate_parsing():
    assert Candidate.parse("mobilenet_v2") == Candidate("mobilenet_v2", "auto")
    assert Candidate.parse(" mobilenet_v2:None ").is_control
    assert Candidate.parse("vgg19:/w/vgg.pth").label == "vgg19:w/vgg.pth"  # the folder too: fine-tuned files often share a name
    assert Candidate.parse("vgg19:vgg.pth").label == "vgg19:vgg.pth"
    with pytest.raises(SelectionError, match="empty candidate"):
        Candidate.parse(":none")


def test_pareto_front_marks_only_undominated_candidates():
    hits = [True] * 10
    reports = [_report("a", 0.90, 10, hits), _report("b", 0.95, 30, hits), _report("c", 0.89, 40, hits), _report("d", 0.90, 10, hits)]
    mark_pareto_front(reports)
    assert [r.on_pareto_front for r in reports] == [True, True, False, True]  # c is beaten by a on both; a and d tie


def test_rule_breaks_statistical_ties_by_evidence_and_keeps_clear_gaps():
    n = 200
    best = np.ones(n, bool)
    best[:20] = False  # 90 %
    close = best.copy()
    close[20:23] = False  # 88.5 %, same images mostly: not significantly worse
    far = np.zeros(n, bool)
    far[:120] = True  # 60 %: clearly worse
    reports = [_report("a", best.mean(), 5, best, logme=0.1), _report("b", close.mean(), 5, close, logme=0.9),
               _report("c", far.mean(), 5, far, logme=5.0), _report("d", best.mean(), 5, best, logme=0.1, control=True, top1=None)]
    ordered = order_candidates(reports)
    assert [r.label for r in ordered] == ["b", "a", "d:none", "c"]
    # b: tied with the leader a, more evidence; d: a random-init control with a's numbers but no ImageNet top-1
    # (counted as worst), so a goes first; c has the most evidence but is clearly less accurate: a tier of its own
    assert [r.tier for r in ordered] == [1, 1, 1, 2]
    assert [r.rank for r in ordered] == [1, 2, 3, 4]


def test_live_tensor_bytes_counts_the_peak():
    with torch.inference_mode(), _LiveTensorBytes(baseline=100) as tracker:
        a = torch.ones(1000)  # 4000 B
        b = a * 2  # 8000 live
        del a
        c = b + 1  # 8000 live again, peak unchanged
        del b, c
    assert tracker.peak == 100 + 8000
    assert tracker.live == 100


def test_imagenet_head_reproduces_the_full_model(tiny_weights):
    from conftest import _build_tiny
    from safetensors.torch import load_file

    backbone = load_backbone(TINY, tiny_weights).eval()
    full = _build_tiny().eval()
    full.load_state_dict(load_file(str(tiny_weights)))
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        expected = full(x).softmax(1).numpy()
        probs = imagenet_probabilities(backbone, backbone(x).numpy())
    assert probs.shape == (3, 1000)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    with pytest.raises(ImageNetHeadUnavailableError, match="randomly initialised"):
        imagenet_probabilities(load_backbone(TINY, "none"), np.zeros((1, 256), np.float32))


def test_rank_backbones_end_to_end(image_folder, tiny_weights, tmp_path):
    cands = [f"{TINY}:{tiny_weights}", f"{TINY}:none", "vgg19"]
    ranking = rank_backbones(image_folder, cands, **FAST)
    by_label = {c.label: c for c in ranking.candidates}
    # weights missing here: listed with the reason, not dropped
    vgg = by_label["vgg19"]
    assert vgg.status == "unavailable" and "no pretrained weights for 'vgg19'" in vgg.reason
    assert "Not ranked" in vgg.explanation
    assert [c.status for c in ranking.candidates] == ["ranked", "ranked", "unavailable"]
    pre, ctrl = by_label[f"{TINY}:{tiny_weights.parent.name}/tiny.safetensors"], by_label[f"{TINY}:none"]
    assert set(pre.scores) >= {"logme", "hscore", "knn_accuracy", "linear_probe", "leep", "nce"}
    assert "leep" not in ctrl.scores and "random init" in ctrl.score_notes["leep"]
    assert ranking.best is ranking.candidates[0] and {pre.rank, ctrl.rank} == {1, 2}
    for c in (pre, ctrl):
        lp = c.scores["linear_probe"]
        assert 0 <= lp["ci_low"] <= c.predicted_accuracy == lp["accuracy"] <= lp["ci_high"] <= 1
        assert c.cost["num_params"] > 0 and c.cost["macs"] > 0 and c.cost["latency_ms_p95"] >= c.cost["latency_ms_p50"] > 0
        assert c.cost["peak_memory_mb"] > c.cost["state_dict_mb"] * 0.5
        assert "Task similarity" in c.explanation and "Size and quality" in c.explanation and "Fit with your limits" in c.explanation
    assert any(c.on_pareto_front for c in ranking.ranked)
    # only training images were read: test images' features are not in the cache; they are the features `fit` trains on
    # by default (the last DEFAULT_FEATURE_STAGES stages pooled), so a later fit reuses them
    splits = load_image_folder(image_folder, progress=False)
    backbone = load_backbone(TINY, tiny_weights)
    stages = min(DEFAULT_FEATURE_STAGES, backbone.max_feature_stages)
    assert stages > 1
    key = feature_key(TINY, backbone.weights_record["sha256"], backbone.data_cfg, stages=stages)
    cache = FeatureCache()
    assert len(cache.get(key, [r.sha256 for r in splits.train + splits.val])) == len(splits.train) + len(splits.val)
    assert cache.get(key, [r.sha256 for r in splits.test]) == {}
    assert ranking.data["test_split_read"] is False and ranking.data["feature_stages"] == DEFAULT_FEATURE_STAGES
    # the JSON record holds everything
    saved = json.loads(ranking.save_json(tmp_path / "rank.json").read_text())
    assert saved["best"] == ranking.best.label and len(saved["candidates"]) == 3 and "McNemar" in saved["rule"]


def test_limits_exclude_candidates_and_choose_backbone_says_why(image_folder, tiny_weights):
    cands = [f"{TINY}:{tiny_weights}"]
    ranking = rank_backbones(image_folder, cands, max_latency_ms=1e-6, **FAST)
    (only,) = ranking.candidates
    assert only.status == "excluded" and "--max-latency-ms" in only.reason and only.scores == {}
    assert ranking.best is None
    with pytest.raises(SelectionError, match="--max-params"):
        choose_backbone(image_folder, cands, max_params=10, **FAST)  # published count: excluded before loading
    name, ranking = choose_backbone(image_folder, cands, max_memory_mb=10_000, **FAST)
    assert name == TINY and ranking.best.status == "ranked"


def test_rank_cli(image_folder, tiny_weights, tmp_path):
    runner = CliRunner()
    out = tmp_path / "r.json"
    chart = tmp_path / "charts" / "ranking.png"
    res = runner.invoke(app, ["rank", str(image_folder), "--candidates", f"{TINY}:{tiny_weights},vgg19", "--json", str(out), "--chart", str(chart), "-q"])
    assert res.exit_code == 0, res.output
    assert "unavailable" in res.output and "best:" in res.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(out.read_text())
    assert saved["best"] == f"{TINY}:{tiny_weights.parent.name}/tiny.safetensors" and saved["strategy"] == "linear-probe" and "knn_accuracy" in saved["evidence_scores"]
    tuned = runner.invoke(app, ["rank", str(image_folder), "--candidates", f"{TINY}:{tiny_weights}", "--strategy", "finetune",
                                "--groups", r"(train_[a-z]+_\d)", "--json", str(out), "-q", "--no-explain"])
    assert tuned.exit_code == 0, tuned.output
    panel = " ".join(tuned.output.replace("│", " ").split())  # the rich panel wraps long lines
    assert "--strategy finetune" in panel and "LogME + published quality" in panel
    saved = json.loads(out.read_text())
    assert saved["strategy"] == "finetune" and saved["evidence_scores"] == ["logme", "published_quality"]
    assert saved["data"]["groups"]["pattern"] == r"(train_[a-z]+_\d)" and saved["data"]["groups"]["num_subjects_in_two_splits"] == 0
    assert any("strategy 'finetune' fine-tunes the backbone" in n for n in saved["notes"])
    wrong = runner.invoke(app, ["rank", str(image_folder), "--strategy", "sgd", "-q"])
    assert wrong.exit_code == 1 and "unknown strategy 'sgd'" in wrong.output and "Traceback" not in wrong.output
    bad = runner.invoke(app, ["rank", str(image_folder), "--candidates", "mobilenet_v9", "-q"])
    assert bad.exit_code == 1 and "unknown backbone 'mobilenet_v9'" in bad.output and "Traceback" not in bad.output
    text = runner.invoke(app, ["rank", str(image_folder), "--modality", "text", "-q"])
    assert text.exit_code == 1 and "--modality text needs a labelled text file" in text.output


def test_finetune_strategy_breaks_ties_by_logme_and_published_quality_only():
    """Frozen-feature scores (k-NN, H-score) favour 'a'; LogME and ImageNet top-1 favour 'b'. A user who will fine-tune
    gets 'b' first; a linear-probe user gets 'a'. A clearly worse control stays below in both."""
    n = 200
    hits = np.ones(n, bool)
    hits[:20] = False
    close = hits.copy()
    close[20:22] = False  # not significantly worse than 'a'
    far = np.zeros(n, bool)
    far[:100] = True

    def reports():
        a = _report("a", hits.mean(), 5, hits, logme=0.1, top1=70.0)
        a.scores.update(hscore=9.0, knn_accuracy=0.99)
        b = _report("b", close.mean(), 5, close, logme=0.5, top1=80.0)
        b.scores.update(hscore=1.0, knn_accuracy=0.50)
        c = _report("c", far.mean(), 5, far, logme=9.0, control=True, top1=None)
        return [a, b, c]

    frozen = order_candidates(reports())
    assert [r.label for r in frozen] == ["a", "b", "c:none"]
    tuned = order_candidates(reports(), strategy="finetune")
    assert [r.label for r in tuned] == ["b", "a", "c:none"]
    assert tuned[0].evidence == 0.75 and tuned[1].evidence == 0.0  # b: LogME 2nd of 3 (the control's is higher), top-1 best
    with pytest.raises(SelectionError, match="unknown strategy 'sgd'"):
        order_candidates(reports(), strategy="sgd")


def test_grouped_cv_scores_do_not_reward_recognising_the_subject():
    """Labels are random per subject and carry no signal, but each subject's images are near-copies: plain CV
    lets k-NN and the probe recognise the subject (high accuracy); grouped CV brings both back to chance."""
    from transferkit.selection.rank import score_features

    rng = np.random.default_rng(0)
    subjects = np.repeat(np.arange(60), 4)
    centres = rng.normal(size=(60, 128))
    feats = (centres[subjects] + 0.01 * rng.normal(size=(240, 128))).astype(np.float32)
    labels = rng.permutation(np.repeat([0, 1], 30))[subjects]
    plain, _ = score_features(feats, labels, num_folds=5, seed=0)
    grouped, _ = score_features(feats, labels, num_folds=5, seed=0, groups=subjects.astype(str))
    assert plain["knn_accuracy"] > 0.95 and plain["linear_probe"]["accuracy"] > 0.9
    assert grouped["knn_accuracy"] < 0.7 and grouped["linear_probe"]["accuracy"] < 0.7


def test_an_empty_candidate_list_is_an_error_and_none_means_every_backbone(image_folder):
    """rank_backbones(data, []) silently ranked every registered backbone, as None does."""
    for empty in ([], ()):
        with pytest.raises(SelectionError, match=r"no candidates: candidates is empty.*candidates=None to rank every registered image"):
            rank_backbones(image_folder, empty, progress=False)


def test_rank_hint_for_a_winning_control_names_the_saved_random_init_file(image_folder, tmp_path):
    """`--weights none` trained another random network without the cached features or a sha256; the file the ranking
    saved (random_init_weights) gives fit the very network that was ranked."""
    cache = tmp_path / "my cache"  # a space: the hint must stay one argument when pasted into a shell
    res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", f"{TINY}:none", "--device", "cpu", "--cache-dir", str(cache),
                                   "-q", "--no-explain"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    saved = cache / "random-init" / f"{TINY}-seed0.safetensors"
    assert saved.is_file()
    flat = " ".join(res.output.replace("│", " ").split())
    assert f"--model {TINY} --weights '{saved}'" in flat and "--weights none" not in flat


def test_predicted_accuracy_is_shown_beside_the_majority_class_rate_and_warned_when_not_above_it(tmp_path):
    """On imbalanced data the probe's accuracy can be the majority share (all predictions the big class): the ranking
    showed it as a plain 'predicted accuracy'. Now the majority rate and the balanced accuracy stand beside it, and a
    candidate whose accuracy is not clearly above it is warned about; the order is untouched."""
    from conftest import write_class_image

    rng = np.random.default_rng(0)
    for cls, n in (("NORMAL", 5), ("PNEUMONIA", 25)):
        for i in range(n):  # one colour for both classes: the features carry no signal
            write_class_image(tmp_path / "imb" / cls / f"{cls}_{i}.png", 0, rng)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["rank", str(tmp_path / "imb"), "--candidates", f"{TINY}:none", "--device", "cpu", "--json", str(out),
                                   "-q"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    (cand,) = saved["candidates"]
    rate = saved["data"]["majority_rate"]
    assert saved["data"]["majority_class"] == "PNEUMONIA" and cand["majority_class"] == "PNEUMONIA" and cand["majority_rate"] == rate
    assert 0.75 < rate < 0.9
    assert cand["predicted_ci95"][0] <= rate and cand["predicted_balanced_accuracy"] <= 0.75
    (warning,) = cand["warnings"]
    assert "always answering PNEUMONIA" in warning and f"{100 * rate:.1f} % of the training images" in warning
    flat = " ".join(res.output.split())
    assert "bal. acc %" in flat and f"always answering PNEUMONIA (the majority class) is right on {100 * rate:.1f} %" in flat
    assert f"warning {TINY}:none: predicted accuracy" in flat and "balanced accuracy" in cand["explanation"]


def test_baseline_helpers():
    from transferkit.selection.rank import balanced_accuracy, baseline_warning, majority_baseline

    labels = np.array([1, 1, 1, 1, 1, 0])
    assert majority_baseline(labels, ["a", "b"]) == ("b", pytest.approx(5 / 6))
    assert majority_baseline(np.array([0, 1, 1, 2, 2]), ["a", "b", "c"]) == ("b", 0.4)  # a tie: the first class
    assert majority_baseline(np.array([0, 1, 1, 0]), ["a", "b"]) == (None, 0.5)  # all the same size: chance, no majority class
    assert balanced_accuracy(np.array([1, 1, 1, 1, 1, 0], bool), labels) == 0.5  # every example answered 'b'
    r = _report("a", 5 / 6, 5, [True] * 5 + [False])
    r.predicted_ci, r.majority_class, r.majority_rate = (0.44, 0.97), "b", 5 / 6
    r.scores["linear_probe"]["balanced_accuracy"] = 0.5
    assert baseline_warning(r) == ("predicted accuracy 83.3 % is no better than always answering b (83.3 % of the training images; "
                                   "balanced accuracy 50.0 %): it has not shown that it tells the classes apart.")
    r.predicted_accuracy = 0.9
    assert baseline_warning(r).startswith("predicted accuracy 90.0 % is not clearly better than always answering b")
    r.predicted_ci = (0.85, 0.97)
    assert baseline_warning(r) is None  # clearly above: no warning


def test_scores_have_a_legend_and_enough_digits_to_order_as_their_places(tmp_path):
    """H-score 3.97 was shown for three candidates placed 1st/2nd/3rd; nothing said that every score is higher-is-better
    (LogME/LEEP/NCE are negative) nor what "evidence 0.67 of 1" is."""
    from rich.console import Console

    from transferkit.cli.rank_commands import _ranking_tables
    from transferkit.selection import RankingResult
    from transferkit.selection.rank import distinct_decimals, explain

    assert distinct_decimals([3.9712, 3.9667, 3.9451], 2) == 3 and distinct_decimals([3.9712, 3.9712, 1.0], 2) == 2
    assert distinct_decimals([0.12345671, 0.12345672], 1, at_most=6) == 6 and distinct_decimals([None, float("nan"), 1.0], 2) == 2
    hits = np.ones(40, bool)
    reports = [_report(label, 0.9, 5, hits, logme=logme) for label, logme in (("a", -0.5001), ("b", -0.5004), ("c", -0.5009))]
    for r, h, leep in zip(reports, (3.9712, 3.9708, 3.9651), (-1.2341, -1.2344, -1.2349)):
        r.scores.update(hscore=h, leep=leep, nce=leep, linear_probe={"accuracy": 0.9, "ci_low": 0.77, "ci_high": 0.96, "num_folds": 5})
        r.predicted_ci = (0.77, 0.96)
        r.cost = {"latency_ms_p50": 5.0, "latency_ms_p95": 6.0, "num_params": 10**6, "macs": 10**8, "state_dict_mb": 4.0,
                  "peak_memory_mb": 9.0, "throughput_img_s": 100.0, "throughput_batch_size": 16, "device": "cpu"}
    ordered = order_candidates(reports)
    assert [r.label for r in ordered] == ["a", "b", "c"] and ordered[0].evidence > ordered[1].evidence > ordered[2].evidence
    ranking = RankingResult(ordered, Limits(), {"root": str(tmp_path), "num_ranking_items": 40, "majority_class": "x",
                                                "majority_rate": 0.5}, "cpu", {"total": 1.0})
    console = Console(width=250, record=True)
    for table in _ranking_tables(ranking):
        console.print(table)
    text = console.export_text()
    assert "LogME ↑" in text and "H-score ↑" in text and "LEEP ↑" in text and "evidence ↑" in text
    assert "↑ = higher is better, for every score" in text and "evidence = the mean of the candidate's normalised ranks" in text
    rows = [line for line in text.splitlines() if line.startswith("│ ")][:3]
    assert [r.split("│")[7].strip() for r in rows] == ["3.9712", "3.9708", "3.9651"]  # H-score column
    assert [r.split("│")[6].strip() for r in rows] == ["-0.5001", "-0.5004", "-0.5009"]  # LogME column
    assert [r.split("│")[9].strip() for r in rows] == ["-1.2341", "-1.2344", "-1.2349"]  # LEEP column
    words = explain(ordered[0], ordered, Limits())
    assert "H-score 3.9712 (1 of 3)" in words and "LogME -0.5001 (1 of 3)" in words and "the mean of its normalised ranks" in words
    saved = ranking.as_dict()["legend"]
    assert "higher is better" in saved["scores"] and "hscore" in saved["higher_is_better"] and "H-score" in saved["evidence"]


class _FakeMachine:
    """A clock and forwards that cost 10 ms, or 30 ms in a slow phase of the machine (another process on its cores)."""

    def __init__(self, slow_from_ms: float, slow_to_ms: float):
        self.now_ms, self.slow = 0.0, (slow_from_ms, slow_to_ms)
        self.calls: list[str] = []

    def timer(self) -> float:
        return self.now_ms / 1000

    def probe(self, name: str):
        from transferkit.selection.cost import LatencyProbe

        def forward(x):
            self.calls.append(name)
            self.now_ms += 30.0 if self.slow[0] <= self.now_ms < self.slow[1] else 10.0

        return LatencyProbe(forward, None)


def test_latencies_are_timed_round_robin_with_the_first_candidate_rotating():
    from transferkit.selection import interleaved_latencies

    machine = _FakeMachine(1e9, 1e9)  # never slow
    stats = interleaved_latencies([machine.probe(n) for n in "abc"], num_runs=4, rounds=2, timer=machine.timer)
    # each round: every candidate in turn, one untimed forward then its 2 timed ones; round 2 starts with the second
    assert "".join(machine.calls) == "aaabbbccc" + "bbbcccaaa"
    for s in stats:
        assert s["latency_ms_p50"] == pytest.approx(10.0) and s["latency_ms_spread"] == pytest.approx((10.0, 10.0))
        assert s["latency_rounds"] == 2 and "interleaved round-robin with 2 other candidates" in s["latency_method"]
    machine = _FakeMachine(1e9, 1e9)
    (alone,) = interleaved_latencies([machine.probe("a")], num_runs=20, timer=machine.timer)
    assert len(machine.calls) == 30 and alone["latency_rounds"] == 10  # 20 timed in 10 rounds of 2, each after 1 untimed


def test_identical_weights_timed_through_a_slow_phase_come_out_alike():
    """Timed one after the other (the old way), a slow phase of the machine fell on one copy of mobilenet_v2 and not on
    the other (30.6 vs 14.4 ms in one run); interleaved, it falls on both alike."""
    from transferkit.selection import interleaved_latencies

    machine = _FakeMachine(200, 1e9)  # another job starts 0.2 s in and stays
    one, two = interleaved_latencies([machine.probe("a"), machine.probe("b")], num_runs=20, timer=machine.timer)
    assert one["latency_ms_p50"] == pytest.approx(30.0) and two["latency_ms_p50"] == pytest.approx(30.0)
    assert one["latency_ms_spread"] == pytest.approx((10.0, 30.0)) and two["latency_ms_spread"] == pytest.approx((10.0, 30.0))  # and the spread says it moved
    # the same machine on the old schedule: 22 forwards of a (2 warm-up + 20 timed), then 22 of b
    machine = _FakeMachine(200, 1e9)
    probes = {n: machine.probe(n) for n in "ab"}
    old = {}
    for name, p in probes.items():
        times = []
        for i in range(22):
            t0 = machine.now_ms
            p.forward(None)
            if i >= 2:
                times.append(machine.now_ms - t0)
        old[name] = float(np.median(times))
    assert old["a"] == pytest.approx(10.0) and old["b"] == pytest.approx(30.0)  # what made the pick flip


def test_a_limit_inside_the_latency_spread_is_said_and_rank_times_candidates_together(image_folder, tiny_weights, monkeypatch):
    from transferkit.selection import cost as cost_module

    assert Limits(max_latency_ms=25).straddled({"latency_ms_p50": 26.0, "latency_ms_spread": (24.0, 31.0), "latency_rounds": 5}) == [
        "latency 24.0–31.0 ms (the medians of its 5 timing rounds) straddles the 25 ms limit (--max-latency-ms): measurement noise "
        "can decide whether it is kept; re-run on an idle machine or loosen the limit."]
    assert Limits(max_latency_ms=35).straddled({"latency_ms_p50": 26.0, "latency_ms_spread": (24.0, 31.0)}) == []
    assert Limits().straddled({"latency_ms_p50": 26.0, "latency_ms_spread": (24.0, 31.0)}) == []

    seen = []

    def fake(probes, *, num_runs=20, **kwargs):  # no real timing: the first candidate straddles 25 ms, the second is well under
        seen.append(len(probes))
        return [{"latency_ms_p50": p50, "latency_ms_p95": p50 + 1, "latency_ms_spread": spread, "latency_rounds": 5,
                 "latency_method": "fake"} for p50, spread in zip((26.0, 5.0), ((24.0, 31.0), (4.0, 6.0)))]

    monkeypatch.setattr(cost_module, "interleaved_latencies", fake)
    ranking = rank_backbones(image_folder, [f"{TINY}:{tiny_weights}", f"{TINY}:none"], max_latency_ms=25, **FAST)
    assert seen == [2]  # both candidates timed in one interleaved measurement
    first, second = ranking.candidates[1], ranking.candidates[0]
    assert first.status == "excluded" and first.cost["latency_ms_spread"] == (24.0, 31.0)
    assert first.warnings and "straddles the 25 ms limit" in first.warnings[0] and "straddles" in first.explanation
    assert second.status == "ranked" and second.warnings == []
    res = CliRunner().invoke(app, ["rank", str(image_folder), "--candidates", f"{TINY}:{tiny_weights},{TINY}:none", "--max-latency-ms", "25",
                                   "-q", "--no-explain"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "latency 24.0–31.0 ms (the medians of its 5 timing rounds) straddles the 25 ms limit" in flat and "4.0–6.0" in flat
