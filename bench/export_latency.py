"""Batch-1 latency of existing exports at a given thread count (fresh process per variant and round).

    python bench/export_latency.py bench/artifacts/export-plants-ft-mobilenet_v2 bench/artifacts/plants-ft-mobilenet_v2 --threads 1

WORK is the --out/work folder of a `bench/export.py` run (onnx-fp32/, onnx-int8/, bench-input-*.npy); MODEL the PyTorch
model folder. Used to separate runtime speed from OpenMP stalls of multi-threaded PyTorch on an oversubscribed machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from transferkit.export.benchmark import _probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path)
    ap.add_argument("model", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    w = args.work
    variants = [("pytorch fp32", "pytorch", args.model), ("onnx fp32", "onnx", w / "onnx-fp32"), ("onnx int8", "onnx", w / "onnx-int8")]
    lat: dict[str, list[float]] = {n: [] for n, _, _ in variants}
    for r in range(args.rounds):
        for name, kind, path in variants if r % 2 == 0 else variants[::-1]:
            lat[name] += _probe(kind, path, w / f"bench-input-{kind}.npy", args.calls, args.threads)["latencies_s"]
    p50 = {n: float(np.percentile(np.array(v) * 1e3, 50)) for n, v in lat.items()}
    for name, v in lat.items():
        print(f"{name}: threads={args.threads} p50 {p50[name]:.1f} ms p95 {np.percentile(np.array(v) * 1e3, 95):.1f} ms, "
              f"speed-up vs pytorch {p50['pytorch fp32'] / p50[name]:.2f}x")


if __name__ == "__main__":
    main()
