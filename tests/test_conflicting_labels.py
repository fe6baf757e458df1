"""The same image under two class folders: a conflicting label, recorded by every fit and shown by its report."""

from __future__ import annotations

import json
import os
import shutil

from conftest import TINY, make_image_folder


def test_a_fit_records_conflicting_labels_and_its_report_warns(tmp_path, torch_single_thread):
    """Identical content under 'healthy' (train) and 'spot' (test) was a plain leakage line, and identical content under
    two classes of train no line at all; the fit now records both (config.json, metrics.json) and the report warns."""
    from transferkit.api import fit

    os.environ.setdefault("TRANSFERKIT_OFFLINE", "1")
    root = make_image_folder(tmp_path / "data", classes=("healthy", "spot"), per_class=8, splits=("train", "val", "test"))
    healthy = sorted((root / "train" / "healthy").glob("*.png"))
    shutil.copy(healthy[0], root / "train" / "spot" / "also_spot.png")
    shutil.copy(healthy[1], root / "test" / "spot" / "test_spot.png")
    out = tmp_path / "run"
    result = fit(root, model=TINY, weights="none", out=out, hidden_dim=0, progress=False, cache_dir=tmp_path / "cache")
    assert result.splits.summary()["num_conflicting_labels"] == 2
    assert result.metrics["data"]["num_conflicting_labels"] == 2
    data = json.loads((out / "config.json").read_text())["data"]
    assert [sorted(c["classes"]) for c in data["conflicting_labels"]] == [["healthy", "spot"]] * 2
    assert [d["conflicting"] for d in data["cross_split_duplicates"]] == [True]
    warnings = result.metrics["report"]["warnings"]
    assert any(w.startswith("conflicting labels: 2 image(s) are filed under more than one class") and "relabel" in w
               and "also_spot.png (train, class 'spot')" in w for w in warnings), warnings
    html = " ".join((out / "report.html").read_text().split())
    assert "<b>Conflicting labels</b>: 2 image(s) are filed under more than one class" in html
    assert "test_spot.png (test, spot)" in html and "labels differ (healthy / spot)" in html


def test_the_cli_prints_conflicting_labels_without_a_report(tmp_path, torch_single_thread):
    from typer.testing import CliRunner

    from transferkit.cli.app import app

    root = make_image_folder(tmp_path / "data", classes=("healthy", "spot"), per_class=8, splits=("train", "test"))
    shutil.copy(sorted((root / "train" / "healthy").glob("*.png"))[0], root / "train" / "spot" / "also_spot.png")
    res = CliRunner().invoke(app, ["fit", str(root), "--model", TINY, "--weights", "none", "--hidden-dim", "0", "--no-report", "-q",
                                   "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")],
                             env={"COLUMNS": "250", "NO_COLOR": "1", "TRANSFERKIT_OFFLINE": "1"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "conflicting labels:" in text and "also_spot.png" in text and "relabel" in text
