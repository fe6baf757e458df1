"""Edge deployment claims: PyTorch fp32 vs ONNX fp32 vs ONNX int8 on plants, in one run per model.

    python bench/export.py bench/artifacts/plants-ft-mobilenet_v2 bench/artifacts/plants-ft-tf_efficientnet_lite0

Each MODEL is a run/model folder (`transferkit fit ... --out MODEL`). For each, this exports ONNX
fp32 (dynamo exporter) and ONNX int8 (static, calibrated on 100 plants/train images), checks
parity against PyTorch, then measures batch-1 latency (p50/p95, variants interleaved), batch-32
throughput, file size, peak memory (fresh process) and test accuracy on plants/test. It prints
the done-when checks of issue 7 and writes bench/artifacts/export-bench.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_EPILOG, require_data  # noqa: E402

CHECKS = {  # issue 7 "done when", per model
    "onnx fp32 top-1 agreement = 100 %": lambda v: v["onnx fp32"]["top1_agreement_with_pytorch"] == 1.0,
    "onnx fp32 max |Δlogit| <= 1e-4": lambda v: v["onnx fp32"]["max_abs_logit_diff_vs_pytorch"] <= 1e-4,
    "onnx int8 accuracy drop <= 2 points": lambda v: v["onnx int8"]["accuracy_drop_points_vs_pytorch"] <= 2.0,
    "onnx int8 file <= 0.3x fp32": lambda v: v["onnx int8"]["size_ratio_vs_onnx_fp32"] <= 0.3,
    "onnx int8 batch-1 p50 >= 1.5x faster than pytorch fp32": lambda v: v["onnx int8"]["speedup_b1_p50_vs_pytorch"] >= 1.5,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--data", default="plants")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--exclude-head", action="store_true", help="keep the classifier head fp32 in the int8 model")
    ap.add_argument("--calibrate-method", default="percentile")
    ap.add_argument("--out", type=Path, default=Path("bench/artifacts/export-bench.json"))
    args = ap.parse_args()
    data = require_data(args.data)

    from transferkit.export.benchmark import benchmark_models

    results = []
    for model in args.models:
        work = Path("bench/artifacts") / f"export-{model.name}"
        r = benchmark_models(model, data, work_dir=work, batch_size=args.batch_size, rounds=args.rounds,
                             export_options={"exclude_head": args.exclude_head, "calibrate_method": args.calibrate_method})
        int8_cfg = json.loads((work / "onnx-int8" / "export.json").read_text())
        r["int8_quantization"] = int8_cfg["quantization"]
        r["int8_export_parity"] = int8_cfg["parity"]["reports"]
        r["checks"] = {name: bool(check(r["variants"])) for name, check in CHECKS.items()}
        results.append(r)
        print(f"\n## {r['backbone']} ({model}) on {data}/test: {r['num_test_images']} images, {r['threads']} threads, "
              f"load average {r['environment']['load_average_1m']:.1f}")
        print("| variant | p50 ms | p95 ms | speed-up vs PyTorch | img/s @32 | file MB | peak RSS MiB | test acc | agree | max abs dlogit |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, v in r["variants"].items():
            print(f"| {name} | {v['latency_b1_p50_ms']:.1f} | {v['latency_b1_p95_ms']:.1f} | {v['speedup_b1_p50_vs_pytorch']:.2f}x | "
                  f"{v[f'throughput_b{args.batch_size}_img_s']:.1f} | {v['file_size_mb']:.2f} | {v['peak_rss_mib']:.0f} | "
                  f"{v['test_accuracy']:.3f} | {v['top1_agreement_with_pytorch']:.1%} | {v['max_abs_logit_diff_vs_pytorch']:.1e} |")
        for name, ok in r["checks"].items():
            print(f"- [{'x' if ok else ' '}] {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
