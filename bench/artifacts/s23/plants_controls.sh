#!/bin/bash
# Plants: the two random-init controls of the fine-tuned selection bench, fine-tuned again with the from-scratch fix.
# The same call as bench/selection.py's train() (strategy finetune, unfreeze all, seed 0, the ranked random-init file),
# run directly because plants' selection state (rankings, trained rows) from the eighth session is not on this machine.
# Usage: bash bench/artifacts/s23/plants_controls.sh NAME   (from the repository root; code from the snapshot in PYTHONPATH)
set -e
name=$1
out=bench/artifacts/s23/plants-controls/$name
OMP_NUM_THREADS=1 .venv/bin/python - "$name" "$out" <<'PY'
import json, sys, time
from pathlib import Path
import transferkit as tk
name, out = sys.argv[1], Path(sys.argv[2])
weights = Path.home() / ".cache/transferkit/random-init" / f"{name}-seed0.safetensors"
t0 = time.perf_counter()
r = tk.fit("/work/shared/data/plants", model=name, weights=str(weights), seed=0, progress=False, report=False,
           strategy="finetune", unfreeze="all", out=out)
m = r.metrics
row = {"label": f"{name}:none", "test_accuracy": m["test"]["accuracy"], "test_balanced_accuracy": m["test"]["balanced_accuracy"],
       "val_accuracy": m["val"]["accuracy"], "chosen": m["training"].get("chosen"),
       "linear_probe_test_accuracy": m["stages"]["linear_probe"]["test"]["accuracy"],
       "finetune_test_accuracy": m["stages"]["finetune"]["test"]["accuracy"],
       "from_scratch": m["stages"]["finetune"]["training"].get("from_scratch"),
       "history": [(h["train_loss"], h["val_loss"]) for h in r.history if h.get("stage") == "finetune"],
       "wall_s": time.perf_counter() - t0, "weights": str(weights)}
Path(f"{out}.json").write_text(json.dumps(row, indent=1))
print(json.dumps(row))
PY
