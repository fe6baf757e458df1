"""CLI commands of the export feature (registered on the shared typer app): export, benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ..errors import TransferKitError
from .app import _fail, app, console, err


@app.command(
    "export",
    epilog="Examples: transferkit export runs/plants-mnv2 --format onnx --quantize int8 --calibration data/plants --out exports/plants-int8\n\n"
    "transferkit export runs/amazon-lp --quantize int8 --parity-data reviews/amazon_cells_labelled.txt --out exports/amazon-int8   (a text model)",
)
def export_cmd(
    model: Annotated[Path, typer.Argument(help="Run folder or model folder (from `transferkit fit` or `transferkit fit-text`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Export folder to write.")],
    format: Annotated[str, typer.Option("--format", "-f", help="onnx or torchscript.")] = "onnx",
    quantize: Annotated[Optional[str], typer.Option(help="int8: static quantization calibrated on --calibration images; text models: dynamic (no calibration).")] = None,
    calibration: Annotated[Optional[Path], typer.Option(help="Image folder for int8 calibration (its train/ when present).")] = None,
    parity_data: Annotated[Optional[Path], typer.Option(help="Image folder for the parity check (default: other --calibration images); text models: a text file (labelled or one text per line).")] = None,
    num_calibration: Annotated[int, typer.Option(help="Calibration images to sample.")] = 100,
    num_parity: Annotated[int, typer.Option(help="Images (or texts) in the parity check.")] = 32,
    text_col: Annotated[Optional[str], typer.Option(help="Text models: the text column of a .csv/.jsonl --parity-data.")] = None,
    per_channel: Annotated[bool, typer.Option("--per-channel/--per-tensor", help="int8 weight scales per output channel or per tensor.")] = True,
    calibrate_method: Annotated[str, typer.Option(help="int8 activation ranges: percentile (99.999th), minmax or entropy.")] = "percentile",
    exclude_head: Annotated[bool, typer.Option(help="Keep the classifier head in fp32 when quantizing.")] = False,
    exporter: Annotated[str, typer.Option(help="ONNX exporter: dynamo (torch.export) or torchscript (older tracer, faster).")] = "dynamo",
    atol: Annotated[Optional[float], typer.Option(help="Max |Δlogit| allowed (default 1e-4 for fp32; int8 gates on agreement only).")] = None,
    min_agreement: Annotated[Optional[float], typer.Option(help="Min top-1 agreement with PyTorch (default 1.0 fp32, 0.95 int8).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the image samples.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing export in --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the export record as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Export a model to ONNX (fp32 or int8) or TorchScript, checked against PyTorch (parity)."""
    model = model.expanduser()  # a quoted or --opt=~/x path: the shell left the ~
    from ..export import export_model

    if quantize is not None and quantize.lower() != "int8":
        _fail(TransferKitError(f"--quantize must be int8, got {quantize!r}."))
    try:
        result = export_model(model, out, format=format, quantize=quantize, calibration=calibration, parity_data=parity_data,
                              num_calibration=num_calibration, num_parity=num_parity, seed=seed, exporter=exporter,
                              per_channel=per_channel, calibrate_method=calibrate_method, exclude_head=exclude_head,
                              atol=atol, min_agreement=min_agreement, overwrite=overwrite, progress=not (quiet or as_json), text_col=text_col)
    except (TransferKitError, ValueError) as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps(result.config.to_json(), default=str))
        return
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}")
    cfg = result.config
    q = cfg.extra.get("quantization")
    size = f"{result.file_size_bytes / 1e6:.2f} MB" + (f" ({result.file_size_bytes / q['fp32_size_bytes']:.2f}× fp32)" if q else "")
    for r in result.parity:
        console.print(f"[green]parity[/] {r.summary()}")
    if cfg.is_text:
        tok = cfg.extra["parity"]["tokenization"]
        first = (f"tokenization (tokenizers vs transformers): {tok['num_identical']}/{tok['num_texts']} texts identical; "
                 f"max_length {cfg.preprocessing.max_length}, inputs {', '.join(cfg.input_names)}\n")
        files, needs, item = "export.json, tokenizer.json, labels.txt, parity.json", "onnxruntime, tokenizers and numpy", '"some text"…'
    else:
        first = f"preprocessing (numpy/Pillow vs timm): max |Δ| {result.preprocessing_max_abs_diff:.1e}\n"
        files, item = "export.json, labels.txt, parity.json", "IMAGE…"
        needs = "torch (a TorchScript file), numpy and Pillow" if cfg.runtime == "torchscript" else "onnxruntime, numpy and Pillow"
    console.print(Panel.fit(
        first
        + f"{cfg.model_file}: {cfg.runtime} {cfg.precision}, {size}; {len(cfg.classes)} classes; "
        f"threshold {cfg.threshold:g}" + (f", temperature {cfg.temperature:g}" if cfg.temperature else "") + "\n"
        f"saved: {out} ({files}) in {result.seconds:.0f} s\n"
        f"next: transferkit predict {out} {item}   (needs {needs} only)",
        title="export",
    ))


@app.command(epilog="Examples: transferkit benchmark runs/plants-mnv2 data/plants --batch-size 32 --out bench/artifacts/plants-bench\n\n"
             "transferkit benchmark runs/amazon-lp reviews/amazon-test.csv --threads 1   (a text model: a labelled text file)")
def benchmark(
    model: Annotated[Path, typer.Argument(help="Model/run folder (exported here to ONNX fp32 + int8), or an export folder.")],
    data: Annotated[Path, typer.Argument(help="Labelled image folder; a root with train/ + test/ uses test/ for accuracy, train/ to calibrate. "
                                         "Text models: a labelled text file (.csv/.tsv/.jsonl/UCI .txt) or a folder with test.*.")],
    calibration: Annotated[Optional[Path], typer.Option(help="Image folder for int8 calibration (default: DATA/train).")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size of the throughput measurement.")] = 32,
    rounds: Annotated[int, typer.Option(help="Rounds: each runs every variant once in a fresh process (order alternating).")] = 3,
    calls: Annotated[int, typer.Option(help="Timed batch-1 calls per variant per round.")] = 20,
    threads: Annotated[Optional[int], typer.Option(help="Intra-op threads for every runtime (default: all cores).")] = None,
    exclude_head: Annotated[bool, typer.Option(help="Keep the classifier head in fp32 in the int8 model.")] = False,
    exporter: Annotated[str, typer.Option(help="ONNX exporter: dynamo or torchscript.")] = "dynamo",
    text_col: Annotated[Optional[str], typer.Option(help="Text models: the text column of DATA (default: detected).")] = None,
    label_col: Annotated[Optional[str], typer.Option(help="Text models: the label column of DATA (default: detected).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the exports and benchmark.json (default: a temporary folder).")] = None,
    include_training_images: Annotated[bool, typer.Option("--include-training-images", "--include-training-texts", help=(
        "Measure accuracy on the images (text models: the texts) the run trained on too; left out by default, as in "
        "evaluate and evaluate-text. Either name works for either kind of model."))] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """PyTorch fp32 vs ONNX fp32 vs ONNX int8: latency, throughput, size, memory, accuracy, in one run."""
    model = model.expanduser()  # a quoted or --opt=~/x path: the shell left the ~
    from ..export.benchmark import benchmark_models

    try:
        result = benchmark_models(model, data, calibration=calibration, work_dir=out, batch_size=batch_size, rounds=rounds,
                                  calls_per_round=calls, threads=threads, exporter=exporter,
                                  export_options={"exclude_head": exclude_head}, progress=not (quiet or as_json),
                                  text_col=text_col, label_col=label_col, include_training_images=include_training_images,
                                  include_training_texts=include_training_images)
    except (TransferKitError, ValueError) as exc:
        _fail(exc)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmark.json").write_text(json.dumps(result, indent=2))
    if as_json:
        console.print_json(json.dumps(result))
        return
    unit = result.get("unit", "img")
    what = "texts" if unit == "texts" else "images"
    table = Table(title=f"{result['backbone']} on {data} ({result['num_test_samples']} test {what}, {result['threads']} threads)", header_style="bold")
    cols = ["variant", "p50 ms", "p95 ms", "speed-up", f"{unit}/s @{batch_size}", "size MB", "peak MiB", "accuracy", "agree"]
    for c in cols:
        table.add_column(c, justify="left" if c == "variant" else "right")
    for name, r in result["variants"].items():
        table.add_row(name, f"{r['latency_b1_p50_ms']:.1f}", f"{r['latency_b1_p95_ms']:.1f}", f"{r['speedup_b1_p50_vs_pytorch']:.2f}×",
                      f"{r[f'throughput_b{batch_size}_{unit}_s']:.1f}", f"{r['file_size_mb']:.2f}", f"{r['peak_rss_mib']:.0f}",
                      f"{r['test_accuracy']:.3f}", f"{r['top1_agreement_with_pytorch']:.1%}")
    console.print(table)
    if result.get("num_skipped"):  # as evaluate says it: the accuracy column covers the other rows only
        reasons = ", ".join(f"{n} {r}" for r, n in (result.get("skipped_by_reason") or {}).items())
        err.print(f"[yellow]skipped {result['num_skipped']} {'row' if unit == 'texts' else 'file'}(s) of {escape(str(data))}:[/] "
                  f"{escape(reasons)} (listed by evaluate{'-text' if unit == 'texts' else ''}); accuracy is on the other "
                  f"{result['num_test_samples']}.")
    if result.get("training_record"):
        err.print(f"[yellow]note:[/] {result['training_record']}.")
    if result.get("excluded_training_images"):
        err.print(f"[yellow]accuracy left out {result['excluded_training_images']} image(s) this run trained on (train/val, by content); "
                  f"measured on the other {result['num_test_samples']}. --include-training-images measures them all.[/]")
    if result.get("excluded_training_texts"):
        err.print(f"[yellow]accuracy left out {result['excluded_training_texts']} text(s) this run trained on (train/val, same words "
                  f"ignoring case and punctuation); measured on the other {result['num_test_samples']}. --include-training-texts "
                  "measures them all.[/]")
    for name, notes in result.get("export_notes", {}).items():
        for note in notes:
            err.print(f"[yellow]note ({name} export):[/] {note}")
    for name, why in result.get("left_out", {}).items():
        console.print(f"[yellow]{name} not measured:[/] {why}")
    console.print("latency, throughput, peak MiB: network only, one fresh process per variant and round (ONNX ones without torch)"
                  + (f"; saved {out}/benchmark.json" if out else ""))
