"""`transferkit report RUN`: the HTML report of a run, end to end on a tiny model.

The browser test renders the report in Debian's chromium (driven by Playwright), checks that
every image decoded and that the console stayed clean, and saves a screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, make_image_folder
from typer.testing import CliRunner

from transferkit.cli.app import app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
runner = CliRunner()


def _fit_tiny_run(root: Path, out: Path, cache: Path) -> Path:
    from transferkit.api import fit

    # a hidden head, whose epochs give the training-curve plot (on these easy images every head scores 1.0, and "auto"
    # keeps the simpler one on such a tie: a logistic regression without epochs); the tests make the report
    fit(root, model=TINY, weights="none", out=out, progress=False, cache_dir=cache, report=False, hidden_dim=256)
    return out


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("report-binary")
    os.environ.setdefault("TRANSFERKIT_OFFLINE", "1")
    root = make_image_folder(base / "data", classes=("normal", "sick"), per_class=16, splits=("train", "val", "test"))
    return _fit_tiny_run(root, base / "run", base / "cache")


def _report(run: Path, *args: str):
    return runner.invoke(app, ["report", str(run), "--quiet", "--resamples", "200", *args])


@pytest.fixture(scope="module")
def binary_report(binary_run, tmp_path_factory):
    """A copy of the run, reported once (predictions removed first: recomputed from model + data root)."""
    run = tmp_path_factory.mktemp("report-copy") / "run"
    shutil.copytree(binary_run, run)
    shutil.rmtree(run / "predictions", ignore_errors=True)
    return run, _report(run, "--target-sensitivity", "0.9", "--gallery", "3")


def test_report_writes_self_contained_html_and_calibrates_model(binary_report):
    run, result = binary_report
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    # self-contained: no external resources, every image is an embedded PNG
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", html)
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(imgs) >= 5 and all(s.startswith("data:image/png;base64,") for s in imgs)
    for section in ("Data", "Model card", "bootstrap intervals", "Operating point", "Calibration", "Training curves", "Misclassified"):
        assert section in html
    from transferkit import load

    width = load(run).backbone.num_features  # the default features: three stages
    assert f"{width}: the pooled output of the last 3 stages, concatenated" in html and width > 256
    # numbers: report.json carries the intervals, the operating point and the temperature
    summary = json.loads((run / "report.json").read_text())
    for name in ("accuracy", "roc_auc", "sensitivity", "specificity"):
        iv = summary["test"][name]
        assert iv["low"] <= iv["estimate"] <= iv["high"]
    op = summary["operating_point"]
    assert op["met_on_val"] and op["val_sensitivity"] >= 0.9
    cal = summary["calibration"]
    assert cal["val_nll_after"] <= cal["val_nll_before"] + 1e-12
    # the temperature is saved in the model folder and predict applies it
    import transferkit as tk

    model = tk.load(run)
    assert model.temperature == pytest.approx(cal["temperature"])
    assert (run / "predictions" / "test.csv").is_file() and (run / "predictions" / "val.csv").is_file()
    for png in ("confusion_matrix", "roc", "precision_recall", "reliability", "training_curves"):
        assert (run / "report" / f"{png}.png").stat().st_size > 1000
    assert "report.html" in result.output


def test_predict_divides_logits_by_temperature(binary_run, tmp_path):
    import transferkit as tk
    from transferkit.evaluation.calibration import save_temperature

    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    image = next((Path(json.loads((run / "config.json").read_text())["data"]["root"]) / "test").rglob("*.png"))
    p1 = tk.load(run).predict([image])[0]["probabilities"]
    save_temperature(run, 4.0)
    p4 = tk.load(run).predict([image])[0]["probabilities"]
    l1, l4 = np.log(list(p1.values())), np.log(list(p4.values()))
    # softmax(z / 4): log-probability differences shrink four-fold, arg-max unchanged
    assert (l4[1] - l4[0]) == pytest.approx((l1[1] - l1[0]) / 4, rel=1e-3)
    assert max(p4, key=p4.get) == max(p1, key=p1.get)


def test_report_multiclass_and_clear_errors(tmp_path):
    root = make_image_folder(tmp_path / "data", classes=("a", "b", "c"), per_class=10, splits=("train", "val", "test"))
    run = _fit_tiny_run(root, tmp_path / "run", tmp_path / "cache")
    result = _report(run, "--target-sensitivity", "0.9")
    assert result.exit_code == 1 and "binary task" in result.output and "Traceback" not in result.output
    result = _report(run, "--gallery", "0", "--no-calibrate", "--no-leakage-check")
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "report.json").read_text())
    assert "roc_auc_ovr_macro" in summary["test"] and summary["operating_point"] is None
    assert summary["leakage"]["checked"] is False and summary["num_test_errors"] >= 0
    assert "temperature" not in json.loads((run / "model" / "config.json").read_text()) or \
        json.loads((run / "model" / "config.json").read_text())["temperature"] == 1.0
    result = _report(tmp_path / "data")
    assert result.exit_code == 1 and "not a run folder" in result.output


def _browser_check(html: Path, screenshot: Path) -> tuple[list[dict], list[str]]:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html.resolve().as_uri(), wait_until="load")
        images = page.evaluate("""() => Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,
                                                                            w: i.naturalWidth, h: i.naturalHeight}))""")
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return images, errors


def assert_renders_in_browser(html: Path, screenshot: Path) -> None:
    """The report opens in headless Chromium with all its images (at least 5) loaded and no console errors."""
    images, errors = _browser_check(html, screenshot)
    assert len(images) >= 5
    broken = [i for i in images if not i["complete"] or i["w"] == 0]
    assert not broken, broken
    assert errors == []
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium (`make test` installs it with apt-get)")
def test_report_renders_in_headless_chromium(binary_report, tmp_path):
    pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    run, result = binary_report
    assert result.exit_code == 0, result.output
    assert_renders_in_browser(run / "report.html", tmp_path / "report.png")


def test_saved_predictions_round_trip(tmp_path):
    from transferkit.errors import TransferKitError
    from transferkit.evaluation import load_predictions, save_predictions

    proba = np.array([[0.1, 0.9], [0.7, 0.3], [1e-20, 1.0]])
    path = save_predictions(tmp_path, "test", ["a.png", "b,with comma.png", "c.png"], [1, 0, 1], proba, classes=["neg", "pos"])
    assert path == tmp_path / "predictions" / "test.csv"
    back = load_predictions(tmp_path, "test")
    assert back.paths[1] == "b,with comma.png" and back.classes == ["neg", "pos"]
    assert (back.y_true == [1, 0, 1]).all() and np.array_equal(back.proba, proba)  # repr floats: exact
    with pytest.raises(TransferKitError, match="expected N paths"):
        save_predictions(tmp_path, "val", ["a.png"], [0, 1], proba[:2])


def test_saved_predictions_are_utf8_whatever_the_locale(tmp_path):
    # under a non-UTF-8 locale (LC_ALL=C, Windows cp1252) fit-text stopped at its very end: 'ascii' codec can't encode
    import subprocess
    import sys

    code = (r"import sys, numpy as np; from transferkit.evaluation import load_predictions, save_predictions; "
            r"save_predictions(sys.argv[1], 'test', ['f\u00fc\u00df.png'], [0], np.array([[0.8, 0.2]]), "
            r"classes=['\u5065\u5eb7', 'sick'], texts=['\u3053\u3093\u306b\u3061\u306f \U0001F33F']); "
            r"p = load_predictions(sys.argv[1], 'test'); print(ascii((p.paths, p.classes)))")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ascii((["f\u00fc\u00df.png"], ["\u5065\u5eb7", "sick"]))
    assert "\u3053\u3093\u306b\u3061\u306f" in (tmp_path / "predictions" / "test.csv").read_text(encoding="utf-8")


def test_training_curves_put_the_fine_tuning_stage_after_the_head_stage():
    from transferkit.report.plots import training_curves_figure

    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e} for e in (1, 2, 3)]
    history += [{"stage": "finetune", "epoch": e, "train_loss": 0.2 / e, "val_loss": 0.3 / e, "lr": 1e-4} for e in (1, 2)]
    fig = training_curves_figure(history)
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines() if not ln.get_label().startswith("_")}
    assert list(lines["val_loss (finetune)"].get_xdata()) == [4, 5]  # continues after the 3 head epochs
    assert list(lines["val_loss (head)"].get_xdata()) == [1, 2, 3]
    assert "lr" not in " ".join(lines)


def _candidate(label, status, rank=None, acc=None, latency=None, front=False, control=False, reason=None):
    return {"name": label.split(":")[0], "label": label, "status": status, "rank": rank, "is_control": control,
            "predicted_accuracy": acc, "predicted_ci95": [acc - 0.05, acc + 0.03] if acc is not None else None,
            "on_pareto_front": front, "cost": {"latency_ms_p50": latency, "num_params": 2_200_000} if latency else {},
            "explanation": f"Rank {rank}: because." if rank else "", "reason": reason}


def test_report_shows_the_ranking_that_chose_the_backbone(binary_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    assert _report(run).exit_code == 0
    assert "did not come from `--model auto`" in (run / "report.html").read_text()  # no ranking.json: said so
    ranking = {"best": "fast_net", "rule": "predicted accuracy, then evidence.", "notes": [], "device": "cpu", "strategy": "finetune",
               "evidence_scores": ["logme", "published_quality"], "candidates": [
        _candidate("fast_net", "ranked", 1, 0.93, 12.0, front=True),
        _candidate("slow_net", "ranked", 2, 0.91, 80.0),
        _candidate("fast_net:none", "ranked", 3, 0.60, 12.5, control=True),
        _candidate("vgg19", "unavailable", reason="no pretrained weights for 'vgg19' on this machine"),
    ]}
    (run / "ranking.json").write_text(json.dumps(ranking))
    result = _report(run)
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    section = html[html.index('id="selection"'):html.index('id="metrics"')]
    assert "fast_net" in section and "vgg19" in section and "no pretrained weights for &#39;vgg19&#39;" in section
    assert "93.0 % [88.0, 96.0]" in section and 'alt="model selection chart"' in section
    assert "ranked for strategy <code>finetune</code>, ties broken by logme, published_quality" in section
    assert (run / "report" / "ranking.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run / "report.json").read_text())["selection"] == {"best": "fast_net", "num_candidates": 4}


def test_report_warns_about_subjects_shared_between_splits(binary_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"]["groups"] = {"pattern": r"(patient\d+)_", "num_subjects": {"train": 10, "val": 3, "test": 5}, "num_unmatched": 1,
                             "subjects_in_two_splits": [{"subject": "patient7", "splits": ["train", "test"]}],
                             "num_subjects_in_two_splits": 1}
    (run / "config.json").write_text(json.dumps(cfg))
    result = _report(run, "--no-leakage-check")
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    assert "leakage: 1 subject(s) have images in two splits, e.g. patient7 (train/test)" in html
    assert "train 10, val 3, test 5; 1 file name(s) matched no subject" in html


def test_the_reports_numbers_at_a_saved_threshold_are_those_evaluate_gives(binary_run, tmp_path):
    """predict and evaluate compare the saved threshold with temperature-scaled probabilities; the report applied it to the
    uncalibrated ones, so at any threshold but 0.5 its test numbers differed from evaluate's on the same images."""
    import transferkit as tk

    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    cfg_path = run / "model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["temperature"], cfg["threshold"] = 3.0, 0.7
    cfg_path.write_text(json.dumps(cfg))
    res = _report(run, "--no-calibrate", "--target-sensitivity", "0.9")
    assert res.exit_code == 0, res.output
    summary = json.loads((run / "report.json").read_text())
    got = tk.evaluate(run, json.loads((run / "splits.json").read_text())["root"], progress=False)
    assert got["num_samples"] == summary["num_test"]
    for name in ("accuracy", "sensitivity", "specificity"):
        ours = got.get(name, got["binary"].get(name))
        assert summary["test"][name]["estimate"] == pytest.approx(ours), name
    # --no-calibrate keeps the saved temperature (3.0): the operating point's calibrated threshold is on that scale
    op = summary["operating_point"]
    again = tk.evaluate(run, json.loads((run / "splits.json").read_text())["root"], threshold=op["threshold_calibrated"], progress=False)
    assert again["binary"]["sensitivity"] == pytest.approx(op["test"]["sensitivity"]["estimate"])


def test_class_names_with_dollar_signs_are_drawn_as_written(tmp_path):
    root = make_image_folder(tmp_path / "data", classes=("price $5", r"$\foo$"), per_class=8)
    run = _fit_tiny_run(root, tmp_path / "run", tmp_path / "cache")
    res = _report(run, "--gallery", "0")
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert "price $5" in (run / "report.html").read_text()


def test_a_gallery_whose_images_are_gone_says_so_instead_of_grey_squares(binary_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    import csv

    pred = run / "predictions" / "test.csv"
    rows = list(csv.reader(pred.read_text().splitlines()))
    classes = ["normal", "sick"]
    for i, row in enumerate(rows[1:4], start=1):  # three rows made errors (their truth flipped), all with a path that is gone
        row[1] = str(1 - int(row[1]))
        row[2] = classes[int(row[1])]
    for i, row in enumerate(rows[1:], start=1):
        row[0] = f"/nowhere/{i}.png"
    with pred.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    res = _report(run, "--gallery", "4", "--no-leakage-check")
    assert res.exit_code == 0, res.output
    summary = json.loads((run / "report.json").read_text())
    html = " ".join((run / "report.html").read_text().split())
    assert summary["num_test_errors"] >= 3
    assert "could not be read here" in html and summary["gallery"] == []
    assert not list((run / "report").rglob("gallery*/*.png")) and not list((run / "report").glob("gallery-*.png"))


def test_report_names_look_alike_images_filed_under_different_classes(tmp_path):
    # a re-saved, resized copy under the other class: byte-identical checks (conflicting labels) cannot see it
    from PIL import Image

    root = make_image_folder(tmp_path / "data", classes=("normal", "sick"), per_class=8, splits=("train", "val", "test"))
    Image.open(root / "train/normal/train_normal_0.png").resize((90, 90)).save(root / "train/sick/relabelled.jpg", quality=85)
    run = _fit_tiny_run(root, tmp_path / "run", tmp_path / "cache")
    result = _report(run, "--gallery", "0", "--no-calibrate")
    assert result.exit_code == 0, result.output
    found = json.loads((run / "report.json").read_text())["leakage"]["look_alike_conflicts"]
    assert {(Path(c["a"]).name, c["a_class"], Path(c["b"]).name, c["b_class"]) for c in found} >= {
        ("train_normal_0.png", "normal", "relabelled.jpg", "sick")}
    assert all(c["a_class"] != c["b_class"] for c in found)
    html = " ".join((run / "report.html").read_text().split())
    assert "Look-alike images under different classes" in html and "relabelled.jpg (train, sick)" in html


def test_class_names_no_font_can_draw_are_numbered_in_the_plots_with_a_key(tmp_path, recwarn):
    # they were drawn as empty boxes (matplotlib: "Glyph ... missing from font(s) DejaVu Sans"), so the confusion
    # matrix of a Japanese data set could not be read
    from transferkit.report.plots import _drawable

    root = make_image_folder(tmp_path / "data", classes=("健康", "病気"), per_class=8, splits=("train", "val", "test"))
    run = _fit_tiny_run(root, tmp_path / "run", tmp_path / "cache")
    result = _report(run, "--gallery", "0", "--no-calibrate", "--no-leakage-check")
    assert result.exit_code == 0, result.output
    assert not [w for w in recwarn if "missing from font" in str(w.message)]
    html = " ".join((run / "report.html").read_text().split())
    if _drawable("健康病気"):  # a machine with a CJK font draws the names themselves
        assert "cannot draw some class names" not in html
    else:
        assert "so the plots number them: class 0 = 健康; class 1 = 病気." in html


def test_the_report_summary_does_not_call_an_unfitted_temperature_fitted(binary_run, tmp_path):
    # it printed "warning: temperature scaling not fitted ... stays 1" and then "temperature 1.000 (fitted on validation)"
    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    result = runner.invoke(app, ["report", str(run), "--resamples", "200", "--gallery", "0", "--no-leakage-check"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    summary = json.loads((run / "report.json").read_text())["calibration"]
    if summary["fitted"]:
        assert "(fitted on validation)" in out
    else:  # the tiny run's validation split is classified without an error: no temperature can be fitted
        assert "not fitted" in out and "(fitted on validation)" not in out
