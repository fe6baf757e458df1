"""Operating points: the threshold chosen on validation meets its target there."""

import numpy as np
import pytest

from transferkit.errors import TransferKitError
from transferkit.evaluation.operating_point import choose_threshold, find_operating_point, sensitivity_specificity


def _scores(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.5 * y)))
    return y, score


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 0.99])
def test_sensitivity_target_met_on_validation_and_tightest(target):
    y, s = _scores(400, 0)
    thr = choose_threshold(y, s, target="sensitivity", value=target)
    sens, spec = sensitivity_specificity(y, s, thr)
    assert sens >= target
    # tightest: the next higher distinct score would miss the target
    higher = np.unique(s[s > thr])
    if len(higher):
        assert sensitivity_specificity(y, s, higher[0])[0] < target


@pytest.mark.parametrize("target", [0.8, 0.95])
def test_specificity_target_met_on_validation_and_tightest(target):
    y, s = _scores(400, 1)
    thr = choose_threshold(y, s, target="specificity", value=target)
    assert sensitivity_specificity(y, s, thr)[1] >= target
    lower = np.unique(s[s < thr])
    if len(lower):
        assert sensitivity_specificity(y, s, lower[-1])[1] < target


def test_find_operating_point_reports_test_intervals():
    yv, sv = _scores(300, 2)
    yt, st = _scores(2000, 3)  # same distribution: the test estimate should sit near the target
    op = find_operating_point(yv, sv, yt, st, target="sensitivity", value=0.9, num_resamples=300)
    assert op.met_on_val and op.val_sensitivity >= 0.9
    iv = op.test["sensitivity"]
    assert iv.low <= iv.estimate <= iv.high
    assert abs(iv.estimate - 0.9) < 0.06
    assert op.to_dict()["test"]["specificity"]["high"] <= 1


def test_operating_point_errors_are_clear():
    y, s = _scores(50, 4)
    with pytest.raises(TransferKitError, match=r"must be in \(0, 1\]"):
        choose_threshold(y, s, target="sensitivity", value=1.5)
    with pytest.raises(TransferKitError, match="both classes"):
        choose_threshold(np.ones(5, bool), s[:5], target="sensitivity", value=0.9)


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_a_threshold_moved_to_the_calibrated_scale_makes_the_same_decisions(temperature):
    from scipy.special import softmax

    from transferkit.evaluation.calibration import calibrated_threshold, logits_from_proba

    _, s = _scores(500, 5)
    proba = np.stack([1 - s, s], 1)
    calibrated = softmax(logits_from_proba(proba) / temperature, axis=1)[:, 1]  # what predict and evaluate compare
    for t in (0.05, 0.2072, 0.5, 0.9978):
        tc = calibrated_threshold(t, temperature)
        assert np.array_equal(s >= t, calibrated >= tc - 1e-12)
        assert (tc == pytest.approx(t)) == (temperature == 1.0 or t == 0.5)
