"""Classification metrics from predicted probabilities (scikit-learn underneath)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from ..errors import DataError


def resolve_positive(classes: list[str], positive: str | None) -> int | None:
    """Index of the positive class of a binary task (default: the second class, as scikit-learn)."""
    if len(classes) != 2:
        if positive:
            raise DataError(f"--positive '{positive}' only applies to binary tasks; this one has {len(classes)} classes.")
        return None
    if not positive:
        return 1
    if positive not in classes:
        raise DataError(f"--positive '{positive}' is not a class; the classes are {classes}.")
    return classes.index(positive)


def predict_labels(proba: np.ndarray, positive_index: int | None = None, threshold: float = 0.5) -> np.ndarray:
    """Arg-max, or for a binary task: positive when P(positive) >= threshold."""
    if positive_index is not None and proba.shape[1] == 2:
        return np.where(proba[:, positive_index] >= threshold, positive_index, 1 - positive_index)
    return proba.argmax(1)


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], *, positive: str | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, per-class P/R/F1, confusion matrix; for binary
    tasks also ROC-AUC, sensitivity and specificity of the positive class at ``threshold``."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    labels = list(range(len(classes)))
    pos = resolve_positive(classes, positive)
    y_pred = predict_labels(proba, pos, threshold)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out: dict[str, Any] = {
        "num_samples": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])} for i, c in enumerate(classes)
        },
        "confusion_matrix": {"labels": classes, "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
    }
    present = np.unique(y_true)
    if pos is not None:
        neg = 1 - pos
        tp = int(np.sum((y_pred == pos) & (y_true == pos)))
        fn = int(np.sum((y_pred != pos) & (y_true == pos)))
        tn = int(np.sum((y_pred == neg) & (y_true == neg)))
        fp = int(np.sum((y_pred != neg) & (y_true == neg)))
        out["binary"] = {
            "positive_class": classes[pos],
            "threshold": float(threshold),
            "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
            "specificity": tn / (tn + fp) if tn + fp else float("nan"),
            "roc_auc": float(roc_auc_score(y_true == pos, proba[:, pos])) if len(present) == 2 else float("nan"),
        }
        out["roc_auc"] = out["binary"]["roc_auc"]
    elif len(present) == len(classes) and len(classes) > 2:
        out["roc_auc_ovr_macro"] = float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels))
    return out
