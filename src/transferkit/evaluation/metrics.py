"""Classification metrics from predicted probabilities (scikit-learn underneath)."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Real
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

from ..errors import ConfigError, DataError


def check_labels_1d(y: Any, name: str = "y_true") -> np.ndarray:
    """``y`` as an array of one label per row; a one-hot matrix, an (n, 1) column or a scalar is an error that says how
    to turn it into class indices."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        hint = ""
        if arr.ndim == 2 and arr.shape[1] == 1:
            hint = f" For an (n, 1) column pass {name}.ravel()."
        elif arr.ndim == 2:
            hint = f" For one-hot labels pass {name}.argmax(1)."
        raise DataError(f"{name} must be 1-D class indices (one per row); got shape {arr.shape}.{hint}")
    return arr


def check_class_indices(y_true: Any, num_classes: int, *, name: str = "y_true") -> np.ndarray:
    """``y_true`` as int64 class indices 0..num_classes-1 (whole-number floats and bools pass); anything else, such as
    class names, is an error that says how to map them, never a number computed on the wrong labels."""
    y = check_labels_1d(y_true, name)
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub":
        example = ", ".join(repr(v) for v in y[:3].tolist())
        raise DataError(f"{name} must hold class indices 0..{num_classes - 1}, not {y.dtype} values ({example}...): map class "
                        "names to indices first, e.g. [classes.index(c) for c in names] or np.unique(names, return_inverse=True).")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{name} must hold class indices 0..{num_classes - 1}; got {y.min()}..{y.max()}.")
    return y


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


def undefined_metrics(y_true: np.ndarray, classes: list[str], *, positive: str | None = None) -> dict[str, str]:
    """Metrics that have no value on these labels, each with the reason (for reports and metrics.json).

    A split without any example of a class has no ROC-AUC (no positives or no negatives to
    rank) and no sensitivity or specificity for it. Such metrics are ``NaN`` in memory and ``null`` in JSON.
    Balanced accuracy and macro F1 stay defined: they average over the classes that occur.
    """
    counts = np.bincount(np.asarray(y_true, dtype=np.int64), minlength=len(classes))
    missing = [c for c, n in zip(classes, counts) if n == 0]
    if not missing:
        return {}
    named = ", ".join(f"'{c}'" for c in missing)
    why = f"no example of class {named} in this split ({int(counts.sum())} examples)"
    pos = resolve_positive(classes, positive)
    if pos is not None:
        out = {"roc_auc": why + ": ROC-AUC needs both classes"}
        if counts[pos] == 0:
            out["sensitivity"] = why + ": sensitivity needs positives"
        if counts[1 - pos] == 0:
            out["specificity"] = why + ": specificity needs negatives"
        return out
    return {"roc_auc_ovr_macro": why + ": one-vs-rest ROC-AUC needs every class"}


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], *, positive: str | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """See :func:`_classification_metrics`; scikit-learn's warnings about classes missing from a split are not shown to
    users, since what they warn of is reported in ``undefined`` (and as null in the JSON files)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(y_pred contains classes not in y_true|A single label was found).*")
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn.metrics")
        return _classification_metrics(y_true, proba, classes, positive=positive, threshold=threshold)


def _classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: list[str], *, positive: str | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, per-class P/R/F1, confusion matrix; for binary
    tasks also ROC-AUC, sensitivity and specificity of the positive class at ``threshold``.

    A metric that is undefined on these labels (a class missing from the split) is ``NaN``
    (``null`` once written by :mod:`transferkit.json_files`) and ``undefined`` says why.

    Checked first: ``classes`` a list of names, ``y_true`` at least one class index, ``proba`` finite, ``threshold`` in
    [0, 1]."""
    if classes is None or isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
        raise DataError(f"classification_metrics: classes must be the list of class names, in the order of proba's columns "
                        f"(e.g. model.classes or splits.classes); got {classes!r}.")
    classes = list(classes)
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"classification_metrics: threshold must be a probability in [0, 1] (P(positive) at or above it is "
                          f"positive); got {threshold!r}.")
    y_true = check_class_indices(y_true, len(classes))
    if len(y_true) == 0:
        raise DataError("classification_metrics: y_true is empty: metrics need at least one labelled example (an empty split "
                        "has none; leave it out).")
    try:
        proba = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"classification_metrics: proba must be an array of probabilities of shape (N, {len(classes)}); got "
                        f"{type(proba).__name__}.") from None
    if proba.ndim != 2 or proba.shape[1] != len(classes) or len(proba) != len(y_true):
        raise DataError(f"classification_metrics: expected proba of shape (N, {len(classes)}) for {len(classes)} classes and "
                        f"N = {len(y_true)} labels; got {proba.shape}.")
    if not np.isfinite(proba).all():
        bad = int((~np.isfinite(proba)).any(1).sum())
        raise DataError(f"classification_metrics: proba has {bad} row(s) with NaN or infinite values: metrics need finite "
                        "probabilities (a diverged model or broken features?); re-run the prediction or drop those rows with "
                        "their labels.")
    labels = list(range(len(classes)))
    pos = resolve_positive(classes, positive)
    y_pred = predict_labels(proba, pos, threshold)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out: dict[str, Any] = {
        "num_samples": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        # over the classes that occur (as truth or as prediction), as balanced accuracy averages over the true ones: a class
        # absent from this split and never predicted is not a zero to average in
        "macro_f1": float(f1_score(y_true, y_pred, labels=sorted(set(y_true.tolist()) | set(y_pred.tolist())), average="macro",
                                   zero_division=0)) if len(y_true) else float("nan"),
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
    undefined = {k: v for k, v in undefined_metrics(y_true, classes, positive=positive).items() if k != "balanced_accuracy"}
    if undefined:  # scikit-learn's balanced accuracy averages the classes present, so it stays defined here
        out["undefined"] = undefined
    return out
