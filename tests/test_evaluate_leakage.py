"""`evaluate` leaves out the images a run trained on (RUN/splits.json, by content hash) and says so."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

import transferkit as tk
from conftest import TINY, make_image_folder
from transferkit.cli.app import app
from transferkit.errors import DataError


@pytest.fixture
def flat_run(tmp_path, tiny_weights, torch_single_thread):
    """A run fitted on a folder of class sub-folders only: its test split is carved from the same folder."""
    data = make_image_folder(tmp_path / "flat", per_class=15, splits=("train",)) / "train"
    out = tmp_path / "run"
    result = tk.fit(data, model=TINY, weights=str(tiny_weights), out=out, hidden_dim=0, progress=False, report=False)
    return data, out, result


def test_evaluating_on_the_training_folder_scores_the_held_out_images_only(flat_run):
    data, out, result = flat_run
    record = json.loads((out / "splits.json").read_text())
    n = {s: len(record["splits"][s]) for s in ("train", "val", "test")}
    assert sum(n.values()) == 30 and n["test"] > 0

    metrics = tk.evaluate(out, data, progress=False)
    assert metrics["excluded_training_images"] == n["train"] + n["val"]
    assert metrics["num_samples"] == n["test"]
    assert metrics["accuracy"] == pytest.approx(result.test["accuracy"])  # the run's own test split, nothing else

    everything = tk.evaluate(out / "model", data, progress=False, include_training_images=True)  # model/ finds RUN/splits.json too
    assert everything["num_samples"] == 30 and everything["excluded_training_images"] == 0


def test_copies_of_training_images_are_recognised_by_content(flat_run, tmp_path):
    data, out, _ = flat_run
    record = json.loads((out / "splits.json").read_text())
    other = tmp_path / "other"
    copied = record["splits"]["train"][:3]
    for entry in copied:
        dest = other / entry["path"].split("/")[0] / ("renamed_" + entry["path"].split("/")[-1])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data / entry["path"], dest)
    held_out = record["splits"]["test"][0]
    dest = other / held_out["path"].split("/")[0] / "renamed_held_out.png"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(data / held_out["path"], dest)
    metrics = tk.evaluate(out, other, progress=False)
    assert metrics["excluded_training_images"] == 3  # the copies, under new names
    assert metrics["num_samples"] == 1  # the held-out image is scored


def test_a_folder_of_training_images_only_is_a_clear_error(flat_run):
    data, out, _ = flat_run
    with pytest.raises(DataError, match="was used to train this run"):
        # a root with train/ only has no test/ to fall back on: build one from the run's training images
        tk.evaluate(out, _only_training(data, out), progress=False)
    res = CliRunner().invoke(app, ["evaluate", str(out), str(_only_training(data, out)), "-q"])
    assert res.exit_code != 0 and "include-training-images" in res.output and "Traceback" not in res.output


def _only_training(data, out):
    record = json.loads((out / "splits.json").read_text())
    dest = out.parent / "only-train"
    for entry in record["splits"]["train"]:
        target = dest / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy(data / entry["path"], target)
    return dest


def test_cli_reports_how_many_images_were_left_out(flat_run):
    data, out, _ = flat_run
    res = CliRunner().invoke(app, ["evaluate", str(out), str(data), "-q"])
    assert res.exit_code == 0, res.output
    assert "left out" in res.output and "--include-training-images" in res.output


def test_a_damaged_splits_record_is_an_error_not_a_silent_score_on_training_images(flat_run):
    # it used to read as "no record": evaluate then scored the run's training images without a word
    data, out, _ = flat_run
    path = out / "splits.json"
    path.write_text(path.read_text()[:2000])
    with pytest.raises(DataError, match=r"splits.json .* cannot be read .*--include-training-images"):
        tk.evaluate(out, data, progress=False)
    res = CliRunner().invoke(app, ["evaluate", str(out), str(data), "-q"])
    assert res.exit_code == 1 and "cannot be read" in res.output and "Traceback" not in res.output
    assert tk.evaluate(out, data, progress=False, include_training_images=True)["num_samples"] == 30


def test_a_loaded_model_leaves_out_its_training_images_and_a_missing_record_is_said(flat_run):
    # the README's pattern, model = tk.load(RUN) then evaluate, scored the training images without a word
    data, out, _ = flat_run
    by_path = tk.evaluate(out, data, progress=False)
    by_object = tk.evaluate(tk.load(out), data, progress=False)
    assert by_object["excluded_training_images"] == by_path["excluded_training_images"] > 0
    assert by_object["accuracy"] == by_path["accuracy"] and "training_record" not in by_path
    (out / "splits.json").unlink()  # deleted, or a run from before the record: nothing to leave out, and it is said
    m = tk.evaluate(out, data, progress=False)
    assert m["excluded_training_images"] == 0 and "has no splits.json" in m["training_record"]
    res = CliRunner().invoke(app, ["evaluate", str(out), str(data), "-q"])
    assert res.exit_code == 0 and "cannot be left out" in " ".join(res.output.split())


def test_the_model_fit_returns_leaves_out_its_training_images_in_memory_too(tmp_path, tiny_weights, torch_single_thread):
    # evaluate(result.model, ...) scored the training images (accuracy 1.0, none excluded), while the same call on the
    # saved run left them out: the in-memory model had no record
    data = make_image_folder(tmp_path / "flat", per_class=15, splits=("train",)) / "train"
    for out in (None, tmp_path / "run"):
        result = tk.fit(data, model=TINY, weights=str(tiny_weights), out=out, hidden_dim=0, progress=False, report=False)
        n_seen = len(result.splits.train) + len(result.splits.val)
        metrics = tk.evaluate(result.model, data, progress=False)
        assert metrics["excluded_training_images"] == n_seen and metrics["num_samples"] == 30 - n_seen
        assert tk.evaluate(result.model, data, progress=False, include_training_images=True)["num_samples"] == 30
    train_only = tmp_path / "train_only"
    for r in result.splits.train:
        dest = train_only / result.splits.classes[r.label] / r.path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(r.path, dest)
    with pytest.raises(DataError, match="was used to train this run"):
        tk.evaluate(result.model, train_only, progress=False)
