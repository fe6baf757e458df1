"""PyTorch fp32 vs ONNX fp32 vs ONNX int8, side by side, measured in one run (image or text models).

For each variant: batch-1 latency (p50, p95), throughput at a batch size, file size, peak
memory and test accuracy. Timing and memory come from a fresh process per variant and round
(the order alternating between rounds), so runtimes never compete for cores within a
measurement (onnxruntime and PyTorch both keep worker threads spinning after a call) and load
drifts on a shared machine hit all variants alike. Times are of the network only
(preprocessing, i.e. image decoding or tokenization, excluded for all). Peak memory is the peak
RSS of that process: the ONNX ones block torch, timm, scikit-learn and transformers and import
``transferkit.runtime`` only, as on a device.

Text models: accuracy on a labelled text file (each side tokenizes with its own tokenizer:
``transformers`` for PyTorch, ``tokenizers`` + ``tokenizer.json`` for ONNX); batch-1 latency on the
test text of median token length, throughput on the first ``batch_size`` test texts padded to
their longest; int8 is dynamic quantization (no calibration data).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.folder import skip_reason_counts
from ..errors import DataError
from .parity import ParityError
from ..runtime import ExportedModel, decide, is_export_folder


Batch = Any  # a preprocessed batch: an image array (N, 3, H, W), or token arrays {"input_ids": (N, L), ...}


@dataclass
class _Variant:
    name: str
    kind: str  # "pytorch" or "onnx"
    path: Path  # model folder (pytorch) or export folder (onnx)
    file: Path
    run: Callable[[Batch], np.ndarray]


def _percentile_ms(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1e3, q))


_PROBE = """
import json, resource, sys, time
kind, path, inputs, calls, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
text = inputs.endswith(".npz")  # images: one array (.npy); text: token arrays for one text and for the batch (.npz)
def rss():  # peak RSS of this process image (VmHWM resets at exec; ru_maxrss keeps the parent's peak)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
if kind == "pytorch":
    import numpy as np
    import torch
    from transferkit.model import load
    torch.set_num_threads(threads)
    model = load(path).eval()
    def run(x):
        with torch.inference_mode():
            if text:
                return model(**{k: torch.from_numpy(v) for k, v in x.items()}).numpy()
            return model(torch.from_numpy(x)).numpy()
else:
    for name in ("torch", "torchvision", "timm", "sklearn", "transformers"):  # as on a device: these are not installed
        sys.modules[name] = None
    import numpy as np
    from transferkit.runtime import ExportedModel
    model = ExportedModel(path, num_threads=threads)
    run = model.logits
after_load = rss()
if text:
    z = np.load(inputs)
    one = {k[5:]: np.ascontiguousarray(z[k]) for k in z.files if k.startswith("one__")}
    batch = {k[7:]: np.ascontiguousarray(z[k]) for k in z.files if k.startswith("batch__")}
else:
    batch = np.load(inputs)
    one = np.ascontiguousarray(batch[:1])
for _ in range(3):
    run(one)
run(batch)
lat = []
for _ in range(calls):
    t = time.perf_counter(); run(one); lat.append(time.perf_counter() - t)
t = time.perf_counter(); run(batch); batch_s = time.perf_counter() - t
print(json.dumps({"peak_rss_mib": rss(), "rss_after_load_mib": after_load, "torch_imported": sys.modules.get("torch") is not None,
                  "latencies_s": lat, "batch_s": batch_s}))
"""


def _probe(kind: str, path: Path, inputs: Path, calls: int, threads: int) -> dict[str, Any]:
    """Run one variant alone in a fresh process: batch-1 latencies, one timed batch, peak RSS.

    A process per variant keeps runtimes from competing for cores (both onnxruntime and PyTorch
    keep their worker threads spinning after a call) and measures memory as a device would see
    it: the ONNX probe blocks torch, timm and scikit-learn and imports ``transferkit.runtime``.
    """
    proc = subprocess.run([sys.executable, "-c", _PROBE, kind, str(path), str(inputs), str(calls), str(threads)],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else "failed"
        return {"error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _accuracy(variant: _Variant, batches: list[Batch], y: np.ndarray, positive_index, threshold, temperature) -> tuple[float, np.ndarray]:
    from ..runtime import softmax

    logits = np.concatenate([variant.run(b) for b in batches])
    pred = decide(softmax(logits, temperature), positive_index, threshold)
    return float((pred == y).mean()), logits


def _compare(variants: list[_Variant], batches: dict[str, list[Batch]], y: np.ndarray, probe_inputs: dict[str, Path], *, unit: str,
             positive_index, threshold, temperature, batch_size: int, rounds: int, calls_per_round: int, threads: int,
             progress: bool) -> dict[str, dict[str, Any]]:
    """Accuracy and agreement of every variant (each on its own ``batches[kind]``), then latency,
    throughput and peak memory in fresh processes (``probe_inputs[kind]``): one row per variant."""
    from ..progress import track

    rows: dict[str, dict[str, Any]] = {}
    ref_logits = None
    for v in variants:
        acc, logits = _accuracy(v, batches[v.kind], y, positive_index, threshold, temperature)
        if ref_logits is None:
            ref_logits = logits
        rows[v.name] = {
            "file": str(v.file),
            "file_size_mb": v.file.stat().st_size / 1e6,
            "test_accuracy": acc,
            "top1_agreement_with_pytorch": float((logits.argmax(1) == ref_logits.argmax(1)).mean()),
            "max_abs_logit_diff_vs_pytorch": float(np.abs(logits - ref_logits).max()),
        }

    # ---- latency (batch 1), throughput, peak memory: each variant alone in a fresh process -----
    probes: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    with track("latency, throughput, memory (fresh processes)", rounds * len(variants), unit="proc", enabled=progress) as advance:
        for r in range(rounds):
            for v in (variants if r % 2 == 0 else variants[::-1]):  # alternate the order: load drifts hit all alike
                probes[v.name].append(_probe(v.kind, v.path, probe_inputs[v.kind], calls_per_round, threads))
                advance()
    throughput = f"throughput_b{batch_size}_{unit}_s"
    for v in variants:
        ok = [p for p in probes[v.name] if "error" not in p]
        if not ok:
            rows[v.name].update({"latency_b1_p50_ms": float("nan"), "latency_b1_p95_ms": float("nan"), "latency_b1_num_calls": 0,
                                 throughput: float("nan"), "peak_rss_mib": float("nan"), "probe_error": probes[v.name][0]["error"]})
            continue
        lat = [t for p in ok for t in p["latencies_s"]]
        rows[v.name].update({
            "latency_b1_p50_ms": _percentile_ms(lat, 50),
            "latency_b1_p95_ms": _percentile_ms(lat, 95),
            "latency_b1_num_calls": len(lat),
            throughput: float(batch_size / np.median([p["batch_s"] for p in ok])),
            "peak_rss_mib": max(p["peak_rss_mib"] for p in ok),
            "rss_after_load_mib": max(p["rss_after_load_mib"] for p in ok),
            "torch_imported": any(p["torch_imported"] for p in ok),
        })

    base = rows["pytorch fp32"]
    for name, row in rows.items():
        row["speedup_b1_p50_vs_pytorch"] = base["latency_b1_p50_ms"] / row["latency_b1_p50_ms"]
        # rounded: 0.89 - 0.87 must read 2.0 points (2 images of 100), not 2.0000000000000018
        row["accuracy_drop_points_vs_pytorch"] = round(100 * (base["test_accuracy"] - row["test_accuracy"]), 9)
    if "onnx fp32" in rows and "onnx int8" in rows:
        rows["onnx int8"]["size_ratio_vs_onnx_fp32"] = rows["onnx int8"]["file_size_mb"] / rows["onnx fp32"]["file_size_mb"]
    return rows


def _environment() -> dict[str, Any]:
    import onnxruntime
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _is_text(model: Path) -> bool:
    from ..runtime import ExportConfig
    from ..text.model import is_text_model_folder

    return ExportConfig.load(model).is_text if is_export_folder(model) else is_text_model_folder(model)


def _source_of(export: Path) -> Path:
    cfg = json.loads((export / "export.json").read_text())
    source = (cfg.get("source") or {}).get("model_dir")
    if not source or not Path(source).is_dir():
        raise DataError(f"export '{export}' does not name an existing source model folder (export.json source.model_dir = {source!r}); "
                        "benchmark the model folder itself to compare with PyTorch.")
    return Path(source)


def benchmark_models(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    calibration: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    rounds: int = 3,
    calls_per_round: int = 20,
    threads: int | None = None,
    exporter: str = "dynamo",
    export_options: dict[str, Any] | None = None,
    progress: bool = True,
    text_col: str | None = None,
    label_col: str | None = None,
    include_training_images: bool = False,
    include_training_texts: bool = False,
) -> dict[str, Any]:
    """Benchmark a model folder (exported here to ONNX fp32 + int8) or an export folder.

    ``data``: a labelled folder (class sub-folders, or a root whose ``test/`` is used for
    accuracy). int8 calibration uses ``calibration`` or, when absent, ``data``'s ``train/``. Split
    folders are found as ``fit`` finds them: ``Training/`` and ``Testing/`` (any case) count too.
    For a text model (``fit-text`` folder or text export) ``data`` is a labelled text file
    (.csv/.tsv/.jsonl or UCI .txt; ``text_col``/``label_col`` as in ``evaluate-text``), or a folder
    holding ``test.*``; int8 is dynamic quantization and needs no calibration.

    Accuracy leaves out the images the run trained on (its train and val splits, by content hash, from
    RUN/splits.json, as ``evaluate`` does), counted in ``excluded_training_images``; ``training_record`` says
    when a run has no such record. ``include_training_images=True`` measures accuracy on them all. Latency,
    throughput and memory do not depend on which images are used.

    For a text run, accuracy leaves out the texts it trained or validated on (RUN/splits.json, by the hash of the
    normalised text, so copies differing only in case, punctuation or spacing count too, as ``evaluate_text`` does),
    counted in ``excluded_training_texts``; ``include_training_texts=True`` (or ``include_training_images=True``, the
    CLI's one flag for both) measures accuracy on them all.
    """
    import torch

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    from ..run_folder import check_writable_folder

    model = Path(model).expanduser()
    data = Path(data).expanduser()
    work = check_writable_folder(work_dir, "--out") if work_dir else Path(tempfile.mkdtemp(prefix="tk-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    export_options = dict(export_options or {})
    measure = {"batch_size": batch_size, "rounds": rounds, "calls_per_round": calls_per_round, "threads": threads, "progress": progress}
    try:
        if _is_text(model):
            return _benchmark_text(model, data, work, exporter=exporter, export_options=export_options, text_col=text_col,
                                   label_col=label_col, include_training_texts=include_training_texts or include_training_images,
                                   **measure)
        return _benchmark_images(model, data, work, calibration=calibration, exporter=exporter, export_options=export_options,
                                 include_training_images=include_training_images, **measure)
    except BaseException:
        if not work_dir:  # a temporary folder of ours: its half-made exports go with the failure
            shutil.rmtree(work, ignore_errors=True)
        raise


def _benchmark_images(model: Path, data: Path, work: Path, *, calibration, exporter: str, export_options: dict[str, Any],
                      include_training_images: bool, batch_size: int, rounds: int, calls_per_round: int, threads: int,
                      progress: bool) -> dict[str, Any]:
    import torch

    from ..data import load_labelled_folder, make_transforms, open_image
    from ..data.folder import _find_split_dir
    from ..model import load
    from ..progress import track
    from . import export_model

    # ---- the model and its test data first: a folder of other classes fails before any export ------------------
    exports: dict[str, Path] = {}
    model_dir = _source_of(model) if is_export_folder(model) else model
    tm = load(model_dir).eval()
    records, skipped = load_labelled_folder(data, tm.classes, progress=progress)
    if not records:
        raise DataError(f"no usable test images in '{data}' ({len(skipped)} skipped).")
    records, excluded, training_record = _without_training_images(model_dir, data, records, include_training_images)

    # ---- the three variants ------------------------------------------------------------------
    left_out: dict[str, str] = {}
    export_notes: dict[str, list[str]] = {}
    if is_export_folder(model):
        cfg = json.loads((model / "export.json").read_text())
        exports[f"onnx {cfg.get('precision', 'fp32')}"] = model
    else:
        # split folders as fit reads them (train/ or Training/, test/ or Testing/, any case)
        if calibration is None:
            calibration = _find_split_dir(data, "train")
            if calibration is None:
                raise DataError(f"int8 calibration needs images: '{data}' has no train/ folder (nor Training/); "
                                "pass --calibration FOLDER.")
        # parity on the test images: calibration may take every train image of a small set (parity never reuses them)
        parity = _find_split_dir(data, "test") or data
        exports["onnx fp32"] = export_model(model_dir, work / "onnx-fp32", exporter=exporter, calibration=calibration, overwrite=True,
                                            parity_data=parity, progress=progress).directory
        with _left_out_if_parity_fails("onnx int8", left_out):
            int8 = export_model(model_dir, work / "onnx-int8", quantize="int8", calibration=calibration, exporter=exporter,
                                parity_data=parity, onnx_fp32=exports["onnx fp32"] / "model.onnx", overwrite=True, progress=progress,
                                **export_options)
            exports["onnx int8"] = int8.directory
            if int8.notes:  # e.g. calibration images held back for the parity check
                export_notes["onnx int8"] = int8.notes
    weights_file = (model_dir / "model" if (model_dir / "model" / "model.safetensors").is_file() else model_dir) / "model.safetensors"

    def torch_run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return tm(torch.from_numpy(x)).float().numpy()

    variants = [_Variant("pytorch fp32", "pytorch", model_dir, weights_file, torch_run)]
    for name, folder in exports.items():
        em = ExportedModel(folder, num_threads=threads)
        variants.append(_Variant(name, "onnx", folder, folder / em.config.model_file, em.logits))

    # ---- test data: each side preprocesses with its own pipeline -----------------------------
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

    inputs = {}
    for kind, arr in (("pytorch", x_torch_arr), ("onnx", x_np_arr)):
        inputs[kind] = work / f"bench-input-{kind}.npy"
        np.save(inputs[kind], np.ascontiguousarray(np.resize(arr, (batch_size, *arr.shape[1:])), dtype=np.float32))
    batches = {kind: [arr[i : i + batch_size] for i in range(0, len(arr), batch_size)]
               for kind, arr in (("pytorch", x_torch_arr), ("onnx", x_np_arr))}
    rows = _compare(variants, batches, y, inputs, unit="img", positive_index=tm.positive_index, threshold=tm.threshold,
                    temperature=temperature, batch_size=batch_size, rounds=rounds, calls_per_round=calls_per_round, threads=threads,
                    progress=progress)
    return {
        "model": str(model_dir),
        "modality": "image",
        "backbone": tm.backbone.name,
        "data": str(data),
        "num_test_images": len(records),
        "num_test_samples": len(records),
        "num_skipped": len(skipped),
        "skipped_by_reason": dict(skip_reason_counts(s.reason for s in skipped)),
        "excluded_training_images": excluded,
        **({"training_record": training_record} if training_record else {}),
        "unit": "img",
        "batch_size": batch_size,
        "threads": threads,
        "latency": {"rounds": rounds, "calls_per_round": calls_per_round, "process_per_variant_and_round": True,
                    "order_alternates": True, "network_only": True},
        "preprocessing_max_abs_diff": float(np.abs(x_torch_arr - x_np_arr).max()),
        "variants": rows,
        "left_out": left_out,
        "exports": {k: str(p) for k, p in exports.items()},
        "export_notes": export_notes,
        "environment": _environment(),
    }


def _without_training_images(model_dir: Path, data: Path, records: list, include: bool) -> tuple[list, int, str | None]:
    """The test records minus the images the run trained on (RUN/splits.json, by content hash, as ``evaluate``), how
    many were left out, and why none could be left out when the run has no record (None for a bare model folder)."""
    from ..api import missing_training_record, training_hashes

    if include:
        return records, 0, None
    seen = training_hashes(model_dir)
    if seen is None:
        return records, 0, missing_training_record(model_dir)
    kept = [r for r in records if r.sha256 not in seen[0]]
    if not kept:
        raise DataError(f"every image in '{data}' ({len(records)}) was used to train this run (its train/val splits, {seen[1]}), "
                        "so its accuracy would say nothing: benchmark on images it has not seen, or pass --include-training-images "
                        "to measure on them anyway.")
    return kept, len(records) - len(kept), None


def _without_training_texts(model_dir: Path, data: Path, records: list, include: bool) -> tuple[list, int, str | None]:
    """The test text records minus the texts the run trained or validated on (RUN/splits.json, by the hash of the
    normalised text, as ``evaluate_text``), how many were left out, and why none could be left out when the run has no
    record (None for a bare model folder)."""
    from ..api import missing_training_record, training_hashes
    from ..data.text import normalized_text_sha256

    if include:
        return records, 0, None
    seen = training_hashes(model_dir, items="texts")
    if seen is None:
        return records, 0, missing_training_record(model_dir, items="texts")
    kept = [r for r in records if normalized_text_sha256(r.text) not in seen[0]]
    if not kept:
        raise DataError(f"every text in '{data}' ({len(records)}) was used to train this run (its train/val splits, {seen[1]}), "
                        "so its accuracy would say nothing: benchmark on texts it has not seen, or pass --include-training-texts "
                        "to measure on them anyway.")
    return kept, len(records) - len(kept), None


@contextlib.contextmanager
def _left_out_if_parity_fails(name: str, left_out: dict[str, str]):
    """An export that fails its parity check is left out of the benchmark, with why, instead of ending it: the other
    variants are still measured."""
    try:
        yield
    except ParityError as exc:
        why = str(exc).split(". Numbers in")[0]
        noise = (f" The parity images were random noise ({exc.random_noise}), which says little about real images: with more "
                 "test images in DATA (or a --calibration folder apart from them) parity is checked on real ones."
                 if exc.random_noise else "")
        left_out[name] = (f"{why}.{noise} It is left out. `transferkit export MODEL --quantize int8` with --exclude-head (also a "
                          "benchmark option), another --calibrate-method or more --num-calibration images may pass.")


def _identical_rows(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> int:
    """How many texts of a batch got the same token arrays from both tokenizers (``b``'s input names)."""
    if any(a[n].shape != b[n].shape for n in b):
        return 0
    return int(np.all([(a[n] == b[n]).all(1) for n in b], axis=0).sum())


def _text_test_file(data: Path) -> Path:
    from ..data.text import TEXT_SUFFIXES

    if data.is_dir():
        found = sorted(p for p in data.iterdir() if p.stem.lower() == "test" and p.suffix.lower() in TEXT_SUFFIXES)
        if not found:
            raise DataError(f"folder '{data}' has no test.csv/.tsv/.jsonl/.txt; pass a labelled text file to measure accuracy on.")
        return found[0]
    return data


def _benchmark_text(model: Path, data: Path, work: Path, *, exporter: str, export_options: dict[str, Any], text_col: str | None,
                    label_col: str | None, include_training_texts: bool, batch_size: int, rounds: int, calls_per_round: int,
                    threads: int, progress: bool) -> dict[str, Any]:
    import torch

    from ..data.text import read_text_table
    from ..text.model import TextClassifier
    from . import export_model

    data = _text_test_file(data)
    exports: dict[str, Path] = {}
    left_out: dict[str, str] = {}
    # ---- the model and its test texts first: a file of the run's training texts only fails before any export ------
    model_dir = _source_of(model) if is_export_folder(model) else model
    tm = TextClassifier.from_pretrained(model_dir).eval()
    table = read_text_table(data, text_col=text_col, label_col=label_col, classes=tm.classes)
    if not table.records:
        raise DataError(f"no usable test texts in '{data}' ({len(table.skipped)} skipped).")
    records, excluded, training_record = _without_training_texts(model_dir, data, table.records, include_training_texts)
    if is_export_folder(model):
        exports[f"onnx {ExportedModel(model).config.precision}"] = model
    else:
        options = {k: v for k, v in export_options.items() if k not in ("calibrate_method", "num_calibration")}  # image-only (static int8)
        exports["onnx fp32"] = export_model(model_dir, work / "onnx-fp32", exporter=exporter, parity_data=data, text_col=text_col,
                                            overwrite=True, progress=progress).directory
        with _left_out_if_parity_fails("onnx int8", left_out):
            exports["onnx int8"] = export_model(model_dir, work / "onnx-int8", quantize="int8", exporter=exporter, parity_data=data,
                                                text_col=text_col, onnx_fp32=exports["onnx fp32"] / "model.onnx", overwrite=True,
                                                progress=progress, **options).directory
    weights_file = (model_dir / "model" if (model_dir / "model" / "model.safetensors").is_file() else model_dir) / "model.safetensors"

    def torch_run(x: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            return tm(**{k: torch.from_numpy(v) for k, v in x.items()}).float().numpy()

    variants = [_Variant("pytorch fp32", "pytorch", model_dir, weights_file, torch_run)]
    runtimes = []
    for name, folder in exports.items():
        em = ExportedModel(folder, num_threads=threads)
        runtimes.append(em)
        variants.append(_Variant(name, "onnx", folder, folder / em.config.model_file, em.logits))

    # ---- test texts: each side tokenizes with its own tokenizer ------------------------------
    texts, y = [r.text for r in records], np.array([r.label for r in records], dtype=np.int64)
    runtime = runtimes[0]

    def hf(chunk: list[str]) -> dict[str, np.ndarray]:
        return {k: v.numpy().astype(np.int64) for k, v in tm.backbone.collate(tm.backbone.tokenize(chunk)).items()}

    def tokenize(kind: str, chunk: list[str]) -> dict[str, np.ndarray]:
        return hf(chunk) if kind == "pytorch" else runtime.encode(chunk)

    chunks = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
    batches = {kind: [tokenize(kind, c) for c in chunks] for kind in ("pytorch", "onnx")}
    same = sum(_identical_rows(a, b) for a, b in zip(batches["pytorch"], batches["onnx"]))
    lengths = np.array([len(e.ids) for e in runtime.tokenizer.tokenize(texts)])
    median_text = texts[int(np.argsort(lengths, kind="stable")[len(lengths) // 2])]
    batch_texts = [texts[i % len(texts)] for i in range(batch_size)]
    inputs = {}
    for kind in ("pytorch", "onnx"):
        inputs[kind] = work / f"bench-input-{kind}.npz"
        arrays = {f"one__{k}": v for k, v in tokenize(kind, [median_text]).items()} | {f"batch__{k}": v for k, v in tokenize(kind, batch_texts).items()}
        np.savez(inputs[kind], **arrays)
    rows = _compare(variants, batches, y, inputs, unit="texts", positive_index=tm.positive_index, threshold=tm.threshold,
                    temperature=runtime.config.temperature, batch_size=batch_size, rounds=rounds, calls_per_round=calls_per_round,
                    threads=threads, progress=progress)
    return {
        "model": str(model_dir),
        "modality": "text",
        "backbone": tm.backbone.name,
        "strategy": tm.strategy,
        "data": str(data),
        "num_test_texts": len(texts),
        "num_test_samples": len(texts),
        "num_skipped": len(table.skipped),
        "skipped_by_reason": dict(skip_reason_counts(s.reason for s in table.skipped)),
        "excluded_training_texts": excluded,
        **({"training_record": training_record} if training_record else {}),
        "unit": "texts",
        "batch_size": batch_size,
        "threads": threads,
        "max_length": tm.backbone.max_length,
        "latency": {"rounds": rounds, "calls_per_round": calls_per_round, "process_per_variant_and_round": True,
                    "order_alternates": True, "network_only": True, "batch1_text_tokens": int(np.median(lengths)),
                    "batch_tokens_padded": int(max(lengths[i % len(texts)] for i in range(batch_size)))},
        "tokenization_identical_fraction": same / len(texts),
        "variants": rows,
        "left_out": left_out,
        "exports": {k: str(p) for k, p in exports.items()},
        "environment": _environment(),
    }
