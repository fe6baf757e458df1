"""The image half of a report: image-folder data section (pHash near-duplicates), Grad-CAM gallery."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TransferKitError
from ..training.finetune import describe_auto_choice, describe_from_scratch
from ..training.head_selection import describe_head_choice, describe_refit, describe_train_views
from ..training.weight_interpolation import describe_wise_ft
from ..evaluation.predictions import Predictions, get_predictions, load_predictions, predictions_path
from .parts import DataSection, Gallery, RunReportParts


class ImageReportParts(RunReportParts):
    """:class:`~transferkit.report.parts.ReportParts` of an image run (``transferkit fit``)."""

    modality = "image"

    def __init__(self, run_dir: Path, model, cfg: dict[str, Any], metrics: dict[str, Any], *, splits=None, progress: bool = True):
        super().__init__(run_dir, model, cfg, metrics, splits=splits, progress=progress)
        self.data = cfg.get("data") or metrics.get("data") or {}
        self.title = f"{model.backbone.name} on {Path(self.data.get('root', '?')).name}"

    def predictions(self, split: str) -> Predictions:
        if predictions_path(self.run_dir, split).is_file():
            return load_predictions(self.run_dir, split)
        splits = self._get_splits()
        if splits is None:
            raise TransferKitError(f"no saved predictions for '{split}' and they cannot be recomputed: {self._splits_error}")
        return get_predictions(self.run_dir, split, splits=splits, progress=self.progress)

    def data_section(self, *, check_leakage: bool, max_distance: int) -> DataSection:
        from ..data.folder import CONFLICTING_LABELS_ADVICE, describe_conflicting_labels
        from ..data.leakage import check_images

        data, metrics = self.data, self.metrics
        near: list[dict] = list(data.get("near_duplicates") or metrics.get("data", {}).get("near_duplicates") or [])
        checked, note = bool(near) or "near_duplicates" in data, ""
        look_alikes: list[dict] = []
        if not checked and check_leakage:
            splits = self._get_splits()
            if splits is not None:
                found, conflicts = check_images(splits, max_distance, progress=self.progress)
                near, look_alikes = [d.to_dict() for d in found], [c.to_dict() for c in conflicts]
                checked = True
            else:
                note = self._splits_error or "the data folder is not available"
        elif not check_leakage:
            note = "switched off (--no-leakage-check)"
        identical = list(data.get("cross_split_duplicates") or [])
        pairs = {(d["a"], d["b"]) for d in identical}
        near = [d for d in near if (d["a"], d["b"]) not in pairs]
        warnings = []
        if identical or near:
            warnings.append(f"leakage: {len(identical)} identical and {len(near)} near-duplicate image pair(s) across splits")
        conflicting = list(data.get("conflicting_labels") or [])
        if conflicting:  # identical content under two classes: a wrong label (in one split or across splits)
            first, example = describe_conflicting_labels(data, limit=1)[:2]
            warnings.append(f"conflicting labels: {first} E.g. {example}")
        if look_alikes:  # the same picture re-saved or resized, under two classes: pHash sees what sha256 cannot
            c = look_alikes[0]
            warnings.append(f"look-alike images under different classes: {len(look_alikes)} pair(s), e.g. {c['a']} "
                            f"({c['a_split']}, {c['a_class']}) and {c['b']} ({c['b_split']}, {c['b_class']}), distance {c['distance']}")
        notes = [f"layout: {data.get('layout', '?')}", f"validation: {data.get('val_source', '?')}", f"data root {data.get('root', '?')}"]
        groups = data.get("groups")
        if groups:  # --groups: subjects per split, and subjects that explicit folders share (leakage)
            per = ", ".join(f"{k} {v}" for k, v in groups["num_subjects"].items())
            notes.append(f"subjects (pattern '{groups['pattern']}'): {per}; {groups['num_unmatched']} file name(s) matched no subject")
            if groups["num_subjects_in_two_splits"]:
                shown = ", ".join(f"{g['subject']} ({'/'.join(g['splits'])})" for g in groups["subjects_in_two_splits"][:5])
                warnings.append(f"leakage: {groups['num_subjects_in_two_splits']} subject(s) have images in two splits, e.g. {shown}")
        skipped = [{"where": s.get("path", s.get("where", "?")), "reason": s["reason"]} for s in data.get("skipped") or []]
        return DataSection(
            unit="image", counts=data.get("counts", {}),
            notes=notes,
            skipped=skipped, skipped_by_reason=data.get("skipped_by_reason") or {}, identical=identical, near=near,
            near_rule=f"perceptual-hash distance ≤ {max_distance}", leakage_checked=checked, leakage_note=note, warnings=warnings,
            conflicting_labels=conflicting, conflicting_advice=CONFLICTING_LABELS_ADVICE, look_alike_conflicts=look_alikes,
        )

    def model_card(self) -> list[tuple[str, str]]:
        cfg, metrics, model = self.cfg, self.metrics, self.model
        fit_cfg = cfg.get("fit") or {}
        w = (cfg.get("backbone") or {}).get("weights") or model.backbone.weights_record or {}
        training = metrics.get("training") or {}
        timing = metrics.get("timing_s") or {}
        hyper = {k: v for k, v in fit_cfg.items() if k not in ("data", "backbone", "weights", "cache_dir", "num_workers", "device", "seed")}
        seeds = metrics.get("seeds") or fit_cfg.get("seeds") or [fit_cfg.get("seed", "?")]
        return [
            ("backbone", f"{model.backbone.name} ({model.backbone.spec.library} {model.backbone.spec.arch})"),
            ("weights source", w.get("source", "?") + (f" — {w['path']}" if w.get("path") else "")),
            ("weights sha256", w.get("sha256") or "none (random initialisation)"),
            ("features", f"{model.backbone.num_features}: the pooled output of the last "
                         + (f"{model.backbone.feature_stages} stages, concatenated" if model.backbone.feature_stages > 1 else "stage")
                         + ("; mean of 4 test-time views" if model.backbone.test_views != "none" else "")),
            ("strategy", training.get("strategy", "?")),
            ("hyper-parameters", json.dumps(hyper, default=str)),
            ("training", ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in training.items()
                                   if k != "strategy" and not isinstance(v, (dict, list))) or "?"),
            *([("head choice", describe_head_choice(training["head_selection"]))] if "head_selection" in training else []),
            *([("head fit", describe_refit(training["refit"]))] if "refit" in training else []),
            *([("training copies", describe_train_views(training["train_views"]))] if "train_views" in training else []),
            *([("WiSE-FT", describe_wise_ft(training["wise_ft"]))] if "wise_ft" in training else []),
            *([("from scratch", describe_from_scratch(training["from_scratch"]))] if "from_scratch" in training else []),
            *([("strategy choice", describe_auto_choice(training["auto"]))] if "auto" in training else []),
            ("seed(s)", ", ".join(map(str, seeds if isinstance(seeds, list) else [seeds]))),
            ("wall time", f"{timing['total']:.1f} s" if "total" in timing else "?"),
        ]

    def gallery(self, test: Predictions, y_pred: np.ndarray, order: np.ndarray, out_dir: Path) -> Gallery:
        from PIL import Image

        from .gradcam import gradcam_overlays

        g = Gallery("image", method="Grad-CAM for the predicted class on the backbone's last block: where the model looked when it got it wrong")
        if not len(order):
            return g
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            overlays = gradcam_overlays(self.model, [test.paths[i] for i in order], [int(y_pred[i]) for i in order])
        except Exception as exc:  # noqa: BLE001 - a failed explanation must not cost the whole report
            g.note = f"Grad-CAM failed ({type(exc).__name__}: {exc})."
            return g
        classes = test.classes
        missing = [test.paths[i] for i, ov in zip(order, overlays) if ov is None]
        if missing:
            g.note = (f"{len(missing)} of the {len(order)} images to explain could not be read here (e.g. {missing[0]}): they are left "
                      "out. Paths in RUN/predictions/ are as `fit` saw them: run the report where fit ran, or with the data in place.")
        kept = [(i, ov) for i, ov in zip(order, overlays) if ov is not None]
        for k, (i, ov) in enumerate(kept):
            path = out_dir / f"{k:02d}.png"
            Image.fromarray(ov).save(path)
            g.files.append(path)
            g.items.append({"name": Path(test.paths[i]).name, "path": test.paths[i], "true": classes[test.y_true[i]], "pred": classes[y_pred[i]],
                            "confidence": float(test.proba[i, y_pred[i]]), "b64": base64.b64encode(path.read_bytes()).decode("ascii")})
        return g

    def omissions(self) -> list[str]:
        return ["Text token attributions: this is an image run (they appear in reports of `fit-text` runs)."]
