"""Resume: a run that crashed or was interrupted ends exactly like an uninterrupted one (CPU, same seed)."""

import json

import pytest
from safetensors.torch import load_file

import transferkit as tk
import transferkit.training.trainer as trainer_mod
from conftest import TINY, crash_after_epoch
from transferkit.config import DataConfig, FinetuneConfig, FitConfig
from transferkit.training import TrainingInterrupted, latest_checkpoint


def _config(image_folder):
    # dropout in the head and augmentation on: both RNG streams must be replayed exactly
    return FitConfig(data=DataConfig(root=image_folder), backbone=TINY, weights="none", strategy="finetune",
                     head={"dropout": 0.2}, finetune=FinetuneConfig(epochs=3, batch_size=8, patience=5, unfreeze="last:3"))


def _same_run(a, b):
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    assert ma["test"] == mb["test"] and ma["val"] == mb["val"]
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(ma["history"]) == strip(mb["history"])
    wa, wb = (load_file(str(p / "model" / "model.safetensors")) for p in (a, b))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


@pytest.fixture
def uninterrupted(image_folder, tmp_path):
    out = tmp_path / "uninterrupted"
    tk.fit(config=_config(image_folder), out=out, progress=False)
    return out


def test_resume_after_a_crash_equals_the_uninterrupted_run(image_folder, tmp_path, monkeypatch, uninterrupted):
    undo = crash_after_epoch(monkeypatch, 2, "simulated crash")
    out = tmp_path / "crashed"
    with pytest.raises(SystemExit):
        tk.fit(config=_config(image_folder), out=out, progress=False)
    assert not (out / "metrics.json").exists()
    assert latest_checkpoint(out / "checkpoints").name == "epoch-0002"
    saved = json.loads((latest_checkpoint(out / "checkpoints") / "state.json").read_text())["trainer"]
    assert saved["elapsed_s"] >= sum(e["seconds"] for e in saved["history"]) > 0  # the two epochs' seconds are on disk
    # pretend the crashed process had trained for 1000 s: far more than a tiny resume takes, so the sum is unmistakable
    state_file = latest_checkpoint(out / "checkpoints") / "state.json"
    whole = json.loads(state_file.read_text())
    whole["trainer"]["elapsed_s"] = 1000.0
    state_file.write_text(json.dumps(whole))
    undo()
    tk.fit(resume=out, progress=False)
    _same_run(uninterrupted, out)
    # the resumed run's metrics count the fine-tuning seconds spent before the crash, and say where it resumed
    m = json.loads((out / "metrics.json").read_text())
    ft = m["stages"]["finetune"]["training"]
    assert ft["resumed_from"] == {"checkpoint": "epoch-0002", "epoch": 2, "step_in_epoch": 0, "seconds_before": 1000.0}
    assert 1000.0 + m["history"][-1]["seconds"] <= m["timing_s"]["finetune"] < 1000.0 + 600
    assert m["timing_s"]["finetune"] <= m["timing_s"]["total"]  # the total counts the seconds before the crash too
    assert "resumed_from" not in json.loads((uninterrupted / "metrics.json").read_text())["stages"]["finetune"]["training"]


def test_ctrl_c_mid_epoch_saves_a_checkpoint_and_says_how_to_resume(image_folder, tmp_path, monkeypatch, uninterrupted):
    original = trainer_mod._call
    calls = {"train": 0}

    def interrupt_on_fourth_step(model, inputs):
        if model.training:
            calls["train"] += 1
            if calls["train"] == 4:  # 2 steps per epoch: the second step of epoch 2
                raise KeyboardInterrupt
        return original(model, inputs)

    monkeypatch.setattr(trainer_mod, "_call", interrupt_on_fourth_step)
    out = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted, match=f"transferkit fit --resume {out}"):
        tk.fit(config=_config(image_folder), out=out, progress=False)
    assert latest_checkpoint(out / "checkpoints").name == "epoch-0001-step-00001"
    ckpt = latest_checkpoint(out / "checkpoints")
    assert {p.name for p in ckpt.iterdir()} == {"model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"}
    # the interrupted epoch's seconds so far are saved; pretend they were 500 s, so the resumed row's count is unmistakable
    whole = json.loads((ckpt / "state.json").read_text())
    assert whole["trainer"]["epoch_elapsed_s"] > 0
    whole["trainer"]["epoch_elapsed_s"] = 500.0
    (ckpt / "state.json").write_text(json.dumps(whole))
    monkeypatch.setattr(trainer_mod, "_call", original)
    tk.fit(resume=out, progress=False)
    _same_run(uninterrupted, out)
    history = [e for e in json.loads((out / "metrics.json").read_text())["history"] if e.get("stage") == "finetune"]
    assert 500.0 < history[1]["seconds"] < 500.0 + 600  # epoch 2: the seconds before the interruption and after the resume
    assert history[2]["seconds"] < 500.0  # the next epoch starts from zero


def test_ctrl_c_after_a_forward_pass_resumes_exactly_while_batchnorm_statistics_train(image_folder, tmp_path, monkeypatch,
                                                                                     uninterrupted):
    """A real Ctrl-C usually lands inside the step, after the forward pass has updated the running statistics of the
    BatchNorm layers in train mode (from scratch, or --train-bn): the checkpoint kept them, the resumed run replayed the
    step on top, and it ended differently (a walk: test accuracy 0.333 instead of 0.444)."""
    original = trainer_mod._call
    calls = {"train": 0}

    def interrupt_after_fourth_forward(model, inputs):
        out = original(model, inputs)
        if model.training:
            calls["train"] += 1
            if calls["train"] == 4:
                raise KeyboardInterrupt
        return out

    assert json.loads((uninterrupted / "metrics.json").read_text())["stages"]["finetune"]["training"]["from_scratch"]  # BN trains
    monkeypatch.setattr(trainer_mod, "_call", interrupt_after_fourth_forward)
    out = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted):
        tk.fit(config=_config(image_folder), out=out, progress=False)
    monkeypatch.setattr(trainer_mod, "_call", original)
    tk.fit(resume=out, progress=False)
    _same_run(uninterrupted, out)


def test_resuming_a_finished_run_refuses_and_leaves_it_untouched(uninterrupted):
    from transferkit.errors import FinishedRunError

    before = {p.name: p.stat().st_mtime_ns for p in uninterrupted.iterdir() if p.is_file()}
    with pytest.raises(FinishedRunError, match="has finished already .* nothing to resume.*new --out folder"):
        tk.fit(resume=uninterrupted, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in uninterrupted.iterdir() if p.is_file()} == before  # not trained again


def test_resume_without_a_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(tk.DataError, match="cannot resume"):
        tk.fit(resume=tmp_path / "nothing-here", progress=False)


def test_resuming_a_text_run_with_fit_points_to_fit_text(tmp_path):
    import json

    run = tmp_path / "text-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"status": "running", "fit_text": {"data": "reviews.csv"}}))
    with pytest.raises(tk.DataError, match=f"fit-text --resume {run}"):
        tk.fit(resume=run, progress=False)
    (run / "config.json").write_text(json.dumps({"something": "else"}))
    with pytest.raises(tk.DataError, match="no 'fit' section"):
        tk.fit(resume=run, progress=False)


def test_an_auto_run_from_before_auto_rule_resumes_with_the_rule_it_started_under(image_folder, tmp_path, monkeypatch):
    cfg = _config(image_folder)
    cfg.strategy = "auto"
    undo = crash_after_epoch(monkeypatch, 1, "simulated crash")
    out = tmp_path / "old-auto"
    with pytest.raises(SystemExit):
        tk.fit(config=cfg, out=out, progress=False)
    undo()
    whole = json.loads((out / "config.json").read_text())
    assert whole["fit"].pop("auto_rule") == "finetune-unless-worse"  # what an older transferkit wrote: no auto_rule
    (out / "config.json").write_text(json.dumps(whole))
    tk.fit(resume=out, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["auto"]["rule"] == "lower-val-loss"
    assert metrics["training"]["selection"] == "auto (lower-val-loss)"


def test_resume_reads_the_data_it_started_with_wherever_it_now_lies(image_folder, tmp_path, monkeypatch, uninterrupted):
    """config.json kept the data folder as typed (often relative), so a resume from another directory failed; and a
    resume after the data changed continued on other splits without a word (or failed on a state-dict error)."""
    import shutil

    from transferkit.errors import ConfigError, DataError

    data = tmp_path / "data-copy"
    shutil.copytree(image_folder, data)
    monkeypatch.chdir(tmp_path)
    cfg = _config("data-copy")
    undo = crash_after_epoch(monkeypatch, 1, "simulated crash")
    out = tmp_path / "crashed"
    with pytest.raises(SystemExit):
        tk.fit(config=cfg, out=out, progress=False)
    undo()
    assert json.loads((out / "config.json").read_text())["fit"]["data"]["root"] == str(data)  # absolute, though the config said "data-copy"
    with pytest.raises(ConfigError, match="would be ignored: finetune_epochs"):
        tk.fit(resume=out, finetune_epochs=9, progress=False)
    # the data changed: refused, with what changed
    extra = next((data / "train" / "cat").iterdir())
    shutil.copy(extra, data / "train" / "cat" / "added.png")
    (data / "train" / "cat" / "added.png").write_bytes(extra.read_bytes() + b"\0")  # other content: a new image
    with pytest.raises(DataError, match=r"the data differ from those this run started with \(train: \d+ image\(s\) not in the run"):
        tk.fit(resume=out, progress=False)
    (data / "train" / "cat" / "added.png").unlink()
    # the data moved (and the working directory changed): passing the folder where it now lies resumes on the same images
    shutil.move(data, tmp_path / "moved")
    monkeypatch.chdir(image_folder)
    with pytest.raises(DataError, match="does not exist"):
        tk.fit(resume=out, progress=False)
    tk.fit(tmp_path / "moved", resume=out, progress=False)
    _same_run(uninterrupted, out)


def test_a_relative_data_folder_is_recorded_as_an_absolute_one(image_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(image_folder.parent)
    run = tk.fit(image_folder.name, model=TINY, weights="none", hidden_dim=0, out=tmp_path / "r", progress=False, report=False)
    assert run.config.data.root == image_folder and json.loads((tmp_path / "r" / "config.json").read_text())["fit"]["data"]["root"] == str(image_folder)


def test_a_damaged_checkpoint_pointer_or_weights_file_is_a_checkpoint_error_that_says_what_to_do(tmp_path):
    # both used to end in a traceback (JSONDecodeError, SafetensorError)
    import torch

    from transferkit.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    directory = tmp_path / "checkpoints"
    save_checkpoint(directory, "epoch-0001", model=model, state={"epoch": 1})
    pointer = directory / "latest.json"
    good = pointer.read_text()
    pointer.write_text(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=r'cannot be read .*Delete it to start fine-tuning over, or write \{"checkpoint": "epoch-0001"\}'):
        latest_checkpoint(directory)
    pointer.write_text(good)
    weights = directory / "epoch-0001" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match="cannot restore checkpoint .*Delete it"):
        load_checkpoint(latest_checkpoint(directory), model=model, restore_rng=False)


def test_a_resumed_run_writes_a_report_only_if_it_was_started_with_one(image_folder, tmp_path, monkeypatch):
    # a --no-report run wrote report.html on resume: the setting was not recorded
    undo = crash_after_epoch(monkeypatch, 1, "simulated crash")
    out = tmp_path / "quiet"
    with pytest.raises(SystemExit):
        tk.fit(config=_config(image_folder), out=out, progress=False, report=False)
    undo()
    assert json.loads((out / "config.json").read_text())["report"] is False
    tk.fit(resume=out, progress=False)
    assert (out / "metrics.json").is_file() and not (out / "report.html").exists()
    # a finished run whose report was never written (stopped while writing it) says how to write it
    whole = json.loads((out / "config.json").read_text())
    assert whole["status"] == "done"
    whole["report"] = True
    (out / "config.json").write_text(json.dumps(whole))
    with pytest.raises(Exception, match=f"its report was not written.*transferkit report {out}"):
        tk.fit(resume=out, progress=False)
