"""What a report needs from a run that depends on its modality, behind one interface.

:func:`~transferkit.report.write_report` does everything modality-independent once (metrics and
bootstrap intervals, per-class table, confusion matrix, ROC/PR, calibration, operating point,
training curves); a :class:`ReportParts` supplies the rest: the predictions (saved, or
recomputed from the model and the data), the data section (counts, skipped inputs, duplicates,
leakage), the model card and the misclassified gallery with its explanations.
:class:`~transferkit.report.image.ImageReportParts` (Grad-CAM) and
:class:`~transferkit.report.text.TextReportParts` (token attributions) implement it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import TransferKitError
from ..evaluation.predictions import Predictions, load_run_splits


@dataclass
class DataSection:
    """The report's data section, in the same shape for every modality.

    ``skipped``: ``{"where", "reason"}`` per input left out; ``duplicates``: repeated inputs
    inside the data (texts: ``{"text", "where", "labels", "conflicting"}``); ``identical`` and
    ``near``: pairs across splits, ``{"a_split", "a", "b_split", "b"}`` plus ``distance`` (images)
    or ``text`` (texts); ``conflicting_labels`` (images): identical content filed under different classes,
    ``{"sha256", "classes", "copies": [{"split", "path", "class"}]}``, and ``conflicting_advice``, what to do about it;
    ``look_alike_conflicts`` (images): pairs that look the same (perceptual hash) but are filed under different classes,
    ``{"a_split", "a", "a_class", "b_split", "b", "b_class", "distance"}``.
    """

    unit: str  # "image" or "text": what one example is
    counts: dict[str, dict[str, int]]
    notes: list[str]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    identical: list[dict[str, Any]] = field(default_factory=list)
    near: list[dict[str, Any]] = field(default_factory=list)
    near_rule: str = ""  # what counts as a near-duplicate, in words
    leakage_checked: bool = False
    leakage_note: str = ""  # why the near-duplicate check did not run
    warnings: list[str] = field(default_factory=list)
    conflicting_labels: list[dict[str, Any]] = field(default_factory=list)
    conflicting_advice: str = ""
    look_alike_conflicts: list[dict[str, Any]] = field(default_factory=list)

    def leakage_summary(self) -> dict[str, Any]:
        return {"checked": self.leakage_checked, "rule": self.near_rule, "identical": self.identical, "near_duplicates": self.near,
                "conflicting_labels": self.conflicting_labels, "look_alike_conflicts": self.look_alike_conflicts}


@dataclass
class Gallery:
    """The misclassified test examples with their explanations.

    Image items carry ``b64`` (a PNG overlay); text items carry ``segments``: consecutive pieces of
    the text, each ``{"text", "score", "color"}`` (``score`` None: not attributed).
    """

    kind: str  # "image" or "text"
    items: list[dict[str, Any]] = field(default_factory=list)
    method: str = ""  # how the explanations were made, in words
    note: str = ""  # why explanations are missing, when they are
    files: list[Path] = field(default_factory=list)


class ReportParts(Protocol):
    """The modality-specific parts of a report (see the module docstring)."""

    modality: str
    title: str

    def predictions(self, split: str) -> Predictions: ...

    def data_section(self, *, check_leakage: bool, max_distance: int) -> DataSection: ...

    def model_card(self) -> list[tuple[str, str]]: ...

    def gallery(self, test: Predictions, y_pred: np.ndarray, order: np.ndarray, out_dir: Path) -> Gallery: ...

    def omissions(self) -> list[str]: ...


class RunReportParts:
    """What the parts of every modality keep of a saved run: its folder, model, config and metrics,
    and its splits, loaded at most once and only when something needs them."""

    def __init__(self, run_dir: Path, model, cfg: dict[str, Any], metrics: dict[str, Any], *, splits=None, progress: bool = True):
        self.run_dir, self.model, self.cfg, self.metrics = run_dir, model, cfg, metrics
        self.progress = progress
        self._splits, self._splits_error = splits, None

    def _get_splits(self):
        """The run's splits (None if the data is gone; ``_splits_error`` then says why)."""
        if self._splits is None and self._splits_error is None:
            try:
                self._splits = load_run_splits(self.run_dir, progress=self.progress)
            except TransferKitError as exc:
                self._splits_error = str(exc)
        return self._splits
