"""The report of a text run (`fit-text`), end to end on a tiny BERT: shared sections, text data
section, misclassified texts with token attributions (escaped), calibration used by predict,
undefined metrics as null; rendered in headless chromium like the image report."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from test_report import CHROMIUM, assert_renders_in_browser
from test_text_model import save_tiny_bert, sentiment_rows
from transferkit.cli.app import app

runner = CliRunner()
MARKUP = "great <b>love</b> & good <script>alert(1)</script>"


def _strict_json(path: Path):
    def refuse(name):
        raise AssertionError(f"{path.name} holds {name}: not valid JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A tiny-BERT linear probe fitted with its report; the data has skipped rows, duplicates and leakage."""
    from transferkit.text import fit_text

    root = tmp_path_factory.mktemp("report-text")
    model = save_tiny_bert(root / "tiny-bert")
    rows = sentiment_rows(30)
    with open(root / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(rows)
        w.writerows([["", "pos"], ["good phone", ""], ["the phone is good", "pos"], ["the phone is good", "pos"],
                     ["the case broke", "neg"], ["the case broke", "pos"]])
    with open(root / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(sentiment_rows(8, seed=5))
        w.writerows([[MARKUP, "neg"], list(rows[0]), [rows[1][0].upper() + "!", rows[1][1]]])  # markup; identical; near-duplicate
    fit_text(root / "train.csv", model=str(model), test=root / "test.csv", out=root / "run", progress=False, max_length=16, device="cpu",
             cache_dir=root / "cache")
    return root / "run"


def _copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def _misclassify_markup_row(run: Path) -> None:
    """Give the markup text the label the model did not predict, so it is in the gallery whatever the model learnt."""
    path = run / "predictions" / "test.csv"
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    for r in rows[1:]:
        if r[3] == MARKUP:
            wrong = int(np.argmin([float(v) for v in r[4:]]))
            r[1], r[2] = str(wrong), rows[0][4 + wrong][2:]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_fit_text_writes_predictions_report_and_calibrated_model(text_run: Path):
    import transferkit as tk
    from transferkit.evaluation import load_predictions

    html = (text_run / "report.html").read_text()
    for section in ("Data", "Model card", "bootstrap intervals", "Calibration", "Training curves", "Misclassified"):
        assert section in html
    summary = _strict_json(text_run / "report.json")
    assert summary["modality"] == "text" and summary["num_test"] == 19
    for name in ("accuracy", "roc_auc", "sensitivity", "specificity"):
        iv = summary["test"][name]
        assert iv["low"] <= iv["estimate"] <= iv["high"]
        assert f"[{iv['low']:.3f}, {iv['high']:.3f}]" in html  # the interval is printed in the metrics table
    # the text reader's findings: skipped rows, duplicate texts (one with conflicting labels), leakage
    assert "2 row(s) skipped" in html and "empty text" in html and "missing label" in html
    assert "3 text(s) occur more than once" in html and "(conflict)" in html
    assert summary["leakage"]["checked"] and len(summary["leakage"]["identical"]) == 1 and len(summary["leakage"]["near_duplicates"]) == 1
    assert any("leakage" in w for w in summary["warnings"])
    # predictions carry the texts; the temperature is saved and used by predict
    test = load_predictions(text_run, "test")
    assert test.texts is not None and MARKUP in test.texts and test.paths[0].startswith("test.csv:")
    model = tk.load(text_run)
    t = summary["calibration"]["temperature"]
    assert model.temperature == pytest.approx(t) and t != 1.0
    raw, cal = model.predict_proba(["great phone"], calibrated=False), model.predict_proba(["great phone"])
    np.testing.assert_allclose(np.diff(np.log(cal)), np.diff(np.log(raw)) / t, rtol=1e-4)
    _strict_json(text_run / "metrics.json")
    assert len(_strict_json(text_run / "metrics.json")["history"]) > 1  # the probe's epochs: the training curves
    for png in ("confusion_matrix", "roc", "precision_recall", "reliability", "training_curves"):
        assert (text_run / "report" / f"{png}.png").stat().st_size > 1000


def test_report_command_shows_escaped_texts_with_token_attributions(text_run: Path, tmp_path: Path):
    run = _copy(text_run, tmp_path)
    _misclassify_markup_row(run)
    result = runner.invoke(app, ["report", str(run), "--quiet", "--resamples", "200", "--target-sensitivity", "0.8"])
    assert result.exit_code == 0, result.output
    assert "texts)" in result.output and "report.html" in result.output
    html = (run / "report.html").read_text()
    summary = _strict_json(run / "report.json")
    entry = next(g for g in summary["gallery"] if g["text"] == MARKUP)
    words = [w for w, _ in entry["attribution"]["words"]]
    assert {"great", "love", "good"} <= set(words) and entry["attribution"]["delta"] < 0.1 * entry["attribution"]["scale"] + 1e-6
    assert entry["truncated"] and "alert" not in words  # past max_length=16 tokens: shown, not coloured
    assert "longer than the model's token limit" in html
    # every word is a coloured span; the markup is text, never HTML
    assert html.count('<span class="tok" style="background-color: rgba(') >= len(words)
    assert "<script>" not in html and "<b>love</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;" in html and "&amp; " in html
    assert summary["operating_point"]["target"] == "sensitivity"
    # the operating point's hint names the command a text model takes (`evaluate` would refuse a text run)
    op = summary["operating_point"]
    assert abs(op["threshold_calibrated"] - op["threshold"]) > 5e-5  # calibrated: the hint is printed
    flat = re.sub(r"[│\s]+", " ", result.output)
    assert f"evaluate-text --threshold {op['threshold_calibrated']:.4f}" in flat and " evaluate --threshold" not in flat


def test_report_recomputes_text_predictions_and_explains_undefined_metrics(text_run: Path, tmp_path: Path, monkeypatch):
    from transferkit.evaluation import load_predictions

    run = _copy(text_run, tmp_path)
    before = load_predictions(run, "test")
    shutil.rmtree(run / "predictions")
    monkeypatch.chdir(text_run.parent)  # where fit-text ran (the data paths in config.json are absolute here anyway)
    result = runner.invoke(app, ["report", str(run), "--quiet", "--resamples", "200", "--gallery", "2"])
    assert result.exit_code == 0, result.output
    after = load_predictions(run, "test")
    assert after.texts == before.texts
    np.testing.assert_allclose(after.proba, before.proba, atol=1e-5)  # uncalibrated, though the model now has a temperature
    # a test split with one class only: ROC-AUC and sensitivity are undefined -> null, and the report says why
    path = run / "predictions" / "test.csv"
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([rows[0], *[r for r in rows[1:] if r[2] == "neg"]])
    result = runner.invoke(app, ["report", str(run), "--quiet", "--resamples", "200", "--gallery", "0", "--no-leakage-check"])
    assert result.exit_code == 0, result.output
    summary = _strict_json(run / "report.json")
    assert summary["test"]["roc_auc"]["estimate"] is None and summary["test"]["sensitivity"]["estimate"] is None
    assert "ROC-AUC needs both classes" in summary["undefined"]["test"]["roc_auc"]
    html = (run / "report.html").read_text()
    assert "undefined: no example of class &#39;pos&#39;" in html
    assert any("no example of class 'pos'" in w for w in summary["warnings"])


def test_metrics_with_a_missing_class_are_strict_json(tmp_path: Path):
    from transferkit.evaluation import classification_metrics
    from transferkit.json_files import write_json

    m = classification_metrics(np.array([0, 0, 0]), np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]), ["neg", "pos"])
    assert np.isnan(m["roc_auc"]) and np.isnan(m["binary"]["sensitivity"]) and "roc_auc" in m["undefined"]
    back = _strict_json(write_json(tmp_path / "metrics.json", {"test": m, "inf": float("inf"), "np": np.float32("nan")}))
    assert back["test"]["roc_auc"] is None and back["test"]["binary"]["sensitivity"] is None and back["inf"] is None and back["np"] is None
    assert back["test"]["accuracy"] == pytest.approx(2 / 3)
    m3 = classification_metrics(np.array([0, 1, 1]), np.eye(3)[[0, 1, 2]], ["a", "b", "c"])
    assert "roc_auc_ovr_macro" not in m3 and "'c'" in m3["undefined"]["roc_auc_ovr_macro"]


def test_cv_text_run_has_no_report_and_says_so(text_run: Path, tmp_path: Path):
    run = _copy(text_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    cfg["fit_text"]["cv"] = 3
    (run / "config.json").write_text(json.dumps(cfg))
    shutil.rmtree(run / "predictions")
    result = runner.invoke(app, ["report", str(run), "--quiet"])
    assert result.exit_code == 1 and "--cv run" in result.output and "Traceback" not in result.output


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium (`make test` installs it with apt-get)")
def test_text_report_renders_in_headless_chromium(text_run: Path, tmp_path: Path):
    pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    run = _copy(text_run, tmp_path)
    _misclassify_markup_row(run)
    assert runner.invoke(app, ["report", str(run), "--quiet", "--resamples", "200"]).exit_code == 0
    assert_renders_in_browser(run / "report.html", tmp_path / "report.png")
