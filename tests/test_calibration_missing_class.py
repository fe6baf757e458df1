"""A fit whose validation carve holds one class only keeps the temperature at 1, and its record and report say why."""

from __future__ import annotations

import json
import os

import numpy as np

from conftest import TINY, write_class_image


def test_an_imbalanced_fit_whose_validation_lacks_the_minority_keeps_temperature_1_and_warns(tmp_path, torch_single_thread):
    from transferkit.api import fit

    os.environ.setdefault("TRANSFERKIT_OFFLINE", "1")
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(40):
        write_class_image(root / "healthy" / f"h{i}.png", 0, rng)
    for i in range(3):  # 40:3: the stratified 15 % validation carve gets no 'spot' image
        write_class_image(root / "spot" / f"s{i}.png", 1, rng)
    out = tmp_path / "run"
    result = fit(root, model=TINY, weights="none", out=out, hidden_dim=0, progress=False, cache_dir=tmp_path / "cache")
    assert result.metrics["data"]["counts"]["val"]["spot"] == 0
    record = result.metrics["calibration"]
    assert record["temperature"] == 1.0 and "holds no example of class 'spot'" in record["note"] and "val/ folder" in record["note"]
    assert json.loads((out / "model" / "config.json").read_text()).get("temperature", 1.0) == 1.0
    # the report shows it as it shows a validation split without errors: a warning, which the CLI prints after a fit
    assert any(w.startswith("temperature scaling not fitted: the validation split holds no example of class")
               for w in result.metrics["report"]["warnings"]), result.metrics["report"]["warnings"]


def test_the_cli_says_so_without_a_report(tmp_path, torch_single_thread):
    from typer.testing import CliRunner

    from transferkit.cli.app import app

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for i in range(40):
        write_class_image(root / "healthy" / f"h{i}.png", 0, rng)
    for i in range(3):
        write_class_image(root / "spot" / f"s{i}.png", 1, rng)
    res = CliRunner().invoke(app, ["fit", str(root), "--model", TINY, "--weights", "none", "--hidden-dim", "0", "--no-report", "-q",
                                   "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")],
                             env={"COLUMNS": "250", "NO_COLOR": "1", "TRANSFERKIT_OFFLINE": "1"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "temperature scaling not fitted: the validation split holds no example of class 'spot'" in text
