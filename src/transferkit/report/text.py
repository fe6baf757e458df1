"""The text half of a report: text-file data section (skipped rows, duplicate texts, leakage) and
a gallery of misclassified texts coloured by token attributions (:mod:`.attributions`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TransferKitError
from ..evaluation.predictions import Predictions, get_predictions, load_predictions, predictions_path
from .parts import DataSection, Gallery, RunReportParts

NEAR_RULE = "the same text after case-folding and removing punctuation and extra spaces"


class TextReportParts(RunReportParts):
    """:class:`~transferkit.report.parts.ReportParts` of a text run (``transferkit fit-text``)."""

    modality = "text"

    def __init__(self, run_dir: Path, model, cfg: dict[str, Any], metrics: dict[str, Any], *, splits=None, progress: bool = True):
        super().__init__(run_dir, model, cfg, metrics, splits=splits, progress=progress)
        self.fit_cfg = cfg.get("fit_text") or {}
        if self.fit_cfg.get("cv") and not predictions_path(run_dir, "test").is_file():
            raise TransferKitError(f"'{run_dir}' is a --cv run: K-fold runs keep no test split to report on. "
                                   "Fit with a test split (drop --cv, optionally --test FILE) to get a report.")
        self.data = cfg.get("data") or {}
        self.title = f"{model.backbone.name} on {Path(self.fit_cfg.get('data') or '?').name}"

    def predictions(self, split: str) -> Predictions:
        if predictions_path(self.run_dir, split).is_file():
            preds = load_predictions(self.run_dir, split)
            if preds.texts is not None:
                return preds
        splits = self._get_splits()
        if splits is None:
            raise TransferKitError(f"no saved predictions (with texts) for '{split}' and they cannot be recomputed: {self._splits_error}")
        if predictions_path(self.run_dir, split).is_file():  # an older file without texts: recompute
            predictions_path(self.run_dir, split).unlink()
        return get_predictions(self.run_dir, split, splits=splits, progress=self.progress)

    def data_section(self, *, check_leakage: bool, max_distance: int) -> DataSection:
        """Counts, skipped rows and duplicates as the text reader reported them (config.json), and a
        near-duplicate check across splits (needs the data file, like the image pHash check)."""
        from ..data.text import find_near_duplicate_texts

        data = self.data
        files = data.get("files") or []
        skipped = [{"where": s["where"], "reason": s["reason"]} for f in files for s in f.get("skipped") or []]
        duplicates = [d for f in files for d in f.get("duplicates") or []]
        identical = list(data.get("cross_split_duplicates") or [])
        near: list[dict] = []
        checked, note = False, ""
        if not check_leakage:
            note = "switched off (--no-leakage-check)"
        else:
            splits = self._get_splits()
            if splits is not None:
                near = find_near_duplicate_texts({s: splits.split(s) for s in ("train", "val", "test")})
                checked = True
            elif "cross_split_near_duplicates" in data:  # the same check, made when the run was fitted (config.json)
                near, checked = list(data["cross_split_near_duplicates"] or []), True
            else:
                note = self._splits_error or "the data file is not available"
        warnings = []
        if identical or near:
            warnings.append(f"leakage: {len(identical)} identical and {len(near)} near-duplicate text pair(s) across splits")
        conflicting = [d for d in duplicates if d.get("conflicting")]
        if conflicting:
            warnings.append(f"{len(conflicting)} text(s) appear more than once with different labels")
        sources = [f"data file {f['path']}" + (f" (text column '{f['text_col']}', label column '{f['label_col']}')" if f.get("text_col") else "")
                   for f in files if f.get("path")]
        return DataSection(
            unit="text", counts=data.get("counts", {}), notes=[f"splits: {data.get('source', '?')}", *sources],
            skipped=skipped, skipped_by_reason=data.get("skipped_by_reason") or {}, duplicates=duplicates, identical=identical,
            near=near, near_rule=NEAR_RULE, leakage_checked=checked, leakage_note=note, warnings=warnings,
        )

    def model_card(self) -> list[tuple[str, str]]:
        cfg, metrics, model, fit = self.cfg, self.metrics, self.model, self.fit_cfg
        bb = model.backbone
        w = (cfg.get("backbone") or {}).get("weights") or bb.weights_record or {}
        training = metrics.get("training") or {}
        timing = metrics.get("timing_s") or {}
        hyper = {k: v for k, v in fit.items() if k not in ("data", "test", "backbone", "weights", "cache_dir", "device", "seed", "text_col",
                                                            "label_col", "encoding", "strategy", "cv")}
        if cfg.get("finetune_effective"):
            hyper["finetune"] = cfg["finetune_effective"]
        arch = getattr(bb.encoder.config, "model_type", "?")
        return [
            ("backbone", f"{bb.name} (transformers {arch}, {bb.num_features}-d, {bb.pooling} pooling, max {bb.max_length} tokens)"),
            ("weights source", w.get("source", "?") + (f" — {w['path']}" if w.get("path") else "")),
            ("weights sha256", w.get("sha256") or "none (random initialisation)"),
            ("strategy", training.get("strategy", fit.get("strategy", "?"))),
            ("hyper-parameters", json.dumps(hyper, default=str)),
            ("training", ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in training.items()
                                   if k != "strategy" and not isinstance(v, (dict, list))) or "?"),
            ("seed(s)", str(fit.get("seed", "?"))),
            ("wall time", f"{timing['total_wall']:.1f} s" if "total_wall" in timing else "?"),
        ]

    def gallery(self, test: Predictions, y_pred: np.ndarray, order: np.ndarray, out_dir: Path) -> Gallery:
        from .attributions import segment_color, token_attributions

        g = Gallery("text", method=("Integrated Gradients (captum LayerIntegratedGradients over the encoder's word embeddings, "
                                    "[PAD] baseline) for the predicted class: green words pushed towards the wrong prediction, "
                                    "red words against it; colour strength is relative within each text"))
        if not len(order):
            return g
        texts = test.texts or []
        try:
            attributions = token_attributions(self.model, [texts[i] for i in order], [int(y_pred[i]) for i in order])
        except Exception as exc:  # noqa: BLE001 - a failed explanation must not cost the whole report
            g.note = f"token attributions failed ({type(exc).__name__}: {exc})."
            attributions = []
        classes = test.classes
        for k, i in enumerate(order):
            a = attributions[k] if k < len(attributions) else None
            segments = [{"text": t, "score": s, "color": segment_color(s)} for t, s in a.segments] if a else [{"text": texts[i], "score": None, "color": None}]
            g.items.append({"name": test.paths[i], "path": test.paths[i], "text": texts[i], "true": classes[test.y_true[i]], "pred": classes[y_pred[i]],
                            "confidence": float(test.proba[i, y_pred[i]]), "segments": segments,
                            "attribution": a.to_dict() if a else None, "truncated": bool(a and a.truncated)})
        return g

    def omissions(self) -> list[str]:
        return ["Grad-CAM: this is a text run; the misclassified texts carry token attributions instead."]
