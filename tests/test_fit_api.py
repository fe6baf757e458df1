"""fit's Python boundary: calibration saved with every model, a config and the arguments beside it, a run folder that
already holds a run, and fit_seeds' arguments."""

from __future__ import annotations

import json

import pytest

import transferkit as tk
from conftest import TINY, make_image_folder
from transferkit.config import DataConfig, FitConfig, HeadConfig
from transferkit.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _fit(data, weights, out=None, **kw):
    return tk.fit(data, model=TINY, weights=str(weights), hidden_dim=0, out=out, progress=False, **kw)


def _with_label_noise(folder):
    """Some training images filed under the other class, so validation holds errors and the temperature has an optimum."""
    import shutil

    for src, dst in (("cat", "dog"), ("dog", "cat")):
        for i, f in enumerate(sorted((folder / "train" / src).glob("*.png"))[:4]):
            shutil.copy(f, folder / "train" / dst / f"swapped_{i}.png")
    return folder


def test_the_saved_model_is_calibrated_with_or_without_a_report(image_folder, tiny_weights, tmp_path):
    image_folder = _with_label_noise(image_folder)
    with_report = _fit(image_folder, tiny_weights, tmp_path / "a", report=True)
    without = _fit(image_folder, tiny_weights, tmp_path / "b", report=False)
    t_report = json.loads((tmp_path / "a" / "model" / "config.json").read_text())["temperature"]
    t_plain = json.loads((tmp_path / "b" / "model" / "config.json").read_text())["temperature"]
    assert t_report != 1.0 and "note" not in without.metrics["calibration"]  # scaling is fitted here: an unscaled save would show
    assert t_plain == pytest.approx(t_report, rel=1e-9)
    assert without.metrics["calibration"]["temperature"] == pytest.approx(t_plain)
    assert without.metrics["calibration"]["val_nll_after"] <= without.metrics["calibration"]["val_nll_before"]
    assert without.model.temperature == pytest.approx(t_plain) and tk.load(tmp_path / "b").temperature == pytest.approx(t_plain)


def test_arguments_beside_a_config_are_refused_not_ignored(image_folder, tiny_weights, tmp_path):
    cfg = FitConfig(data=DataConfig(root=image_folder), backbone=TINY, weights=str(tiny_weights), head=HeadConfig(hidden_dim=0))
    other = make_image_folder(tmp_path / "other", classes=("a", "b", "c"))
    with pytest.raises(ConfigError, match=r"would be ignored: data \('.*other'; the config reads .*\), epochs, model, seed"):
        tk.fit(other, config=cfg, model="resnet18", seed=5, epochs=3, progress=False)
    with pytest.raises(ConfigError, match="would be ignored: lr"):
        tk.fit(config=cfg, lr=0.5, progress=False)
    run = tk.fit(image_folder, config=cfg, out=tmp_path / "ok", progress=False, report=False)  # the same data, run options: fine
    assert run.config == cfg


def test_a_new_run_in_an_old_run_folder_replaces_its_outputs(image_folder, tiny_weights, tmp_path):
    out = tmp_path / "run"
    _fit(image_folder, tiny_weights, out, report=True)
    assert (out / "report.html").is_file() and (out / "report").is_dir()
    (out / "notes.txt").write_text("mine")  # not a run output: stays
    three = make_image_folder(tmp_path / "three", classes=("a", "b", "c"))
    _fit(three, tiny_weights, out, report=False)
    assert not (out / "report.html").exists() and not (out / "report.json").exists() and not (out / "report").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert tk.load(out).classes == ["a", "b", "c"]
    header = (out / "predictions" / "test.csv").read_text().splitlines()[0]
    assert header.endswith("p_a,p_b,p_c")


def test_an_out_path_that_is_a_file_fails_before_any_work(image_folder, tiny_weights, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        tk.fit(image_folder, model="no_such_backbone", out=afile, progress=False)  # before the backbone is even looked up


def test_fit_seeds_needs_seeds_and_carries_each_seed_into_a_config(image_folder, tiny_weights, tmp_path):
    with pytest.raises(ConfigError, match="at least one seed"):
        tk.fit_seeds(image_folder, seeds=[], out=tmp_path / "none")
    with pytest.raises(ConfigError, match="a seed twice"):
        tk.fit_seeds(image_folder, seeds=[1, 1])
    cfg = FitConfig(data=DataConfig(root=image_folder), backbone=TINY, weights=str(tiny_weights), head=HeadConfig(hidden_dim=0))
    res = tk.fit_seeds(image_folder, seeds=[3, 4], config=cfg, progress=False, report=False)
    assert [(r.config.seed, r.config.data.seed, r.config.train.seed) for r in res.runs] == [(3, 3, 3), (4, 4, 4)]


def test_a_validation_split_without_errors_leaves_the_temperature_at_1():
    """With no validation error the NLL falls as T -> 0 and has no optimum: fitting one pushed every later probability to
    exactly 0 or 1 (the optimiser stopped at its bound, or where the NLL underflowed)."""
    import numpy as np

    from transferkit.evaluation.calibration import calibrate_on_validation

    y = np.array([0, 1, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])
    record = calibrate_on_validation(y, proba)
    assert record["temperature"] == 1.0 and "no optimum" in record["note"]
    proba[2] = [0.4, 0.6]  # one error: now the NLL has an optimum
    record = calibrate_on_validation(y, proba)
    assert 0.05 < record["temperature"] != 1.0 and "note" not in record and record["val_nll_after"] < record["val_nll_before"]


def test_the_reports_operating_point_gives_evaluate_the_same_decisions(image_folder, tiny_weights, tmp_path):
    """The report chose its threshold on uncalibrated probabilities, while evaluate and predict apply the temperature:
    passing the reported threshold to evaluate moved the operating point. The report now also gives the calibrated one."""
    from transferkit.report import write_report

    image_folder = _with_label_noise(image_folder)
    run = _fit(image_folder, tiny_weights, tmp_path / "run", report=False, positive="dog")
    assert run.model.temperature != 1.0
    op = write_report(tmp_path / "run", target_sensitivity=0.9, progress=False).summary["operating_point"]
    assert op["threshold_calibrated"] != pytest.approx(op["threshold"])
    got = tk.evaluate(tmp_path / "run", image_folder, threshold=op["threshold_calibrated"], progress=False)["binary"]
    assert got["sensitivity"] == pytest.approx(op["test"]["sensitivity"]["estimate"])
    assert got["specificity"] == pytest.approx(op["test"]["specificity"]["estimate"])


def test_a_folder_of_other_files_is_refused_as_a_run_folder(image_folder, tiny_weights, tmp_path, capsys):
    # its config.json and metrics.json used to be overwritten, and model/ and report/ mixed with the user's files
    out = tmp_path / "mine"
    (out / "report").mkdir(parents=True)
    (out / "config.json").write_text('{"project": "mine"}')
    (out / "report" / "notes.md").write_text("n")
    with pytest.raises(DataError, match=r"holds other files \(config.json, report\) and no transferkit run"):
        tk.fit(image_folder, model=TINY, weights=str(tiny_weights), out=out, progress=False)
    assert (out / "config.json").read_text() == '{"project": "mine"}'
    (out / ".DS_Store").write_text("")  # hidden files alone do not make a folder someone else's
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_text("")
    _fit(image_folder, tiny_weights, empty, report=False)
    assert (empty / "model").is_dir()


def test_fit_seeds_into_a_folder_of_an_earlier_single_run_replaces_that_run(image_folder, tiny_weights, tmp_path, capsys):
    # the old run's model stayed beside seed-*/, and `predict RUN` used it without a word
    out = tmp_path / "run"
    _fit(image_folder, tiny_weights, out, report=False)
    capsys.readouterr()
    tk.fit_seeds(image_folder, seeds=[0, 1], out=out, model=TINY, weights=str(tiny_weights), hidden_dim=0, progress=False, report=False)
    assert not (out / "model").exists() and not (out / "config.json").exists() and not (out / "metrics.json").exists()
    assert (out / "seeds.json").is_file() and (out / "seed-0" / "model").is_dir()
    said = capsys.readouterr()
    assert "its outputs were replaced" in " ".join((said.out + said.err).split())  # said with progress off too


def test_a_new_run_over_an_earlier_seeds_run_leaves_no_stale_seed(image_folder, tiny_weights, tmp_path):
    # a single run beside seed-*/ and seeds.json, or a seed-2/ beside a seeds.json that says [0, 1], used to stay
    out = tmp_path / "run"
    kw = dict(model=TINY, weights=str(tiny_weights), hidden_dim=0, progress=False, report=False)
    tk.fit_seeds(image_folder, seeds=[0, 1, 2], out=out, **kw)
    tk.fit_seeds(image_folder, seeds=[0, 1], out=out, **kw)
    assert sorted(p.name for p in out.glob("seed-*")) == ["seed-0", "seed-1"]
    assert json.loads((out / "seeds.json").read_text())["seeds"] == [0, 1]
    (out / "notes.txt").write_text("mine")
    _fit(image_folder, tiny_weights, out, report=False)
    assert not list(out.glob("seed-*")) and not (out / "seeds.json").exists() and (out / "model").is_dir()
    assert (out / "notes.txt").read_text() == "mine"


def test_subpackages_are_attributes_of_the_package_as_the_readme_uses_them():
    # `tk.training.views_as_augmented` (README) worked only after something else had imported transferkit.training
    import subprocess
    import sys

    code = ("import transferkit as tk, sys; assert 'transferkit.training' not in sys.modules; "
            "print(tk.training.views_as_augmented is tk.views_as_augmented, tk.errors.ConfigError.__name__, "
            "hasattr(tk, 'no_such_thing'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "ConfigError", "False"]


def test_limits_beside_a_fixed_model_are_refused_not_ignored(image_folder, tiny_weights, tmp_path):
    # `fit --model tf_efficientnet_lite2 --max-size-mb 1` trained and saved the 18.6 MB model without a word
    from transferkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"the limits max_size_mb \(--max-size-mb\), max_latency_ms \(--max-latency-ms\) choose among the candidates only"):
        tk.fit(image_folder, model=TINY, weights=str(tiny_weights), max_size_mb=1, max_latency_ms=1, out=tmp_path / "run",
               progress=False, report=False)
    assert not (tmp_path / "run").exists()


def test_fit_seeds_takes_a_count_as_the_cli_does_and_refuses_other_seeds_clearly(image_folder, tiny_weights, tmp_path, monkeypatch):
    """fit_seeds(data, seeds=3) was a TypeError ('int' object is not iterable) while `fit --seeds 3` runs three seeds."""
    import types

    import transferkit.api as api

    with pytest.raises(ConfigError, match="at least one seed: seeds=0"):
        tk.fit_seeds(image_folder, seeds=0)
    with pytest.raises(ConfigError, match=r"seeds must be a list of integer seeds \(e.g. \[0, 1, 2\]\) or a count"):
        tk.fit_seeds(image_folder, seeds="3")
    with pytest.raises(ConfigError, match="seeds must be integers"):
        tk.fit_seeds(image_folder, seeds=[0.5, 1.5])
    with pytest.raises(ConfigError, match="Pass the list alone, or a count with the first seed"):
        tk.fit_seeds(image_folder, seeds=[0, 1], seed=3)
    calls = []

    def fake_fit(data, **kw):
        calls.append(kw["config"].seed if "config" in kw else kw["seed"])
        return types.SimpleNamespace(metrics={"val": {"accuracy": 1.0}, "test": {"accuracy": 1.0}}, run_dir=None)

    monkeypatch.setattr(api, "fit", fake_fit)
    tk.fit_seeds(image_folder, seeds=3)  # as `fit --seeds 3`
    assert calls == [0, 1, 2]
    calls.clear()
    tk.fit_seeds(image_folder, seeds=2, seed=5)  # as `fit --seeds 2 --seed 5`
    assert calls == [5, 6]
    calls.clear()
    cfg = FitConfig(data=DataConfig(root=image_folder, seed=7), backbone=TINY, weights=str(tiny_weights), seed=7)
    tk.fit_seeds(image_folder, seeds=2, config=cfg)  # from the config's seed
    assert calls == [7, 8]
    monkeypatch.undo()
    res = tk.fit_seeds(image_folder, seeds=1, seed=4, model=TINY, weights=str(tiny_weights), hidden_dim=0, progress=False, report=False)
    assert [r.config.seed for r in res.runs] == [4]
