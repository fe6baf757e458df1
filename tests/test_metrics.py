"""Classification metrics against values computed by hand on a small example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transferkit.errors import DataError
from transferkit.evaluation import classification_metrics, predict_labels, resolve_positive

CLASSES = ["NORMAL", "PNEUMONIA"]
# 4 NORMAL, 6 PNEUMONIA; P(PNEUMONIA) per image
Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
P = np.array([0.1, 0.3, 0.6, 0.7, 0.2, 0.55, 0.65, 0.8, 0.9, 0.95])
PROBA = np.stack([1 - P, P], axis=1)


def test_binary_metrics_by_hand():
    m = classification_metrics(Y, PROBA, CLASSES, positive="PNEUMONIA")
    # at 0.5: predicted PNEUMONIA = images 2,3,5,6,7,8,9 -> TP 5, FN 1, TN 2, FP 2
    b = m["binary"]
    assert b["positive_class"] == "PNEUMONIA" and b["threshold"] == 0.5
    assert b["sensitivity"] == pytest.approx(5 / 6)
    assert b["specificity"] == pytest.approx(2 / 4)
    # ROC-AUC: of the 24 (positive, negative) pairs, 18 rank the positive higher
    assert b["roc_auc"] == pytest.approx(18 / 24) and m["roc_auc"] == b["roc_auc"]
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["balanced_accuracy"] == pytest.approx((5 / 6 + 2 / 4) / 2)
    f1_p, f1_n = 2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6), 2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2)
    assert m["macro_f1"] == pytest.approx((f1_p + f1_n) / 2)
    assert m["per_class"]["PNEUMONIA"] == pytest.approx({"precision": 5 / 7, "recall": 5 / 6, "f1": f1_p, "support": 6})
    assert m["per_class"]["NORMAL"] == pytest.approx({"precision": 2 / 3, "recall": 1 / 2, "f1": f1_n, "support": 4})
    assert m["confusion_matrix"] == {"labels": CLASSES, "matrix": [[2, 2], [1, 5]]}
    assert m["num_samples"] == 10


def test_the_other_class_as_positive():
    m = classification_metrics(Y, PROBA, CLASSES, positive="NORMAL")
    # P(NORMAL) >= 0.5 for images 0, 1, 4: TP 2 of 4 NORMAL, TN 5 of 6 PNEUMONIA
    b = m["binary"]
    assert b["positive_class"] == "NORMAL"
    assert b["sensitivity"] == pytest.approx(2 / 4)
    assert b["specificity"] == pytest.approx(5 / 6)
    assert b["roc_auc"] == pytest.approx(18 / 24)


def test_threshold_moves_the_operating_point():
    m = classification_metrics(Y, PROBA, CLASSES, positive="PNEUMONIA", threshold=0.7)
    # P >= 0.7 (inclusive): images 3, 7, 8, 9 -> TP 3 of 6, FP 1 of 4
    assert m["binary"]["threshold"] == 0.7
    assert m["binary"]["sensitivity"] == pytest.approx(3 / 6)
    assert m["binary"]["specificity"] == pytest.approx(3 / 4)
    assert m["binary"]["roc_auc"] == pytest.approx(18 / 24)  # threshold-free
    assert m["confusion_matrix"]["matrix"] == [[3, 1], [3, 3]]


def test_default_positive_is_the_second_class():
    assert resolve_positive(CLASSES, None) == 1
    m = classification_metrics(Y, PROBA, CLASSES)
    assert m["binary"]["positive_class"] == "PNEUMONIA"


def test_positive_errors():
    with pytest.raises(DataError) as info:
        resolve_positive(CLASSES, "COVID")
    assert "'COVID' is not a class" in str(info.value) and "PNEUMONIA" in str(info.value)
    with pytest.raises(DataError, match="only applies to binary tasks"):
        resolve_positive(["a", "b", "c"], "a")
    assert resolve_positive(["a", "b", "c"], None) is None


def test_predict_labels():
    assert predict_labels(PROBA, 1, 0.5).tolist() == [0, 0, 1, 1, 0, 1, 1, 1, 1, 1]
    assert predict_labels(PROBA, 0, 0.5).tolist() == [0, 0, 1, 1, 0, 1, 1, 1, 1, 1]
    assert predict_labels(PROBA, 1, 0.9).tolist() == [0] * 8 + [1, 1]
    three = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    assert predict_labels(three).tolist() == [1, 0, 2]


def test_multiclass_has_ovr_auc_and_no_binary_block():
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]])
    m = classification_metrics(y, proba, ["a", "b", "c"])
    assert "binary" not in m and "roc_auc" not in m
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    from sklearn.metrics import roc_auc_score

    assert m["roc_auc_ovr_macro"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # sklearn's, expected here
def test_single_class_present_gives_nan_auc_not_an_exception():
    y = np.array([1, 1, 1])
    m = classification_metrics(y, PROBA[5:8], CLASSES)
    assert math.isnan(m["binary"]["roc_auc"])
    assert math.isnan(m["binary"]["specificity"])  # no negatives
    assert m["binary"]["sensitivity"] == 1.0


def test_macro_f1_averages_over_the_classes_that_occur():
    """A folder holding two of three classes, all predicted right: macro F1 was 0.667 (the absent class counted as 0)
    beside accuracy and balanced accuracy of 1."""
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    m = classification_metrics(y, proba, ["a", "b", "c"])
    assert m["accuracy"] == 1.0 and m["balanced_accuracy"] == 1.0 and m["macro_f1"] == 1.0
    proba[3] = [0.1, 0.2, 0.7]  # now "c" is predicted once, wrongly: it counts, with F1 0
    m = classification_metrics(y, proba, ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)


def test_bad_arguments_are_refused_at_the_boundary_with_what_to_do():
    """Empty labels, NaN probabilities, no class names and a threshold outside [0, 1] were scikit-learn's errors
    ("Found empty input array", "Input contains NaN"), a TypeError from len(None), or silently accepted."""
    from transferkit.errors import ConfigError

    with pytest.raises(DataError, match="y_true is empty: metrics need at least one labelled example"):
        classification_metrics(np.array([], dtype=int), np.zeros((0, 2)), CLASSES)
    with pytest.raises(DataError, match="y_true is empty"):
        classification_metrics(np.array([], dtype=int), np.zeros((0, 3)), ["a", "b", "c"])
    bad = PROBA.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match=r"proba has 1 row\(s\) with NaN or infinite values"):
        classification_metrics(Y, bad, CLASSES)
    with pytest.raises(DataError, match="classes must be the list of class names"):
        classification_metrics(Y, PROBA, None)
    for t in (2.0, -0.1, float("nan")):
        with pytest.raises(ConfigError, match=r"threshold must be a probability in \[0, 1\]"):
            classification_metrics(Y, PROBA, CLASSES, positive="PNEUMONIA", threshold=t)
    with pytest.raises(DataError, match=r"1-D class indices .* For one-hot labels pass y_true.argmax\(1\)"):
        classification_metrics(np.eye(2)[Y], PROBA, CLASSES)
    # valid calls are unchanged: class names as an array, the threshold's end points
    assert classification_metrics(Y, PROBA, np.array(CLASSES))["accuracy"] == pytest.approx(7 / 10)
    assert classification_metrics(Y, PROBA, CLASSES, threshold=1.0)["binary"]["threshold"] == 1.0
