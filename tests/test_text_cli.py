"""The text commands: fit-text, evaluate-text, predict-text (arguments, file, stdin), one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_text_model import save_tiny_bert, sentiment_rows
from transferkit.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    model = save_tiny_bert(root / "tiny-bert")
    data = root / "reviews.tsv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["text", "label"])
        w.writerows(sentiment_rows(25, seed=1))
    run = root / "run"
    res = runner.invoke(app, ["fit-text", str(data), "--model", str(model), "--max-length", "16", "--out", str(run), "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    return data, run, model


def test_fit_text_writes_run_and_prints_metrics(fitted):
    data, run, _ = fitted
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.8
    assert (run / "model" / "model.safetensors").is_file()
    res = runner.invoke(app, ["evaluate-text", str(run), str(data), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["num_samples"] == 50


def test_predict_text_from_arguments_file_and_stdin(fitted, tmp_path: Path):
    _, run, _ = fitted
    res = runner.invoke(app, ["predict-text", str(run), "great phone", "awful battery", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [r["label"] for r in out] == ["pos", "neg"]
    f = tmp_path / "texts.txt"
    f.write_text("love it\n\nhate it\n")
    out = json.loads(runner.invoke(app, ["predict-text", str(run), "--file", str(f), "--json"]).stdout)
    assert [r["text"] for r in out] == ["love it", "hate it"]
    out = json.loads(runner.invoke(app, ["predict-text", str(run), "-", "--json"], input="excellent case\nterrible sound\n").stdout)
    assert [r["label"] for r in out] == ["pos", "neg"]


def test_bad_inputs_fail_with_one_line(fitted, tmp_path: Path):
    data, run, model = fitted
    one_class = tmp_path / "one.csv"
    one_class.write_text("text,label\ngood,1\ngreat,1\n")
    res = runner.invoke(app, ["fit-text", str(one_class), "--model", str(model), "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 1 and "only the class '1'" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["fit-text", str(data), "--model", str(model), "--text-col", "nope", "--quiet"])
    assert res.exit_code == 1 and "text column 'nope' is not in" in res.output
    res = runner.invoke(app, ["fit-text", str(data), "--model", "roberta-base", "--quiet"])
    assert res.exit_code == 1 and "To fix it" in res.output
    res = runner.invoke(app, ["predict-text", str(tmp_path), "good"])
    assert res.exit_code == 1 and "error" in res.output
    res = runner.invoke(app, ["predict-text", str(run), "   ", "--json"])
    assert res.exit_code == 1 and "empty text" in res.stdout
