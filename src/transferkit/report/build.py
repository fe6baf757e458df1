"""``write_report(RUN)``: everything a reader needs to trust (or distrust) a run, in one HTML file.

Reads ``RUN/config.json``, ``RUN/metrics.json``, ``RUN/model`` and ``RUN/predictions/`` (recomputed
from the model and the data when missing); writes ``RUN/report.html`` (self-contained: plots are
embedded PNGs), the plots as ``RUN/report/*.png`` and the numbers as ``RUN/report.json`` (strict
JSON: undefined metrics are ``null``, with the reason under ``undefined``). Fits the calibration
temperature on validation and stores it in ``RUN/model/config.json``.

Image runs (``fit``) and text runs (``fit-text``) share everything but the data section, the
model card and the misclassified gallery (Grad-CAM for images, token attributions for texts):
those come from :func:`report_parts` (see :mod:`.parts`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TransferKitError
from ..evaluation import classification_metrics, predict_labels, undefined_metrics
from ..evaluation.bootstrap import bootstrap_classification
from ..evaluation.calibration import (
    TemperatureScaler,
    logits_from_proba,
    negative_log_likelihood,
    reliability_bins,
    calibrated_threshold,
    save_temperature,
)
from ..evaluation.operating_point import OperatingPoint, find_operating_point
from ..json_files import write_json
from .parts import ReportParts

REPORT_NAME = "report.html"
REPORT_JSON = "report.json"
PLOTS_DIR = "report"
NUM_BINS = 15


@dataclass
class ReportResult:
    """Where the report was written and the numbers in it (also in ``RUN/report.json``)."""

    path: Path
    plots: list[Path]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _png_entry(fig, path: Path, alt: str) -> dict[str, str]:
    from .plots import figure_png

    data = figure_png(fig)
    path.write_bytes(data)
    return {"alt": alt, "b64": base64.b64encode(data).decode("ascii"), "path": str(path)}


RANKING_NAME = "ranking.json"


def _selection_section(run_dir: Path, plots_dir: Path) -> dict[str, Any] | None:
    """The ranking that chose this run's backbone (``fit --model auto`` saves ``ranking.json``):
    chart, one table row per candidate (ranked, excluded by a limit, unavailable) and the rule."""
    path = run_dir / RANKING_NAME
    if not path.is_file():
        return None
    try:
        ranking = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TransferKitError(f"{path} is not a readable ranking ({e}); delete it or re-run `fit --model auto`.") from None
    from .plots import ranking_figure

    fig = ranking_figure(ranking)
    rows = []
    for c in ranking.get("candidates", []):
        cost = c.get("cost") or {}
        acc, ci = c.get("predicted_accuracy"), c.get("predicted_ci95")
        rows.append({
            "rank": c.get("rank") or "", "label": c.get("label"), "status": c.get("status"),
            "predicted": f"{100 * acc:.1f} % [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if acc is not None and ci else "",
            "latency": f"{cost['latency_ms_p50']:.1f}" if cost.get("latency_ms_p50") is not None else "",
            "params": f"{cost['num_params'] / 1e6:.1f} M" if cost.get("num_params") else "",
            "front": "yes" if c.get("on_pareto_front") else "",
            "why": c.get("explanation") if c.get("status") == "ranked" else (c.get("reason") or ""),
        })
    plots = [_png_entry(fig, plots_dir / "ranking.png", "model selection chart")] if fig is not None else []
    return {"best": ranking.get("best"), "rule": ranking.get("rule", ""), "notes": ranking.get("notes") or [], "rows": rows,
            "plots": plots, "limits": ranking.get("limits") or {}, "strategy": ranking.get("strategy", "linear-probe"),
            "evidence_scores": ranking.get("evidence_scores") or []}


def report_parts(run_dir: Path, model, cfg: dict[str, Any], metrics: dict[str, Any], *, splits=None, progress: bool = True) -> ReportParts:
    """The modality-specific half of the report of ``model`` (image or text classifier)."""
    from ..model import TransferModel
    from ..text.model import TextClassifier
    from .image import ImageReportParts
    from .text import TextReportParts

    if isinstance(model, TextClassifier):
        return TextReportParts(run_dir, model, cfg, metrics, splits=splits, progress=progress)
    if isinstance(model, TransferModel):
        return ImageReportParts(run_dir, model, cfg, metrics, splits=splits, progress=progress)
    raise TransferKitError(f"'{run_dir}' holds a {type(model).__name__}; reports cover image and text classifiers.")


def write_report(
    run_dir: str | os.PathLike,
    *,
    target_sensitivity: float | None = None,
    target_specificity: float | None = None,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    calibrate: bool = True,
    check_leakage: bool = True,
    max_distance: int | None = None,
    gallery_size: int = 12,
    splits=None,
    seed: int = 0,
    progress: bool = True,
) -> ReportResult:
    """Write ``RUN/report.html`` (+ ``RUN/report/*.png`` and ``RUN/report.json``) for a run folder
    of ``transferkit fit`` (images) or ``transferkit fit-text`` (texts).

    ``splits``: the run's :class:`~transferkit.data.ImageSplits` (or ``TextSplits``) when the
    caller has them (saves re-reading the data). ``target_sensitivity``/``target_specificity``
    (binary tasks): choose a threshold on validation and report test sensitivity/specificity at it.
    ``max_distance``: largest pHash distance of near-duplicate images (image runs).
    """
    from ..data.leakage import DEFAULT_MAX_DISTANCE
    from ..model import load
    from .plots import confusion_matrix_figure, plot_fonts, plot_names, pr_figure, reliability_figure, roc_figure, training_curves_figure
    from .template import TEMPLATE

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "model").is_dir():
        from ..run_folder import seeds_hint

        raise TransferKitError(f"'{run_dir}' is not a run folder: expected config.json and model/ "
                               "(written by `transferkit fit --out RUN` or `transferkit fit-text --out RUN`)." + seeds_hint(run_dir))
    max_distance = DEFAULT_MAX_DISTANCE if max_distance is None else max_distance
    cfg, metrics = _read_json(run_dir / "config.json"), _read_json(run_dir / "metrics.json")
    model = load(run_dir)
    parts = report_parts(run_dir, model, cfg, metrics, splits=splits, progress=progress)
    classes, pos = model.classes, model.positive_index
    positive = classes[pos] if pos is not None else None
    if target_sensitivity is not None and target_specificity is not None:
        raise TransferKitError("pass --target-sensitivity or --target-specificity, not both.")
    if (target_sensitivity is not None or target_specificity is not None) and pos is None:
        raise TransferKitError(f"--target-sensitivity/--target-specificity need a binary task; this one has {len(classes)} classes.")
    threshold = model.threshold if pos is not None else None
    # the predictions files hold uncalibrated probabilities, while predict and evaluate compare the saved threshold with
    # temperature-scaled ones: the same decisions here need the threshold moved back onto the uncalibrated scale
    decide_at = calibrated_threshold(model.threshold, 1.0 / model.temperature) if pos is not None else model.threshold
    saved_temperature = model.temperature
    warnings: list[str] = []

    preds = {}
    for split in ("val", "test"):
        try:
            preds[split] = parts.predictions(split)
        except TransferKitError as exc:
            raise TransferKitError(f"cannot build the report: {exc}") from None
        if preds[split].classes != classes and len(preds[split].classes) == len(classes):
            preds[split].classes = classes  # older files named classes by index
    val, test = preds["val"], preds["test"]

    plots_dir = run_dir / PLOTS_DIR
    plots_dir.mkdir(parents=True, exist_ok=True)

    # ---- metrics with intervals ------------------------------------------------------------------
    point = classification_metrics(test.y_true, test.proba, classes, positive=positive, threshold=decide_at)
    val_point = classification_metrics(val.y_true, val.proba, classes, positive=positive, threshold=decide_at)
    intervals = bootstrap_classification(test.y_true, test.proba, classes, positive=positive, threshold=decide_at,
                                         num_resamples=num_resamples, confidence=confidence, seed=seed)
    undefined = {"test": undefined_metrics(test.y_true, classes, positive=positive), "val": undefined_metrics(val.y_true, classes, positive=positive)}
    for split, p in (("test", test), ("validation", val)):
        missing = [c for i, c in enumerate(classes) if not (p.y_true == i).any()]
        if missing:
            names = [n.replace("_", " ") for n in undefined["test" if split == "test" else "val"] if n in intervals]
            warnings.append(f"the {split} split has no example of class {', '.join(repr(c) for c in missing)}: "
                            f"{', '.join(names) or 'some metrics'} undefined there (null in the JSON files)")

    def val_value(name: str) -> str:
        v = val_point.get(name, val_point.get("binary", {}).get(name))
        if (isinstance(v, float) and not np.isfinite(v)) or (v is None and name in undefined["val"]):
            return "undefined"
        return f"{v:.3f}" if isinstance(v, float) else "-"

    # (name, test interval, validation value, why the test value is undefined or None)
    headline = [(name.replace("_", " "), iv, val_value(name),
                 None if np.isfinite(iv.estimate) else undefined["test"].get(name, "undefined on this split"))
                for name, iv in intervals.items()]

    # ---- operating point -------------------------------------------------------------------------
    op: OperatingPoint | None = None
    if target_sensitivity is not None or target_specificity is not None:
        target, value = ("sensitivity", target_sensitivity) if target_sensitivity is not None else ("specificity", target_specificity)
        op = find_operating_point(val.y_true == pos, val.proba[:, pos], test.y_true == pos, test.proba[:, pos], target=target,
                                  value=float(value), num_resamples=num_resamples, confidence=confidence, seed=seed)
        if not op.met_on_val:
            warnings.append(f"the {target} target {value} is not met on validation")

    # ---- calibration -----------------------------------------------------------------------------
    val_logits, test_logits = logits_from_proba(val.proba), logits_from_proba(test.proba)
    scaler = TemperatureScaler().fit(val_logits, val.y_true, classes=classes)
    t = scaler.temperature_
    if scaler.note_:
        warnings.append(f"temperature scaling {scaler.note_}")
    before_test, after_test = reliability_bins(test.y_true, test.proba, num_bins=NUM_BINS), reliability_bins(test.y_true, scaler.predict_proba(test_logits), num_bins=NUM_BINS)
    before_val, after_val = reliability_bins(val.y_true, val.proba, num_bins=NUM_BINS), reliability_bins(val.y_true, scaler.predict_proba(val_logits), num_bins=NUM_BINS)
    if calibrate:
        save_temperature(run_dir / "model", t)
        saved_note = f"and saved in {run_dir / 'model' / 'config.json'} (`temperature`), which predict applies"
    else:
        saved_note = "(not saved: --no-calibrate)"
    calibration = {
        "temperature": t, "fitted": not scaler.note_, "num_bins": NUM_BINS, "saved": calibrate, "saved_note": saved_note,
        "val_nll_before": negative_log_likelihood(val_logits, val.y_true), "val_nll_after": negative_log_likelihood(val_logits, val.y_true, t),
        "test_nll_before": negative_log_likelihood(test_logits, test.y_true), "test_nll_after": negative_log_likelihood(test_logits, test.y_true, t),
        "val_ece_before": before_val.ece, "val_ece_after": after_val.ece, "test_ece_before": before_test.ece, "test_ece_after": after_test.ece,
    }

    # ---- plots -----------------------------------------------------------------------------------
    y_pred = predict_labels(test.proba, pos, decide_at)
    op_xy = None
    if op is not None:
        pred_op = test.proba[:, pos] >= op.threshold
        is_pos = test.y_true == pos
        op_xy = (float(pred_op[~is_pos].mean()), float(pred_op[is_pos].mean()))
    names, plot_key = plot_names(classes)  # names no installed font can draw (CJK, often) are numbered, with a key
    with plot_fonts():
        plots_main = [
            _png_entry(confusion_matrix_figure(test.y_true, y_pred, names), plots_dir / "confusion_matrix.png", "confusion matrix"),
            _png_entry(roc_figure(test.y_true, test.proba, names, pos, op_xy), plots_dir / "roc.png", "ROC curve"),
            _png_entry(pr_figure(test.y_true, test.proba, names, pos), plots_dir / "precision_recall.png", "precision-recall curve"),
        ]
        plots_calibration = [_png_entry(reliability_figure(before_test, after_test, t), plots_dir / "reliability.png", "reliability diagram")]
        fig = training_curves_figure(metrics.get("history") or [])
        plots_training = [_png_entry(fig, plots_dir / "training_curves.png", "training curves")] if fig is not None else []

    # ---- data, leakage, model card, gallery (the modality's parts) ------------------------------
    data = parts.data_section(check_leakage=check_leakage, max_distance=max_distance)
    warnings += data.warnings
    wrong = np.flatnonzero(y_pred != test.y_true)
    order = wrong[np.argsort(-test.proba[wrong, y_pred[wrong]])][:gallery_size]
    gallery = parts.gallery(test, y_pred, order, plots_dir / "gallery")
    if gallery.note:
        warnings.append(gallery.note)
    versions = cfg.get("versions") or {}
    model_card = [
        *parts.model_card(),
        ("classes", ", ".join(classes) + (f" (positive: {positive}, threshold {model.threshold:.3f})" if positive else "")),
        ("device", cfg.get("device", "?")),
        ("library versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "?"),
    ]

    selection = _selection_section(run_dir, plots_dir)
    omissions = [
        *([] if selection else ["Model selection: the run did not come from `--model auto` (no ranking.json in the run folder)."]),
        "Seed-to-seed variation: one training seed; the intervals above cover test-set sampling only.",
        *parts.omissions(),
    ]
    if pos is not None and op is None:
        omissions.append("Operating point: pass --target-sensitivity 0.95 (or --target-specificity) to choose a threshold on validation.")

    summary = {
        "run_dir": str(run_dir), "modality": parts.modality, "classes": classes, "positive": positive, "threshold": threshold,
        "num_val": int(len(val.y_true)), "num_test": int(len(test.y_true)), "confidence": confidence, "num_resamples": num_resamples,
        "test": {k: v.to_dict() for k, v in intervals.items()},
        "undefined": undefined,
        "calibration": {k: v for k, v in calibration.items() if k != "saved_note"},
        # predict and evaluate compare the saved threshold with temperature-scaled probabilities: the same cut on that scale
        "operating_point": ({**op.to_dict(), "threshold_calibrated": calibrated_threshold(op.threshold, t if calibrate else saved_temperature)}
                            if op is not None else None),
        "leakage": {**data.leakage_summary(), "max_distance": max_distance},
        "num_test_errors": int(len(wrong)),
        "gallery": [{k: v for k, v in g.items() if k not in ("b64", "segments")} for g in gallery.items],
        "selection": {"best": selection["best"], "num_candidates": len(selection["rows"])} if selection else None,
        "warnings": warnings,
    }

    import jinja2

    from .. import __version__

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(TEMPLATE).render(
        title=parts.title, version=__version__, created=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), run_dir=str(run_dir),
        classes=classes, data=data, max_distance=max_distance,
        model_card=model_card, confidence=confidence, headline=headline, num_resamples=num_resamples, num_test=len(test.y_true),
        num_val=len(val.y_true), threshold=threshold, positive=positive, per_class=point["per_class"], plots_main=plots_main, plot_key=plot_key,
        operating_point=summary["operating_point"], calibration=calibration, plots_calibration=plots_calibration, plots_training=plots_training,
        gallery=gallery, num_errors=int(len(wrong)), omissions=omissions, warnings=warnings, selection=selection,
    )
    out = run_dir / REPORT_NAME
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    write_json(run_dir / REPORT_JSON, summary)
    plots = [Path(p["path"]) for p in plots_main + plots_calibration + plots_training + (selection or {}).get("plots", [])] + gallery.files
    return ReportResult(out, plots, summary, warnings)
