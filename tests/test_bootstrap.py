"""Bootstrap intervals against known cases."""

import numpy as np
import pytest

from transferkit.errors import TransferKitError
from transferkit.evaluation.bootstrap import bootstrap_classification, bootstrap_metrics


def _accuracy(y, correct):
    return float(np.mean(correct))


def test_bootstrap_interval_covers_truth_at_about_nominal_rate():
    """Simulate test sets of 200 examples from a model whose true accuracy is 0.8: the 95 %
    interval should contain 0.8 in roughly 95 % of repetitions."""
    rng = np.random.default_rng(0)
    truth, n, reps = 0.8, 200, 300
    covered = 0
    for r in range(reps):
        correct = rng.random(n) < truth
        iv = bootstrap_metrics(np.zeros(n), correct, {"accuracy": _accuracy}, num_resamples=400, seed=r)["accuracy"]
        covered += iv.low <= truth <= iv.high
    rate = covered / reps
    # binomial sd of the rate at 0.95 with 300 reps is ~0.013; percentile bootstrap runs slightly under nominal
    assert 0.89 <= rate <= 0.985, rate


def test_interval_shrinks_with_more_data_and_contains_estimate():
    rng = np.random.default_rng(1)
    widths = []
    for n in (50, 800):
        correct = rng.random(n) < 0.7
        iv = bootstrap_metrics(np.zeros(n), correct, {"acc": _accuracy}, num_resamples=500)["acc"]
        assert iv.low <= iv.estimate <= iv.high
        widths.append(iv.high - iv.low)
    assert widths[1] < widths[0] / 2  # ~1/sqrt(16) = 1/4 in theory


def test_classification_intervals_binary_and_undefined_resamples_are_dropped():
    rng = np.random.default_rng(2)
    y = np.array([1] * 40 + [0] * 3)  # so few negatives that some resamples have none
    p1 = np.clip(0.6 * y + rng.random(len(y)) * 0.5, 0, 1)
    proba = np.stack([1 - p1, p1], 1)
    ivs = bootstrap_classification(y, proba, ["neg", "pos"], positive="pos", num_resamples=300)
    assert set(ivs) >= {"accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "sensitivity", "specificity"}
    assert ivs["specificity"].num_resamples < 300  # resamples without a negative are not counted
    assert ivs["accuracy"].num_resamples == 300
    for iv in ivs.values():
        assert 0 <= iv.low <= iv.high <= 1


def test_bootstrap_rejects_mismatched_inputs():
    with pytest.raises(TransferKitError, match="must match"):
        bootstrap_metrics(np.zeros(3), np.zeros(4), {"a": _accuracy})


@pytest.mark.parametrize("classes,positive", [(["a", "b"], "a"), (["a", "b"], None), (["a", "b", "c", "d"], None)])
def test_fast_metrics_agree_with_scikit_learn(classes, positive):
    from transferkit.evaluation import classification_metrics
    from transferkit.evaluation.bootstrap import classification_metric_fns

    rng = np.random.default_rng(5)
    y = rng.integers(0, len(classes), 300)
    logits = rng.normal(0, 1, (300, len(classes)))
    logits[np.arange(300), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    if len(classes) == 2:  # ties in the scores: the AUC must count them one half, as scikit-learn
        proba[:, 1] = np.round(proba[:, 1], 2)
        proba[:, 0] = 1 - proba[:, 1]
    ref = classification_metrics(y, proba, classes, positive=positive, threshold=0.4)
    fast = {k: f(y, proba) for k, f in classification_metric_fns(classes, positive=positive, threshold=0.4).items()}
    for k in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert fast[k] == pytest.approx(ref[k], abs=1e-12)
    if len(classes) == 2:
        for k in ("roc_auc", "sensitivity", "specificity"):
            assert fast[k] == pytest.approx(ref["binary"][k], abs=1e-12)
    else:
        assert fast["roc_auc_ovr_macro"] == pytest.approx(ref["roc_auc_ovr_macro"], abs=1e-12)


def test_paired_loss_difference_is_the_weighted_cross_entropy_difference_with_a_paired_interval():
    import torch

    from transferkit.evaluation import paired_loss_difference

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    logits_a = rng.normal(size=(200, 3))
    logits_b = logits_a.copy()
    logits_b[np.arange(200), y] += 1.5  # b is better on every example
    pa, pb = (torch.from_numpy(v).softmax(1).numpy() for v in (logits_a, logits_b))
    w = np.array([1.0, 2.0, 0.5])
    ce = torch.nn.CrossEntropyLoss(weight=torch.tensor(w))
    direct = float(ce(torch.from_numpy(logits_b), torch.from_numpy(y)) - ce(torch.from_numpy(logits_a), torch.from_numpy(y)))
    d = paired_loss_difference(y, pa, pb, class_weight=w)
    assert d.estimate == pytest.approx(direct, abs=1e-9)
    assert d.low <= d.estimate <= d.high < 0  # decisively lower
    same = paired_loss_difference(y, pa, pa)
    assert same.estimate == same.low == same.high == 0.0
    # a small random change on a small split: the interval straddles 0
    noisy = torch.from_numpy(logits_a + rng.normal(scale=0.3, size=logits_a.shape)).softmax(1).numpy()
    n = paired_loss_difference(y[:30], pa[:30], noisy[:30])
    assert n.low < 0 < n.high


def test_with_a_class_missing_the_report_and_metrics_json_agree():
    """The report called balanced accuracy undefined (null) where metrics.json gave a number, and the two macro F1s
    averaged over different classes."""
    from transferkit.evaluation import classification_metrics
    from transferkit.evaluation.bootstrap import classification_metric_fns

    classes = ["a", "b", "c"]
    y = np.array([0, 0, 0, 1, 1, 1, 1])  # no "c"
    proba = np.array([[.8, .1, .1], [.6, .3, .1], [.2, .1, .7], [.1, .8, .1], [.3, .6, .1], [.5, .4, .1], [.2, .7, .1]])
    fns = classification_metric_fns(classes)
    m = classification_metrics(y, proba, classes)
    for name in ("balanced_accuracy", "macro_f1"):
        assert fns[name](y, proba) == pytest.approx(m[name]), name
    from transferkit.evaluation.metrics import undefined_metrics

    assert "balanced_accuracy" not in undefined_metrics(y, classes)
