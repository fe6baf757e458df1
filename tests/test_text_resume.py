"""Text fine-tuning checkpoints and resume: an interrupted run, resumed, ends like an uninterrupted one (CPU, same seed)."""

from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

import transferkit.text.fit as fit_mod
import transferkit.training.trainer as trainer_mod
from test_text_model import save_tiny_bert, sentiment_rows
from transferkit.cli.app import app
from transferkit.errors import DataError
from transferkit.text import fit_text, text_finetune_defaults
from transferkit.training import TrainingInterrupted, latest_checkpoint

runner = CliRunner()
# the CLI's `--epochs 3 --batch-size 8 --lr 1e-3` gives the same settings; dropout is on, so RNG replay matters
FT = text_finetune_defaults("finetune").model_copy(update={"epochs": 3, "batch_size": 8, "lr": 1e-3})
CLI_FT = ["--strategy", "finetune", "--epochs", "3", "--batch-size", "8", "--lr", "1e-3", "--max-length", "16", "--device", "cpu",
          "--no-report", "--quiet"]


def _isolated(mp: pytest.MonkeyPatch, root: Path) -> None:  # module fixtures run before conftest's per-test isolation
    for var, sub in (("TRANSFERKIT_CACHE", "tk-cache"), ("TORCH_HOME", "torch-home"), ("HF_HOME", "hf-home")):
        mp.setenv(var, str(root / sub))
    mp.setenv("TRANSFERKIT_OFFLINE", "1")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text-resume")
    model = save_tiny_bert(root / "tiny-bert")
    data = root / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(sentiment_rows(24))
    with pytest.MonkeyPatch.context() as mp:
        _isolated(mp, root)
        # each with an empty embedding cache, as each test's runs start: embeddings computed in other
        # batches (other padding) differ in the last float bits, and so would the fine-tuned weights
        fit_text(data, **_options(model), out=root / "uninterrupted", cache_dir=root / "cache-1")
        fit_text(data, **_options(model), cv=3, out=root / "cv-uninterrupted", cache_dir=root / "cache-cv")
    return {"data": data, "model": model, "run": root / "uninterrupted", "cv_run": root / "cv-uninterrupted"}


def _options(model: Path) -> dict:
    return {"model": str(model), "strategy": "finetune", "finetune": FT, "max_length": 16, "device": "cpu", "report": False, "progress": False}


@contextmanager
def _interrupt_after_epoch(epoch: int, *, at_step: int, after_checkpoints: int = 0):
    """Ctrl-C on training step ``at_step`` (1-based) of the epoch that follows the ``epoch``-th checkpoint
    (counted after ``after_checkpoints`` earlier ones: other folds). Undone on exit."""
    original_ckpt, original_call = trainer_mod.Trainer._checkpoint, trainer_mod._call
    seen = {"checkpoints": 0, "steps": 0}

    def checkpoint(self, raw, optimizer, scheduler, state):
        seen["checkpoints"] += 1
        return original_ckpt(self, raw, optimizer, scheduler, state)

    def call(model, inputs):
        if model.training and seen["checkpoints"] >= after_checkpoints + epoch:
            seen["steps"] += 1
            if seen["steps"] == at_step:
                raise KeyboardInterrupt
        return original_call(model, inputs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer_mod.Trainer, "_checkpoint", checkpoint)
        mp.setattr(trainer_mod, "_call", call)
        yield


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


def _same_run(a: Path, b: Path) -> None:
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    assert ma["test"] == mb["test"] and ma["val"] == mb["val"]
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert len(ma["history"]) >= 2 and strip(ma["history"]) == strip(mb["history"])
    for key in ("best_epoch", "best_val_loss", "initial_val", "probe_val_loss"):
        assert ma["training"][key] == mb["training"][key], key
    _same_weights(a, b)


def test_ctrl_c_mid_epoch_then_resume_equals_the_uninterrupted_run(setup, tmp_path):
    out = tmp_path / "interrupted"
    with _interrupt_after_epoch(1, at_step=2), pytest.raises(TrainingInterrupted, match=f"transferkit fit-text --resume {out}"):
        fit_text(setup["data"], **_options(setup["model"]), out=out)
    assert latest_checkpoint(out / "checkpoints").name == "epoch-0001-step-00001"
    assert not (out / "metrics.json").exists() and json.loads((out / "config.json").read_text())["status"] == "running"
    state_file = latest_checkpoint(out / "checkpoints") / "state.json"
    whole = json.loads(state_file.read_text())
    assert whole["trainer"]["elapsed_s"] > 0  # the seconds before Ctrl-C are on disk
    whole["trainer"]["elapsed_s"] = 1000.0  # far more than the resume takes: the sum below is unmistakable
    state_file.write_text(json.dumps(whole))
    result = fit_text(resume=out, progress=False)
    assert result.config.strategy == "finetune" and result.config.finetune == FT
    assert json.loads((out / "config.json").read_text())["status"] == "done"
    assert not (out / "report.html").exists()  # report=False came back from config.json
    _same_run(setup["run"], out)
    training = json.loads((out / "metrics.json").read_text())["training"]
    assert training["resumed_from"]["checkpoint"] == "epoch-0001-step-00001" and training["resumed_from"]["seconds_before"] == 1000.0
    assert 1000.0 < training["finetune_s"] < 1000.0 + 600  # the seconds before Ctrl-C are counted


def test_cli_fit_text_resume(setup, tmp_path):
    out = tmp_path / "cli-run"
    with _interrupt_after_epoch(1, at_step=1):  # at the epoch boundary: the epoch-1 checkpoint is the one to use
        res = runner.invoke(app, ["fit-text", str(setup["data"]), "--model", str(setup["model"]), *CLI_FT, "--out", str(out)])
    assert res.exit_code == 130 and "Traceback" not in res.output, res.output  # as an interrupted program exits
    assert f"fit-text--resume{out}" in "".join(res.output.split())  # rich may wrap the line
    assert latest_checkpoint(out / "checkpoints").name == "epoch-0001"
    res = runner.invoke(app, ["fit-text", "--resume", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "resuming from" in res.output and "finetuneonreviews.csv" in "".join(res.output.split())
    # the epoch lines score the fine-tuned weights alone; the saved model is the WiSE-FT mix (default 0.5), and says so
    assert "WiSE-FT: the saved model is 0.5 x the weights before fine-tuning + 0.5 x the fine-tuned ones" in " ".join(res.output.split())
    _same_run(setup["run"], out)


def test_cv_resume_skips_the_finished_folds(setup, tmp_path, monkeypatch):
    out = tmp_path / "cv"
    # fold 1 always runs its 3 epochs (early stopping needs 2 stale ones): Ctrl-C in fold 2's epoch 2
    with _interrupt_after_epoch(1, at_step=2, after_checkpoints=3), pytest.raises(TrainingInterrupted):
        fit_text(setup["data"], **_options(setup["model"]), cv=3, out=out)
    fold1 = out / "checkpoints" / "fold-1"
    assert [p.name for p in fold1.iterdir()] == ["fold.json"]  # a finished fold keeps its result, not its checkpoints
    assert latest_checkpoint(out / "checkpoints" / "fold-2").name == "epoch-0001-step-00001"
    trained = []
    original = fit_mod.train_text_classifier

    def spy(*args, **kwargs):
        trained.append(kwargs["checkpoint_dir"].name)
        return original(*args, **kwargs)

    monkeypatch.setattr(fit_mod, "train_text_classifier", spy)
    fit_text(resume=out, progress=False)
    assert trained == ["fold-2", "fold-3", "final"]
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (setup["cv_run"], out))
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc"):
        assert ma["cv"][key]["values"] == mb["cv"][key]["values"], key
    assert [f["test"] for f in ma["folds"]] == [f["test"] for f in mb["folds"]]
    assert ma["final_model"]["val"] == mb["final_model"]["val"]
    _same_weights(setup["cv_run"], out)


def test_resuming_a_finished_text_run_refuses(setup):
    from transferkit.errors import FinishedRunError

    with pytest.raises(FinishedRunError, match="has finished already.*transferkit evaluate-text") as exc:
        fit_text(resume=setup["run"], progress=False)
    # a --no-report run (report=False) was said to have been "stopped while writing" its report
    assert "report was not written" not in str(exc.value) and "stopped while writing" not in str(exc.value)


def test_a_finished_run_without_its_report_file_is_said_only_when_it_was_to_write_one(setup, tmp_path):
    import shutil

    from transferkit.errors import FinishedRunError

    run = tmp_path / "run"
    shutil.copytree(setup["run"], run)
    saved = json.loads((run / "config.json").read_text())
    saved["run"]["report"] = True  # a run that was to write report.html and has none: stopped while writing it
    (run / "config.json").write_text(json.dumps(saved))
    with pytest.raises(FinishedRunError, match="its report was not written: the run was stopped while writing it"):
        fit_text(resume=run, progress=False)


def test_bad_resume_folders_are_clear_errors(setup, tmp_path):
    with pytest.raises(DataError, match="cannot resume .*no readable config.json"):
        fit_text(resume=tmp_path / "nothing-here")
    lp = tmp_path / "lp"
    fit_text(setup["data"], model=str(setup["model"]), strategy="linear-probe", max_length=16, device="cpu", report=False, progress=False, out=lp)
    with pytest.raises(DataError, match="has finished already"):
        fit_text(resume=lp)
    saved = json.loads((lp / "config.json").read_text())
    (lp / "config.json").write_text(json.dumps({**saved, "status": "running"}))  # as if it had stopped before the end
    with pytest.raises(DataError, match="linear-probe run, which writes no checkpoints"):
        fit_text(resume=lp)
    image = tmp_path / "image-run"
    image.mkdir()
    (image / "config.json").write_text(json.dumps({"status": "running", "fit": {}}))
    with pytest.raises(DataError, match="it is an image run; use `transferkit fit --resume"):
        fit_text(resume=image)
    res = runner.invoke(app, ["fit-text", "--resume", str(tmp_path / "nothing-here")])
    assert res.exit_code == 1 and "cannot resume" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["fit-text"])
    assert res.exit_code == 1 and "missing DATA file (or --resume RUN)" in res.output


def test_a_resumed_run_keeps_the_fine_tuning_defaults_it_started_with(tmp_path):
    """Defaults change between versions (text WiSE-FT: alpha 1, then 0.5). A run records the settings it starts under,
    and a run written before runs recorded them resumes with alpha 1, as every earlier version fine-tuned text."""
    from transferkit.text.fit import TextFitConfig, _resume_config

    run = tmp_path / "run"
    run.mkdir()
    saved = {"status": "running", "fit_text": json.loads(TextFitConfig(data=tmp_path / "x.csv", strategy="finetune").model_dump_json()),
             "run": {}}
    (run / "config.json").write_text(json.dumps(saved))
    config, _ = _resume_config(run)
    assert config.finetune_config().wise_alpha == 1.0
    assert config.finetune_config().lr == text_finetune_defaults("finetune").lr  # only the mix is pinned to the old default
    started = text_finetune_defaults("finetune").model_copy(update={"wise_alpha": 0.25, "epochs": 2})
    (run / "config.json").write_text(json.dumps({**saved, "finetune_effective": json.loads(started.model_dump_json())}))
    config, _ = _resume_config(run)
    assert config.finetune_config() == started


def test_a_new_run_records_its_effective_fine_tuning_settings_while_running(setup, tmp_path, monkeypatch):
    seen = {}
    real = fit_mod.finetune_text_model

    def peek(*args, **kwargs):  # while stage two runs, config.json says "running"
        seen.update(json.loads((tmp_path / "run" / "config.json").read_text()))
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_mod, "finetune_text_model", peek)
    opts = {**_options(setup["model"]), "finetune": None}
    fit_text(setup["data"], **opts, out=tmp_path / "run", cache_dir=tmp_path / "cache")
    assert seen["status"] == "running"
    assert seen["finetune_effective"] == json.loads(text_finetune_defaults("finetune").model_dump_json())


def test_options_beside_a_text_resume_are_refused(setup, tmp_path):
    """Every option comes from RUN/config.json on resume: an option given beside it was silently ignored."""
    from transferkit.errors import ConfigError

    with pytest.raises(ConfigError, match="would be ignored: max_length, seed"):
        fit_text(resume=tmp_path / "any", max_length=8, seed=3)
    with pytest.raises(ConfigError, match=r"would be ignored: data"):
        fit_text(setup["data"], resume=tmp_path / "any")
    res = runner.invoke(app, ["fit-text", "--resume", str(tmp_path / "any"), "--epochs", "4", "--lr", "0.01"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "--epochs, --lr would be ignored" in " ".join(res.output.split())
