"""One code path on Accelerate: 2 CPU processes (gloo) agree with each other and with 1 process."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import conftest  # registers the tiny backbone
import transferkit as tk
from transferkit.config import DataConfig, FinetuneConfig, FitConfig
from transferkit.model import TransferModel
from accelerate.state import PartialState

out = sys.argv[1]
original = TransferModel.save_pretrained
def counting_save(self, directory):
    with open(out + ".saves", "a") as fh:
        fh.write(str(PartialState().process_index) + "\\n")
    return original(self, directory)
TransferModel.save_pretrained = counting_save

cfg = FitConfig(data=DataConfig(root={data!r}), backbone="tiny_effnet", weights={weights!r}, device="cpu", strategy="finetune",
                finetune=FinetuneConfig(epochs=2, batch_size=8, unfreeze="last:3"))
r = tk.fit(config=cfg, out=out, progress=False)
st = PartialState()
with open(out + f".rank{{st.process_index}}.json", "w") as fh:
    json.dump({{"rank": st.process_index, "num_processes": st.num_processes, "backend": str(st.backend),
               "test": r.test, "val": r.metrics["val"], "training": r.metrics["training"], "distributed": r.metrics["distributed"],
               "history": r.history}}, fh)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None, reason="accelerate CLI not installed")
def test_two_cpu_processes_agree_save_once_and_match_one_process(image_folder, tiny_weights, tmp_path):
    script = tmp_path / "fit_script.py"
    # weights from a file, as pretrained ones would be (a random-init backbone trains from scratch, its BatchNorm statistics
    # following each process's half batch: see tests/test_from_scratch.py)
    script.write_text(SCRIPT.format(tests=str(TESTS), data=str(image_folder), weights=str(tiny_weights)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)}
    one = tmp_path / "one"
    subprocess.run([sys.executable, str(script), str(one)], check=True, env=env, timeout=600, capture_output=True)
    two = tmp_path / "two"
    launcher = Path(sys.executable).parent / "accelerate"
    # `--multi_gpu` picks Accelerate's torchrun launcher; with no GPU (and device="cpu") the processes
    # form a MULTI_CPU group on gloo. (`--cpu` alone starts one process unless mpirun is installed.)
    proc = subprocess.run([str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), str(script), str(two)],
                          env=env, timeout=600, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads(Path(f"{two}.rank{i}.json").read_text()) for i in (0, 1)]
    single = json.loads(Path(f"{one}.rank0.json").read_text())
    assert all(r["num_processes"] == 2 and r["backend"] == "gloo" for r in ranks)
    assert single["num_processes"] == 1
    # the ranks hold the same model and report the same metrics
    sums = ranks[0]["distributed"]["param_checksums"]
    assert len(sums) == 2 and sums[0] == pytest.approx(sums[1], rel=1e-9)
    assert ranks[0]["test"] == ranks[1]["test"]
    # the model folder was written once, by the main process
    assert Path(f"{two}.saves").read_text().split() == ["0"]
    assert (two / "model" / "model.safetensors").is_file()
    # 2 processes x half batches = 1 process x full batches, up to float reduction order
    assert ranks[0]["training"]["best_val_loss"] == pytest.approx(single["training"]["best_val_loss"], rel=0.05, abs=1e-4)
    assert abs(ranks[0]["test"]["accuracy"] - single["test"]["accuracy"]) <= 1 / ranks[0]["test"]["num_samples"] + 1e-9
    assert ranks[0]["distributed"]["param_checksums"][0] == pytest.approx(single["distributed"]["param_checksums"][0], rel=1e-3)
    # the recorded training loss is the whole batch's, the same on every process (each used to record its own half); it is
    # close to one process's, not equal: unfrozen BatchNorm layers normalise each process's half batch by itself
    losses = [[e["train_loss"] for e in r["history"] if e.get("stage") == "finetune"] for r in (single, ranks[0], ranks[1])]
    assert losses[1] == losses[2] and losses[1] == pytest.approx(losses[0], rel=0.25, abs=2e-4)


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None, reason="accelerate CLI not installed")
def test_accelerate_launch_of_the_cli_prints_once_and_saves_once(image_folder, tmp_path):
    """`accelerate launch -m transferkit fit …` (the README's command) on 2 CPU processes: one summary, one model folder,
    and with ``--strategy auto`` one decision that every rank applies."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import conftest  # registers the tiny test backbone in every launched process\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(hook), str(TESTS)]), "COLUMNS": "200",
           "NO_COLOR": "1", "TRANSFERKIT_OFFLINE": "1"}
    out = tmp_path / "run"
    launcher = Path(sys.executable).parent / "accelerate"
    proc = subprocess.run([str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), "-m", "transferkit", "fit", str(image_folder),
                           "--model", "tiny_effnet", "--weights", "none", "--device", "cpu", "--strategy", "auto", "--unfreeze", "last:3",
                           "--ft-epochs", "1", "--no-report", "-q", "--out", str(out)],
                          env=env, timeout=600, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("saved: ") == 1, proc.stdout  # the summary panel comes from the main process only
    assert (out / "model" / "model.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["distributed"]["num_processes"] == 2 and len(metrics["distributed"]["param_checksums"]) == 2
    sums = metrics["distributed"]["param_checksums"]
    assert sums[0] == pytest.approx(sums[1], rel=1e-9)  # both ranks hold the model auto kept
    assert metrics["training"]["chosen"] == metrics["training"]["auto"]["chosen"] and metrics["training"]["auto"]["rule"] == "finetune-unless-worse"


ON_MAIN_SCRIPT = """
import json, os, sys
from transferkit.errors import TransferKitError
from transferkit.launch import is_main_process, on_main_process, process_count
from transferkit.training import make_accelerator

acc = make_accelerator("cpu", "no")  # forms the gloo group, as fit does before it ranks
calls = []
def work():
    calls.append(1)
    return ("chosen-by-" + os.environ["RANK"], object())  # the second part never travels
name, extra = on_main_process(work, share=lambda r: (r[0], None))
def fails():
    raise TransferKitError("no candidate fits the limits")
try:
    on_main_process(fails)
    error = None
except TransferKitError as exc:
    error = str(exc)
with open(sys.argv[1] + f".rank{acc.process_index}.json", "w") as fh:
    json.dump({"name": name, "extra_is_none": extra is None, "calls": len(calls), "error": error, "count": process_count(),
               "main": is_main_process()}, fh)
"""


def _launch(args, env, tmp_path):
    launcher = Path(sys.executable).parent / "accelerate"
    return subprocess.run([str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *args],
                          env=env, timeout=600, capture_output=True, text=True, cwd=tmp_path)


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None, reason="accelerate CLI not installed")
def test_work_for_one_process_runs_once_and_one_process_commands_are_refused_once(image_folder, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS), "COLUMNS": "200", "NO_COLOR": "1", "TRANSFERKIT_OFFLINE": "1"}
    script = tmp_path / "on_main.py"
    script.write_text(ON_MAIN_SCRIPT)
    proc = _launch([str(script), str(tmp_path / "out")], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"out.rank{i}.json").read_text()) for i in (0, 1)]
    # the main process ranks (fit --model auto), every process gets its choice, and its error
    assert [r["name"] for r in ranks] == ["chosen-by-0", "chosen-by-0"] and [r["calls"] for r in ranks] == [1, 0]
    assert ranks[0]["extra_is_none"] is False and ranks[1]["extra_is_none"] is True
    assert [r["error"] for r in ranks] == ["no candidate fits the limits"] * 2
    assert [r["count"] for r in ranks] == [2, 2] and [r["main"] for r in ranks] == [True, False]
    # a linear probe is one process's work: refused, said once, nothing written (it used to run on every process, each
    # replacing the other's run folder)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import conftest\n")
    env["PYTHONPATH"] = os.pathsep.join([str(hook), str(TESTS)])
    proc = _launch(["-m", "transferkit", "fit", str(image_folder), "--model", "tiny_effnet", "--weights", "none", "--device", "cpu",
                    "--strategy", "linear-probe", "-q", "--out", str(tmp_path / "lp")], env, tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.count("error: a linear probe (a head trained on cached features) runs in one process") == 1, proc.stderr[-3000:]
    assert not (tmp_path / "lp").exists()
