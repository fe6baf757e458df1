"""Operating points of binary classifiers: a threshold chosen on validation to meet a target.

A screening model is used at a sensitivity (or specificity) target, not at accuracy. The
threshold is picked on the validation split (never on test) and then reported on test with
bootstrap intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sklearn.metrics import roc_curve

from ..errors import TransferKitError
from .bootstrap import Interval, bootstrap_metrics


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold on P(positive) and what it achieves on validation (and test)."""

    target: Literal["sensitivity", "specificity"]
    target_value: float
    threshold: float
    val_sensitivity: float
    val_specificity: float
    test: dict[str, Interval] = field(default_factory=dict)

    @property
    def met_on_val(self) -> bool:
        achieved = self.val_sensitivity if self.target == "sensitivity" else self.val_specificity
        return achieved >= self.target_value

    def to_dict(self) -> dict:
        return {
            "target": self.target, "target_value": self.target_value, "threshold": self.threshold,
            "val_sensitivity": self.val_sensitivity, "val_specificity": self.val_specificity, "met_on_val": self.met_on_val,
            "test": {k: v.to_dict() for k, v in self.test.items()},
        }


def sensitivity_specificity(is_positive: np.ndarray, score: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity when ``score >= threshold`` predicts positive."""
    is_positive, pred = np.asarray(is_positive, bool), np.asarray(score) >= threshold
    sens = float(pred[is_positive].mean()) if is_positive.any() else float("nan")
    spec = float((~pred[~is_positive]).mean()) if (~is_positive).any() else float("nan")
    return sens, spec


def choose_threshold(
    is_positive: np.ndarray, score: np.ndarray, *, target: Literal["sensitivity", "specificity"], value: float
) -> float:
    """The threshold that meets ``target >= value`` with the best other rate.

    For a sensitivity target: the highest threshold whose sensitivity reaches ``value`` (so
    specificity is as high as possible); for a specificity target, the lowest threshold whose
    specificity reaches ``value``. The ROC curve (scikit-learn) lists every distinct threshold.
    """
    if target not in ("sensitivity", "specificity"):
        raise TransferKitError(f"target must be 'sensitivity' or 'specificity'; got {target!r}.")
    if not 0 < value <= 1:
        raise TransferKitError(f"--target-{target} must be in (0, 1]; got {value}.")
    is_positive = np.asarray(is_positive, bool)
    if is_positive.all() or not is_positive.any():
        raise TransferKitError("choosing an operating point needs both classes in the validation split.")
    fpr, tpr, thresholds = roc_curve(is_positive, score, drop_intermediate=False)
    if target == "sensitivity":
        ok = np.flatnonzero(tpr >= value)  # thresholds decrease along the curve: first ok = highest
        return float(thresholds[ok[0]])
    ok = np.flatnonzero(1 - fpr >= value)
    return float(thresholds[ok[-1]])  # last ok = lowest threshold still meeting the specificity


def find_operating_point(
    y_val_positive: np.ndarray,
    score_val: np.ndarray,
    y_test_positive: np.ndarray | None = None,
    score_test: np.ndarray | None = None,
    *,
    target: Literal["sensitivity", "specificity"],
    value: float,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> OperatingPoint:
    """Choose the threshold on validation; report test sensitivity/specificity with intervals."""
    thr = choose_threshold(y_val_positive, score_val, target=target, value=value)
    vs, vp = sensitivity_specificity(y_val_positive, score_val, thr)
    test: dict[str, Interval] = {}
    if y_test_positive is not None and score_test is not None:
        y_t = np.asarray(y_test_positive, bool)

        def sens(y, s):
            if not y.any():
                raise ValueError("no positives")
            return float((s[y] >= thr).mean())

        def spec(y, s):
            if y.all():
                raise ValueError("no negatives")
            return float((s[~y] < thr).mean())

        test = bootstrap_metrics(y_t, np.asarray(score_test), {"sensitivity": sens, "specificity": spec},
                                 num_resamples=num_resamples, confidence=confidence, seed=seed)
    return OperatingPoint(target, float(value), thr, vs, vp, test)
