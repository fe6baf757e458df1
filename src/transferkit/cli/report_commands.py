"""CLI commands of the report feature (registered on the shared typer app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel
from rich.table import Table

from ..errors import TransferKitError
from .app import _fail, app, console, err


@app.command(
    epilog="Examples:\n\ntransferkit report runs/pneu-mnv2 --target-sensitivity 0.95  (then open runs/pneu-mnv2/report.html)\n\n"
    "transferkit report runs/amazon-lp --gallery 20  (a fit-text run: misclassified texts with token attributions)",
)
def report(
    run: Annotated[Path, typer.Argument(help="Run folder written by `transferkit fit --out RUN` or `transferkit fit-text --out RUN`.")],
    target_sensitivity: Annotated[Optional[float], typer.Option(help="Binary tasks: choose the threshold on validation for this sensitivity; report test sensitivity/specificity at it.")] = None,
    target_specificity: Annotated[Optional[float], typer.Option(help="Binary tasks: the same for a specificity target.")] = None,
    resamples: Annotated[int, typer.Option(min=100, help="Bootstrap resamples for the confidence intervals.")] = 1000,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level of the intervals.")] = 0.95,
    calibrate: Annotated[bool, typer.Option("--calibrate/--no-calibrate", help="Save the validation-fitted temperature in RUN/model (predict uses it).")] = True,
    leakage_check: Annotated[bool, typer.Option("--leakage-check/--no-leakage-check", help="Look for near-duplicates across splits (images: perceptual hash; texts: same words ignoring case and punctuation).")] = True,
    max_distance: Annotated[int, typer.Option(min=0, max=32, help="Images: largest pHash Hamming distance counted as a near-duplicate.")] = 4,
    gallery: Annotated[int, typer.Option(min=0, help="Misclassified test examples shown: images with Grad-CAM, texts with token attributions.")] = 12,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Write RUN/report.html: data, model card, metrics with bootstrap intervals, curves, calibration, errors explained (Grad-CAM or token attributions)."""
    run = run.expanduser()  # a quoted or --opt=~/x path: the shell left the ~
    from ..report import write_report

    try:
        result = write_report(run, target_sensitivity=target_sensitivity, target_specificity=target_specificity, num_resamples=resamples,
                              confidence=confidence, calibrate=calibrate, check_leakage=leakage_check, max_distance=max_distance,
                              gallery_size=gallery, seed=seed, progress=not quiet)
    except TransferKitError as exc:
        _fail(exc)
    s = result.summary
    table = Table(title=f"test metrics, {confidence:.0%} bootstrap intervals ({s['num_test']} {s['modality']}s)", header_style="bold")
    for c in ("metric", "estimate", "interval"):
        table.add_column(c, justify="left" if c == "metric" else "right")
    for name, iv in s["test"].items():
        if name in s["undefined"]["test"] and iv["estimate"] != iv["estimate"]:  # NaN: undefined on this test split
            table.add_row(name.replace("_", " "), "undefined", s["undefined"]["test"][name])
        else:
            table.add_row(name.replace("_", " "), f"{iv['estimate']:.3f}", f"[{iv['low']:.3f}, {iv['high']:.3f}]")
    console.print(table)
    cal = s["calibration"]
    how = "fitted on validation" if cal.get("fitted", True) else "not fitted: see the warning"
    lines = [f"calibration: temperature {cal['temperature']:.3f} ({how}); test ECE {cal['test_ece_before']:.3f} -> {cal['test_ece_after']:.3f}, "
             f"test NLL {cal['test_nll_before']:.3f} -> {cal['test_nll_after']:.3f}"]
    op = s.get("operating_point")
    if op:
        t = op["test"]
        command = "evaluate-text" if s.get("modality") == "text" else "evaluate"  # a text model is evaluated by evaluate-text
        same = (f"; on the calibrated P that predict/evaluate use: {command} --threshold {op['threshold_calibrated']:.4f}"
                if abs(op["threshold_calibrated"] - op["threshold"]) > 5e-5 else "")
        lines.append(f"operating point: {op['target']} >= {op['target_value']} -> threshold {op['threshold']:.4f} (validation{same}); test sensitivity "
                     f"{t['sensitivity']['estimate']:.3f} [{t['sensitivity']['low']:.3f}, {t['sensitivity']['high']:.3f}], specificity "
                     f"{t['specificity']['estimate']:.3f} [{t['specificity']['low']:.3f}, {t['specificity']['high']:.3f}]")
    lines.append(f"plots in {run / 'report'}, numbers in {run / 'report.json'}")
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    console.print(Panel.fit("\n".join(lines), title="report"))
    console.print(f"report: {result.path}", soft_wrap=True)
