"""`transferkit fit --resume RUN` (images, CLI): an interrupted fine-tuning run, resumed through the command
line with no other option, ends with the same metrics, history and weights as an uninterrupted CLI run.
(tests/test_resume.py covers the Python API.)
"""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

import transferkit.training.trainer as trainer_mod
from conftest import TINY, crash_after_epoch
from transferkit.cli.app import app
from transferkit.training import latest_checkpoint

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# head dropout (0.3, the default) and augmentation (on by default) make both RNG streams matter
OPTIONS = ["--model", TINY, "--weights", "none", "--strategy", "finetune", "--ft-epochs", "3", "--unfreeze", "last:3",
           "--epochs", "20", "--seed", "3", "--device", "cpu", "--no-report", "-q"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"})


def _same_run(a, b):
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    assert ma["test"] == mb["test"] and ma["val"] == mb["val"]
    assert ma["training"]["epochs_run"] == mb["training"]["epochs_run"] == 3
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(ma["history"]) == strip(mb["history"])
    wa, wb = (load_file(str(p / "model" / "model.safetensors")) for p in (a, b))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
    ca, cb = (json.loads((p / "config.json").read_text()) for p in (a, b))
    assert ca["status"] == cb["status"] == "done" and ca["fit"] == cb["fit"]


@pytest.fixture
def bigger_folder(tmp_path):
    from conftest import make_image_folder

    return make_image_folder(tmp_path / "data24", per_class=24)


@pytest.fixture
def uninterrupted(image_folder, tmp_path):
    out = tmp_path / "uninterrupted"
    res = invoke("fit", image_folder, *OPTIONS, "--out", out)
    assert res.exit_code == 0, res.output
    return out


def test_cli_resume_after_a_crash_equals_the_uninterrupted_run(image_folder, tmp_path, monkeypatch, uninterrupted):
    undo = crash_after_epoch(monkeypatch, 2, 9)
    out = tmp_path / "crashed"
    crashed = invoke("fit", image_folder, *OPTIONS, "--out", out)
    assert crashed.exit_code == 9
    assert not (out / "metrics.json").exists()
    assert json.loads((out / "config.json").read_text())["status"] == "running"
    assert latest_checkpoint(out / "checkpoints").name == "epoch-0002"
    undo()

    resumed = invoke("fit", "--resume", out, "--no-report", "-q")  # no DATA, no other option: all read from RUN
    assert resumed.exit_code == 0, resumed.output
    assert f"saved: {out}/model" in " ".join(resumed.stdout.replace("│", " ").split())
    _same_run(uninterrupted, out)


@pytest.mark.parametrize("interrupt_at", [
    2,  # the second step of epoch 1 (2 steps per epoch: ~41 training images, batch 32)
    3,  # the first step of epoch 2: the checkpoint reads as an epoch boundary (a Trainer bug fixed in d4968ea)
])
def test_cli_ctrl_c_prints_the_resume_command_and_resuming_it_equals_the_uninterrupted_run(bigger_folder, tmp_path, monkeypatch,
                                                                                            interrupt_at):
    reference = tmp_path / "uninterrupted"
    assert invoke("fit", bigger_folder, *OPTIONS, "--out", reference).exit_code == 0
    original = trainer_mod._call
    calls = {"train": 0}

    def interrupt(model, inputs):
        if model.training:
            calls["train"] += 1
            if calls["train"] == interrupt_at:
                raise KeyboardInterrupt
        return original(model, inputs)

    monkeypatch.setattr(trainer_mod, "_call", interrupt)
    out = tmp_path / "interrupted"
    res = invoke("fit", bigger_folder, *OPTIONS, "--out", out)
    assert res.exit_code == 130 and "Traceback" not in res.output  # as an interrupted program exits
    flat = " ".join(res.stderr.split())
    assert "interrupted:" in flat and f"Resume with: transferkit fit --resume {out}" in flat
    assert latest_checkpoint(out / "checkpoints").name == {2: "epoch-0000-step-00001", 3: "epoch-0001"}[interrupt_at]
    monkeypatch.setattr(trainer_mod, "_call", original)

    resumed = invoke("fit", "--resume", out, "--no-report", "-q")
    assert resumed.exit_code == 0, resumed.output
    _same_run(reference, out)


def test_cli_resume_of_a_folder_that_is_not_a_run(tmp_path):
    res = invoke("fit", "--resume", tmp_path / "nothing-here", "-q")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "cannot resume" in " ".join(res.stderr.split())


def test_cli_resume_refuses_options_it_would_ignore_and_ft_epochs_0_is_refused(image_folder, tmp_path, monkeypatch):
    out = tmp_path / "run"
    undo = crash_after_epoch(monkeypatch, 1, "simulated crash")
    res = invoke("fit", image_folder, *OPTIONS, "--out", out)
    assert res.exit_code != 0 and latest_checkpoint(out / "checkpoints") is not None
    undo()
    res = invoke("fit", "--resume", out, "--ft-epochs", "4", "--wise-ft", "1", "-q")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "--ft-epochs, --wise-ft would be ignored" in " ".join(res.stderr.split())
    res = invoke("fit", image_folder, "--model", TINY, "--weights", "none", "--strategy", "finetune", "--ft-epochs", "0",
                 "--out", tmp_path / "zero", "-q")
    assert res.exit_code == 1 and "invalid option epochs=0" in " ".join(res.stderr.split())  # was: silently the default 6
