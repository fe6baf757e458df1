"""PyTorch fp32 vs ONNX fp32 vs ONNX int8, side by side, measured in one run.

For each variant: batch-1 latency (p50, p95), throughput at a batch size, file size, peak
memory and test accuracy. Latency and throughput are measured *interleaved* (a few calls of
each variant in turn, repeated), so load from other processes on a shared machine hits all
variants alike. Times are of the network only (preprocessing is the same numpy/Pillow code for
the exported variants and is excluded for all). Peak memory is the peak resident set size of a
fresh process that loads the variant and predicts one batch: the ONNX processes import
``transferkit.runtime`` only, never torch, as they would on a device.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DataError
from ..runtime import ExportedModel, decide, is_export_folder


@dataclass
class _Variant:
    name: str
    kind: str  # "pytorch" or "onnx"
    path: Path  # model folder (pytorch) or export folder (onnx)
    file: Path
    run: Callable[[np.ndarray], np.ndarray]


def _percentile_ms(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1e3, q))


_PROBE = """
import json, resource, sys
kind, path, batch_size, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def rss():  # peak RSS of this process image (VmHWM resets at exec; ru_maxrss keeps the parent's peak)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
if kind == "pytorch":
    import torch
    from transferkit.model import load
    torch.set_num_threads(threads)
    model = load(path)
    after_load = rss()
    with torch.inference_mode():
        model(torch.zeros(batch_size, *model.data_cfg["input_size"]))
else:
    for name in ("torch", "torchvision", "timm", "sklearn"):  # as on a device: these are not installed
        sys.modules[name] = None
    import numpy as np
    from transferkit.runtime import ExportedModel
    model = ExportedModel(path, num_threads=threads)
    after_load = rss()
    model.logits(np.zeros((batch_size, *model.preprocessing.input_size), np.float32))
print(json.dumps({"peak_rss_mib": rss(), "rss_after_load_mib": after_load, "torch_imported": sys.modules.get("torch") is not None}))
"""


def _peak_memory(kind: str, path: Path, batch_size: int, threads: int) -> dict[str, Any]:
    """Peak RSS (MiB) of a fresh process that loads one variant and predicts one batch.

    The ONNX probe blocks torch, timm and scikit-learn, as on a device, and imports ``transferkit.runtime``.
    """
    proc = subprocess.run([sys.executable, "-c", _PROBE, kind, str(path), str(batch_size), str(threads)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else "failed"
        return {"peak_rss_mib": float("nan"), "memory_probe_error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _accuracy(variant: _Variant, x: np.ndarray, y: np.ndarray, batch_size: int, positive_index, threshold, temperature) -> tuple[float, np.ndarray]:
    from ..runtime import softmax

    logits = np.concatenate([variant.run(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    pred = decide(softmax(logits, temperature), positive_index, threshold)
    return float((pred == y).mean()), logits


def benchmark_models(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    calibration: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    rounds: int = 10,
    calls_per_round: int = 10,
    throughput_rounds: int = 3,
    threads: int | None = None,
    exporter: str = "dynamo",
    export_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Benchmark a model folder (exported here to ONNX fp32 + int8) or an export folder.

    ``data``: a labelled folder (class sub-folders, or a root whose ``test/`` is used for
    accuracy). int8 calibration uses ``calibration`` or, when absent, ``data``'s ``train/``.
    """
    import torch

    from ..data import load_labelled_folder, make_transforms, open_image
    from ..model import load
    from ..progress import track
    from . import export_model

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    model = Path(model)
    data = Path(data)
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="tk-bench-"))
    export_options = dict(export_options or {})

    # ---- the three variants ------------------------------------------------------------------
    exports: dict[str, Path] = {}
    if is_export_folder(model):
        cfg = json.loads((model / "export.json").read_text())
        exports[f"onnx {cfg.get('precision', 'fp32')}"] = model
        source = (cfg.get("source") or {}).get("model_dir")
        if not source or not Path(source).is_dir():
            raise DataError(f"export '{model}' does not name an existing source model folder (export.json source.model_dir = {source!r}); "
                            "benchmark the model folder itself to compare with PyTorch.")
        model_dir = Path(source)
    else:
        model_dir = model
        if calibration is None:
            if not (data / "train").is_dir():
                raise DataError(f"int8 calibration needs images: '{data}' has no train/ folder; pass --calibration FOLDER.")
            calibration = data / "train"
        exports["onnx fp32"] = export_model(model_dir, work / "onnx-fp32", exporter=exporter, calibration=calibration, overwrite=True,
                                            progress=progress).directory
        exports["onnx int8"] = export_model(model_dir, work / "onnx-int8", quantize="int8", calibration=calibration, exporter=exporter,
                                            onnx_fp32=exports["onnx fp32"] / "model.onnx", overwrite=True, progress=progress,
                                            **export_options).directory
    tm = load(model_dir).eval()
    weights_file = (model_dir / "model" if (model_dir / "model" / "model.safetensors").is_file() else model_dir) / "model.safetensors"

    def torch_run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return tm(torch.from_numpy(x)).float().numpy()

    variants = [_Variant("pytorch fp32", "pytorch", model_dir, weights_file, torch_run)]
    for name, folder in exports.items():
        em = ExportedModel(folder, num_threads=threads)
        variants.append(_Variant(name, "onnx", folder, folder / em.config.model_file, em.logits))

    # ---- test data: each side preprocesses with its own pipeline -----------------------------
    records, skipped = load_labelled_folder(data, tm.classes, progress=progress)
    if not records:
        raise DataError(f"no usable test images in '{data}' ({len(skipped)} skipped).")
    transform = make_transforms(tm.data_cfg)
    from ..runtime import Preprocessing, read_image

    pre = Preprocessing.from_config(tm.data_cfg)
    x_torch, x_np = [], []
    with track("test images", len(records), unit="img", enabled=progress) as advance:
        for r in records:
            x_torch.append(transform(open_image(r.path)).numpy())
            x_np.append(pre(read_image(r.path)))
            advance()
    x_torch_arr, x_np_arr = np.stack(x_torch), np.stack(x_np)
    y = np.array([r.label for r in records])
    temperature = ExportedModel(next(iter(exports.values()))).config.temperature
    pos, thr = tm.positive_index, tm.threshold

    rows: dict[str, dict[str, Any]] = {}
    ref_logits = None
    for v in variants:
        x = x_torch_arr if v.kind == "pytorch" else x_np_arr
        acc, logits = _accuracy(v, x, y, batch_size, pos, thr, temperature)
        if ref_logits is None:
            ref_logits = logits
        rows[v.name] = {
            "file": str(v.file),
            "file_size_mb": v.file.stat().st_size / 1e6,
            "test_accuracy": acc,
            "top1_agreement_with_pytorch": float((logits.argmax(1) == ref_logits.argmax(1)).mean()),
            "max_abs_logit_diff_vs_pytorch": float(np.abs(logits - ref_logits).max()),
        }

    # ---- latency (batch 1) and throughput, interleaved ---------------------------------------
    one = {v.name: (x_torch_arr if v.kind == "pytorch" else x_np_arr)[:1] for v in variants}
    batch = {v.name: np.ascontiguousarray(np.resize(x_torch_arr if v.kind == "pytorch" else x_np_arr, (batch_size, *x_np_arr.shape[1:]))) for v in variants}
    for v in variants:  # warm-up: first calls allocate and pick kernels
        for _ in range(3):
            v.run(one[v.name])
        v.run(batch[v.name])
    lat: dict[str, list[float]] = {v.name: [] for v in variants}
    thr_s: dict[str, list[float]] = {v.name: [] for v in variants}
    with track("latency + throughput", rounds + throughput_rounds, unit="round", enabled=progress) as advance:
        for r in range(rounds):
            for v in (variants if r % 2 == 0 else variants[::-1]):
                for _ in range(calls_per_round):
                    t = time.perf_counter()
                    v.run(one[v.name])
                    lat[v.name].append(time.perf_counter() - t)
            advance()
        for r in range(throughput_rounds):
            for v in (variants if r % 2 == 0 else variants[::-1]):
                t = time.perf_counter()
                v.run(batch[v.name])
                thr_s[v.name].append(time.perf_counter() - t)
            advance()
    for v in variants:
        rows[v.name].update({
            "latency_b1_p50_ms": _percentile_ms(lat[v.name], 50),
            "latency_b1_p95_ms": _percentile_ms(lat[v.name], 95),
            "latency_b1_num_calls": len(lat[v.name]),
            f"throughput_b{batch_size}_img_s": float(batch_size / np.median(thr_s[v.name])),
        })
    with track("peak memory (fresh processes)", len(variants), unit="proc", enabled=progress) as advance:
        for v in variants:
            rows[v.name].update(_peak_memory(v.kind, v.path, batch_size, threads))
            advance()

    base = rows["pytorch fp32"]
    for name, row in rows.items():
        row["speedup_b1_p50_vs_pytorch"] = base["latency_b1_p50_ms"] / row["latency_b1_p50_ms"]
        row["accuracy_drop_points_vs_pytorch"] = 100 * (base["test_accuracy"] - row["test_accuracy"])
    if "onnx fp32" in rows and "onnx int8" in rows:
        rows["onnx int8"]["size_ratio_vs_onnx_fp32"] = rows["onnx int8"]["file_size_mb"] / rows["onnx fp32"]["file_size_mb"]
    import onnxruntime

    return {
        "model": str(model_dir),
        "backbone": tm.backbone.name,
        "data": str(data),
        "num_test_images": len(records),
        "num_skipped": len(skipped),
        "batch_size": batch_size,
        "threads": threads,
        "latency": {"rounds": rounds, "calls_per_round": calls_per_round, "throughput_rounds": throughput_rounds,
                    "interleaved": True, "network_only": True},
        "preprocessing_max_abs_diff": float(np.abs(x_torch_arr - x_np_arr).max()),
        "variants": rows,
        "exports": {k: str(p) for k, p in exports.items()},
        "environment": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }

