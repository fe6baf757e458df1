"""``write_report(RUN)``: everything a reader needs to trust (or distrust) a run, in one HTML file.

Reads ``RUN/config.json``, ``RUN/metrics.json``, ``RUN/model`` and ``RUN/predictions/`` (recomputed
from the model and the data root when missing); writes ``RUN/report.html`` (self-contained:
plots are embedded PNGs), the plots as ``RUN/report/*.png`` and the numbers as ``RUN/report.json``.
Fits the calibration temperature on validation and stores it in ``RUN/model/config.json``.
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
from ..evaluation import classification_metrics, predict_labels
from ..evaluation.bootstrap import Interval, bootstrap_classification
from ..evaluation.calibration import (
    TemperatureScaler,
    logits_from_proba,
    negative_log_likelihood,
    reliability_bins,
    save_temperature,
)
from ..evaluation.operating_point import OperatingPoint, find_operating_point
from ..evaluation.predictions import get_predictions, load_run_splits

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


class _Splits:
    """Loads the run's splits at most once, and only when something needs them."""

    def __init__(self, run_dir: Path, splits, progress: bool):
        self.run_dir, self._splits, self.progress, self.error = run_dir, splits, progress, None

    def get(self):
        if self._splits is None and self.error is None:
            try:
                self._splits = load_run_splits(self.run_dir, progress=self.progress)
            except TransferKitError as exc:
                self.error = str(exc)
        return self._splits


def _png_entry(fig, path: Path, alt: str) -> dict[str, str]:
    from .plots import figure_png

    data = figure_png(fig)
    path.write_bytes(data)
    return {"alt": alt, "b64": base64.b64encode(data).decode("ascii"), "path": str(path)}


def _fmt_interval(iv: Interval) -> str:
    return f"{iv.estimate:.3f} [{iv.low:.3f}, {iv.high:.3f}]"


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
    """Write ``RUN/report.html`` (+ ``RUN/report/*.png`` and ``RUN/report.json``) for a run folder.

    ``splits``: the run's :class:`~transferkit.data.ImageSplits` when the caller has them (saves
    re-scanning the data folder). ``target_sensitivity``/``target_specificity`` (binary tasks):
    choose a threshold on validation and report test sensitivity/specificity at it.
    """
    from ..data.leakage import DEFAULT_MAX_DISTANCE, find_near_duplicates
    from ..model import load
    from .plots import confusion_matrix_figure, pr_figure, reliability_figure, roc_figure, training_curves_figure
    from .template import TEMPLATE

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "model").is_dir():
        raise TransferKitError(f"'{run_dir}' is not a run folder: expected config.json and model/ (written by `transferkit fit --out RUN`).")
    max_distance = DEFAULT_MAX_DISTANCE if max_distance is None else max_distance
    cfg, metrics = _read_json(run_dir / "config.json"), _read_json(run_dir / "metrics.json")
    model = load(run_dir)
    if not hasattr(model, "backbone") or not hasattr(model.backbone, "blocks"):
        raise TransferKitError(f"'{run_dir}' holds a {type(model).__name__}; reports cover image classifiers only for now (text reports are not built yet).")
    classes, pos = model.classes, model.positive_index
    positive = classes[pos] if pos is not None else None
    if target_sensitivity is not None and target_specificity is not None:
        raise TransferKitError("pass --target-sensitivity or --target-specificity, not both.")
    if (target_sensitivity is not None or target_specificity is not None) and pos is None:
        raise TransferKitError(f"--target-sensitivity/--target-specificity need a binary task; this one has {len(classes)} classes.")
    threshold = model.threshold if pos is not None else None
    lazy = _Splits(run_dir, splits, progress)
    warnings: list[str] = []

    preds = {}
    for split in ("val", "test"):
        try:
            preds[split] = get_predictions(run_dir, split, splits=splits, progress=progress) if splits is not None else _predictions(run_dir, split, lazy, progress)
        except TransferKitError as exc:
            raise TransferKitError(f"cannot build the report: {exc}") from None
        if preds[split].classes != classes and len(preds[split].classes) == len(classes):
            preds[split].classes = classes  # older files named classes by index
    val, test = preds["val"], preds["test"]

    plots_dir = run_dir / PLOTS_DIR
    plots_dir.mkdir(parents=True, exist_ok=True)

    # ---- metrics with intervals ------------------------------------------------------------------
    point = classification_metrics(test.y_true, test.proba, classes, positive=positive, threshold=model.threshold)
    val_point = classification_metrics(val.y_true, val.proba, classes, positive=positive, threshold=model.threshold)
    intervals = bootstrap_classification(test.y_true, test.proba, classes, positive=positive, threshold=model.threshold,
                                         num_resamples=num_resamples, confidence=confidence, seed=seed)

    def val_value(name: str) -> str:
        v = val_point.get(name, val_point.get("binary", {}).get(name))
        return f"{v:.3f}" if isinstance(v, float) else "-"

    headline = [(name.replace("_", " "), iv, val_value(name)) for name, iv in intervals.items()]

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
    scaler = TemperatureScaler().fit(val_logits, val.y_true)
    t = scaler.temperature_
    before_test, after_test = reliability_bins(test.y_true, test.proba, num_bins=NUM_BINS), reliability_bins(test.y_true, scaler.predict_proba(test_logits), num_bins=NUM_BINS)
    before_val, after_val = reliability_bins(val.y_true, val.proba, num_bins=NUM_BINS), reliability_bins(val.y_true, scaler.predict_proba(val_logits), num_bins=NUM_BINS)
    if calibrate:
        save_temperature(run_dir / "model", t)
        saved_note = f"and saved in {run_dir / 'model' / 'config.json'} (`temperature`), which predict applies"
    else:
        saved_note = "(not saved: --no-calibrate)"
    calibration = {
        "temperature": t, "num_bins": NUM_BINS, "saved": calibrate, "saved_note": saved_note,
        "val_nll_before": negative_log_likelihood(val_logits, val.y_true), "val_nll_after": negative_log_likelihood(val_logits, val.y_true, t),
        "test_nll_before": negative_log_likelihood(test_logits, test.y_true), "test_nll_after": negative_log_likelihood(test_logits, test.y_true, t),
        "val_ece_before": before_val.ece, "val_ece_after": after_val.ece, "test_ece_before": before_test.ece, "test_ece_after": after_test.ece,
    }

    # ---- plots -----------------------------------------------------------------------------------
    y_pred = predict_labels(test.proba, pos, model.threshold)
    op_xy = None
    if op is not None:
        pred_op = test.proba[:, pos] >= op.threshold
        is_pos = test.y_true == pos
        op_xy = (float(pred_op[~is_pos].mean()), float(pred_op[is_pos].mean()))
    plots_main = [
        _png_entry(confusion_matrix_figure(test.y_true, y_pred, classes), plots_dir / "confusion_matrix.png", "confusion matrix"),
        _png_entry(roc_figure(test.y_true, test.proba, classes, pos, op_xy), plots_dir / "roc.png", "ROC curve"),
        _png_entry(pr_figure(test.y_true, test.proba, classes, pos), plots_dir / "precision_recall.png", "precision-recall curve"),
    ]
    plots_calibration = [_png_entry(reliability_figure(before_test, after_test, t), plots_dir / "reliability.png", "reliability diagram")]
    fig = training_curves_figure(metrics.get("history") or [])
    plots_training = [_png_entry(fig, plots_dir / "training_curves.png", "training curves")] if fig is not None else []

    # ---- data and leakage ------------------------------------------------------------------------
    data = cfg.get("data") or metrics.get("data") or {}
    near: list[dict] = list(data.get("near_duplicates") or metrics.get("data", {}).get("near_duplicates") or [])
    leakage_checked, leakage_note = bool(near) or "near_duplicates" in data, ""
    if not leakage_checked and check_leakage:
        s = lazy.get() if splits is None else splits
        if s is not None:
            near = [d.to_dict() for d in find_near_duplicates(s, max_distance, progress=progress)]
            leakage_checked = True
        else:
            leakage_note = lazy.error or "the data folder is not available"
    elif not check_leakage:
        leakage_note = "switched off (--no-leakage-check)"
    exact = list(data.get("cross_split_duplicates") or [])
    exact_pairs = {(d["a"], d["b"]) for d in exact}
    near = [d for d in near if (d["a"], d["b"]) not in exact_pairs]
    if exact or near:
        warnings.append(f"leakage: {len(exact)} identical and {len(near)} near-duplicate image pair(s) across splits")

    # ---- gallery ---------------------------------------------------------------------------------
    wrong = np.flatnonzero(y_pred != test.y_true)
    order = wrong[np.argsort(-test.proba[wrong, y_pred[wrong]])][:gallery_size]
    gallery, gallery_note = [], ""
    if len(order):
        from PIL import Image

        from .gradcam import gradcam_overlays

        gallery_dir = plots_dir / "gallery"
        gallery_dir.mkdir(exist_ok=True)
        try:
            overlays = gradcam_overlays(model, [test.paths[i] for i in order], [int(y_pred[i]) for i in order])
        except Exception as exc:  # noqa: BLE001 - a failed explanation must not cost the whole report
            overlays, gallery_note = [], f"Grad-CAM failed ({type(exc).__name__}: {exc})."
            warnings.append(gallery_note)
        for k, (i, ov) in enumerate(zip(order, overlays)):
            path = gallery_dir / f"{k:02d}.png"
            Image.fromarray(ov).save(path)
            gallery.append({"name": Path(test.paths[i]).name, "path": test.paths[i], "true": classes[test.y_true[i]], "pred": classes[y_pred[i]],
                            "confidence": float(test.proba[i, y_pred[i]]), "b64": base64.b64encode(path.read_bytes()).decode("ascii")})

    # ---- model card ------------------------------------------------------------------------------
    fit_cfg = cfg.get("fit") or {}
    bb = cfg.get("backbone") or {}
    w = bb.get("weights") or model.backbone.weights_record or {}
    training = metrics.get("training") or {}
    timing = metrics.get("timing_s") or {}
    hyper = {k: v for k, v in fit_cfg.items() if k not in ("data", "backbone", "weights", "cache_dir", "num_workers", "device", "seed")}
    versions = cfg.get("versions") or {}
    seeds = metrics.get("seeds") or fit_cfg.get("seeds") or [fit_cfg.get("seed", "?")]
    model_card = [
        ("backbone", f"{model.backbone.name} ({model.backbone.spec.library} {model.backbone.spec.arch})"),
        ("weights source", w.get("source", "?") + (f" — {w['path']}" if w.get("path") else "")),
        ("weights sha256", w.get("sha256") or "none (random initialisation)"),
        ("strategy", training.get("strategy", "?")),
        ("hyper-parameters", json.dumps(hyper, default=str)),
        ("training", ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in training.items() if k != "strategy") or "?"),
        ("seed(s)", ", ".join(map(str, seeds if isinstance(seeds, list) else [seeds]))),
        ("classes", ", ".join(classes) + (f" (positive: {positive}, threshold {model.threshold:.3f})" if positive else "")),
        ("device", cfg.get("device", "?")),
        ("wall time", f"{timing['total']:.1f} s" if "total" in timing else "?"),
        ("library versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "?"),
    ]

    omissions = [
        "Ranking chart: the run did not come from `rank` / `--model auto` (backbone ranking is a later feature).",
        "Seed-to-seed variation: one training seed; the intervals above cover test-set sampling only.",
        "Text token attributions: this is an image run (text tasks are not supported yet).",
    ]
    if pos is not None and op is None:
        omissions.append("Operating point: pass --target-sensitivity 0.95 (or --target-specificity) to choose a threshold on validation.")

    summary = {
        "run_dir": str(run_dir), "classes": classes, "positive": positive, "threshold": threshold,
        "num_val": int(len(val.y_true)), "num_test": int(len(test.y_true)), "confidence": confidence, "num_resamples": num_resamples,
        "test": {k: v.to_dict() for k, v in intervals.items()},
        "calibration": {k: v for k, v in calibration.items() if k != "saved_note"},
        "operating_point": op.to_dict() if op is not None else None,
        "leakage": {"checked": leakage_checked, "max_distance": max_distance, "identical": exact, "near_duplicates": near},
        "num_test_errors": int(len(wrong)), "gallery": [{k: v for k, v in g.items() if k != "b64"} for g in gallery],
        "warnings": warnings,
    }

    import jinja2

    from .. import __version__

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(TEMPLATE).render(
        title=f"{model.backbone.name} on {Path(data.get('root', '?')).name}", version=__version__,
        created=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), run_dir=str(run_dir),
        classes=classes, counts=data.get("counts", {}), layout=data.get("layout", "?"), val_source=data.get("val_source", "?"),
        data_root=data.get("root", "?"), skipped=data.get("skipped") or [], skipped_by_reason=data.get("skipped_by_reason") or {},
        exact_duplicates=exact, near_duplicates=near, max_distance=max_distance, leakage_checked=leakage_checked, leakage_note=leakage_note,
        model_card=model_card, confidence=confidence, headline=headline, num_resamples=num_resamples, num_test=len(test.y_true),
        num_val=len(val.y_true), threshold=threshold, positive=positive, per_class=point["per_class"], plots_main=plots_main,
        operating_point=op, calibration=calibration, plots_calibration=plots_calibration, plots_training=plots_training,
        gallery=gallery, num_errors=int(len(wrong)), gallery_note=gallery_note, omissions=omissions,
    )
    out = run_dir / REPORT_NAME
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    (run_dir / REPORT_JSON).write_text(json.dumps(summary, indent=2, default=str))
    plots = [Path(p["path"]) for p in plots_main + plots_calibration + plots_training] + [plots_dir / "gallery" / f"{k:02d}.png" for k in range(len(gallery))]
    return ReportResult(out, plots, summary, warnings)


def _predictions(run_dir: Path, split: str, lazy: _Splits, progress: bool):
    from ..evaluation.predictions import load_predictions, predictions_path

    if predictions_path(run_dir, split).is_file():
        return load_predictions(run_dir, split)
    s = lazy.get()
    if s is None:
        raise TransferKitError(f"no saved predictions for '{split}' and they cannot be recomputed: {lazy.error}")
    return get_predictions(run_dir, split, splits=s, progress=progress)
