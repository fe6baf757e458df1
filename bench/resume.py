"""kill -9 in the middle of fine-tuning, resume, and compare with an uninterrupted run.

Runs the real CLI in subprocesses on a small class-balanced subset of a real image folder
(symlinks under /tmp; nothing is copied into the repository):

1. `transferkit fit SUBSET --strategy finetune ... --out A` (uninterrupted);
2. the same with `--out B`, SIGKILLed as soon as B's first epoch checkpoint exists;
3. `transferkit fit --resume B`;
4. A and B must have identical val/test metrics, training history and model weights (bitwise).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/resume.py --data ../shared/data/plants --per-class 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_EPILOG, SHARED  # noqa: E402


def make_subset(src: Path, dst: Path, per_class: int) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    for split, n in (("train", per_class), ("test", max(2, per_class // 2))):
        for cls in sorted(p for p in (src / split).iterdir() if p.is_dir()):
            (dst / split / cls.name).mkdir(parents=True)
            for f in sorted(cls.iterdir())[:n]:
                (dst / split / cls.name / f.name).symlink_to(f.resolve())
    return dst


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "transferkit", "fit", *args]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    p.add_argument("--data", default=str(SHARED / "plants"), help="image folder with train/ and test/ (default: <data root>/plants)")
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--per-class", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--work", default="/tmp/tk-bench-resume")
    a = p.parse_args()

    work = Path(a.work)
    subset = make_subset(Path(a.data), work / "data", a.per_class)
    common = [str(subset), "--model", a.model, "--strategy", "finetune", "--ft-epochs", str(a.epochs), "--unfreeze", "last:3",
              "--seed", "0", "-q"]
    run_a, run_b = work / "uninterrupted", work / "killed"
    for r in (run_a, run_b):
        shutil.rmtree(r, ignore_errors=True)

    t0 = time.perf_counter()
    subprocess.run(cli(*common, "--out", str(run_a)), check=True, stdout=subprocess.DEVNULL)
    t_a = time.perf_counter() - t0

    proc = subprocess.Popen(cli(*common, "--out", str(run_b)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run_b / "checkpoints" / "latest.json"
    killed_at = None
    while proc.poll() is None:
        if latest.is_file():
            killed_at = json.loads(latest.read_text())["checkpoint"]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.2)
    if killed_at is None:
        sys.exit("the run finished before a checkpoint appeared; use more epochs or images")
    assert not (run_b / "metrics.json").exists(), "killed run should not have finished"
    print(f"killed -9 after checkpoint {killed_at}")
    subprocess.run(cli("--resume", str(run_b), "-q"), check=True, stdout=subprocess.DEVNULL)

    from safetensors.torch import load_file

    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (run_a, run_b))
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    wa, wb = (load_file(str(r / "model" / "model.safetensors")) for r in (run_a, run_b))
    checks = {
        "test metrics": ma["test"] == mb["test"],
        "val metrics": ma["val"] == mb["val"],
        "history": strip(ma["history"]) == strip(mb["history"]),
        "weights (bitwise)": wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa),
    }
    result = {
        "model": a.model, "data": a.data, "per_class": a.per_class, "epochs": a.epochs, "killed_after": killed_at,
        "uninterrupted_test_accuracy": ma["test"]["accuracy"], "resumed_test_accuracy": mb["test"]["accuracy"],
        "uninterrupted_wall_s": round(t_a, 1), "checks": checks, "equal": all(checks.values()),
    }
    print(json.dumps(result, indent=1))
    sys.exit(0 if result["equal"] else 1)


if __name__ == "__main__":
    main()
