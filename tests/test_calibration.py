"""Calibration: ECE on known cases, temperature scaling on simulated over-confident logits."""

import json

import numpy as np
import pytest
from scipy.special import softmax

from transferkit.errors import ModelFolderError, NotFittedError
from transferkit.evaluation.calibration import (
    TemperatureScaler,
    expected_calibration_error,
    logits_from_proba,
    negative_log_likelihood,
    save_temperature,
)


def _simulated(n, num_classes, true_temperature, seed):
    """Labels drawn from softmax(z); the model reports z * true_temperature (over-confident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, num_classes))
    y = np.array([rng.choice(num_classes, p=p) for p in softmax(z, 1)])
    return z * true_temperature, y


def test_ece_known_case():
    # every prediction says 0.9 for its top class, and 60 % are right -> ECE = 0.3
    proba = np.tile([0.9, 0.1], (10, 1))
    y = np.array([0] * 6 + [1] * 4)
    assert expected_calibration_error(y, proba) == pytest.approx(0.3)
    # perfectly calibrated in one bin: confidence 0.75, 3 of 4 right
    assert expected_calibration_error(np.array([0, 0, 0, 1]), np.tile([0.75, 0.25], (4, 1))) == pytest.approx(0.0)


def test_temperature_scaling_lowers_validation_nll_and_recovers_temperature():
    logits, y = _simulated(3000, 4, true_temperature=3.0, seed=0)
    scaler = TemperatureScaler().fit(logits, y)
    assert scaler.nll_after_ < scaler.nll_before_ - 0.05
    assert negative_log_likelihood(logits, y, scaler.temperature_) < negative_log_likelihood(logits, y)
    assert scaler.temperature_ == pytest.approx(3.0, rel=0.15)
    # and it transfers to fresh data from the same model (lower ECE on a held-out set)
    test_logits, y_test = _simulated(3000, 4, true_temperature=3.0, seed=1)
    assert expected_calibration_error(y_test, scaler.predict_proba(test_logits)) < expected_calibration_error(y_test, softmax(test_logits, 1))
    # arg-max never changes
    assert (scaler.predict_proba(test_logits).argmax(1) == test_logits.argmax(1)).all()


def test_temperature_from_probabilities_equals_from_logits():
    logits, y = _simulated(500, 3, true_temperature=2.0, seed=2)
    t_logits = TemperatureScaler().fit(logits, y).temperature_
    t_proba = TemperatureScaler().fit(logits_from_proba(softmax(logits, 1)), y).temperature_
    assert t_proba == pytest.approx(t_logits, rel=1e-3)


def test_calibrated_model_stays_near_one():
    logits, y = _simulated(4000, 3, true_temperature=1.0, seed=3)
    assert TemperatureScaler().fit(logits, y).temperature_ == pytest.approx(1.0, abs=0.12)


def test_unfitted_scaler_says_what_to_do():
    with pytest.raises(NotFittedError, match="call fit"):
        TemperatureScaler().predict_proba(np.zeros((2, 2)))


def test_save_temperature_writes_model_config(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text(json.dumps({"format": "x", "threshold": 0.5}))
    save_temperature(tmp_path, 1.7)  # a run folder: goes into model/
    cfg = json.loads((tmp_path / "model" / "config.json").read_text())
    assert cfg == {"format": "x", "threshold": 0.5, "temperature": 1.7}
    with pytest.raises(ModelFolderError, match="model folder"):
        save_temperature(tmp_path / "nope", 1.0)


def test_the_temperature_refuses_probabilities_bad_labels_and_nan_and_says_when_it_is_clipped():
    from scipy.special import softmax

    from transferkit.errors import DataError
    from transferkit.evaluation.calibration import TemperatureScaler, expected_calibration_error, logits_from_proba

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    Z = rng.normal(size=(400, 3)) * 3 + 2.5 * np.eye(3)[y]
    P = softmax(Z, axis=1)
    with pytest.raises(DataError, match="look like probabilities.*logits_from_proba"):
        TemperatureScaler().fit(P, y)  # used to return T = 0.62 where the logits' T is 3.18
    assert TemperatureScaler().fit(logits_from_proba(P), y).temperature_ == pytest.approx(TemperatureScaler().fit(Z, y).temperature_, rel=1e-4)
    with pytest.raises(DataError, match="class indices 0..2, not <U1 values"):
        TemperatureScaler().fit(Z[:3], np.array(["a", "b", "c"]))
    with pytest.raises(DataError, match="class indices 0..2; got 0..3"):
        TemperatureScaler().fit(Z[:2], np.array([0, 3]))
    bad = Z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        TemperatureScaler().fit(bad, y)
    # confidently wrong logits want a temperature above the upper bound: it is clipped there, with a note
    wrong = 50.0 * np.eye(3)[(y + 1) % 3] + rng.normal(size=(400, 3))
    wrong[:200] = 50.0 * np.eye(3)[y[:200]]
    scaler = TemperatureScaler(bounds=(0.5, 2.0)).fit(wrong, y)
    assert scaler.temperature_ == pytest.approx(2.0, rel=1e-2) and "bound" in scaler.note_
    # ECE on class names used to count every prediction wrong (0.85 for a perfect classifier)
    with pytest.raises(DataError, match="class indices"):
        expected_calibration_error(np.array(["a", "b"]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert expected_calibration_error(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]])) == pytest.approx(0.15)


def test_classification_metrics_refuses_class_names_as_labels():
    from transferkit.errors import DataError
    from transferkit.evaluation import classification_metrics

    with pytest.raises(DataError, match="class indices 0..1, not <U1 values \\('a', 'b'"):
        classification_metrics(np.array(["a", "b"]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"])
    assert classification_metrics(np.array([0.0, 1.0]), np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"])["accuracy"] == 1.0


def test_a_validation_split_without_some_class_fits_no_temperature_and_says_why():
    """A 40:3 data set's stratified validation carve can hold no minority image: the temperature was fitted on the
    majority class alone (here T = 0.38, sharpening every later probability), without a word, while a validation
    split without errors did get a note. Now T stays 1 and the note says why and what to do."""
    from transferkit.evaluation.calibration import calibrate_on_validation

    y = np.zeros(6, dtype=np.int64)  # one class only, with an error: the NLL has an optimum, but on one class
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.4, 0.6], [0.8, 0.2], [0.7, 0.3], [0.55, 0.45]])
    record = calibrate_on_validation(y, proba)
    assert record["temperature"] == 1.0 and record["val_nll_after"] == record["val_nll_before"]
    assert "no example of class index 1 (only of index 0)" in record["note"]
    record = calibrate_on_validation(y, proba, classes=["healthy", "spot"])  # with names
    assert record["temperature"] == 1.0 and "no example of class 'spot' (only of 'healthy')" in record["note"]
    assert "the temperature stays 1" in record["note"] and "Add examples of that class" in record["note"] and "val/ folder" in record["note"]
    # all right, too: the missing class is the reason given, not the missing errors
    assert "no example of class index 1" in calibrate_on_validation(y, proba[[0, 1, 3, 4, 5, 0]])["note"]
    # three classes, one missing: the same (the scaler, as the report uses it, names classes by index)
    logits, y3 = _simulated(300, 3, true_temperature=3.0, seed=4)
    keep = y3 != 2
    scaler = TemperatureScaler().fit(logits[keep], y3[keep])
    assert scaler.temperature_ == 1.0 and "no example of class index 2 (only of index 0, index 1)" in scaler.note_
    assert TemperatureScaler().fit(logits, y3).note_ is None  # every class present: fitted as before


def test_bounds_and_num_bins_are_checked_with_what_to_pass():
    """TemperatureScaler(bounds=(5, 1)) failed inside scipy at fit time, expected_calibration_error(num_bins=0) inside
    numpy."""
    from transferkit.errors import ConfigError

    for bounds in ((5, 1), (0, 1), (1, 1), (-1, 2), 5, (1, 2, 3)):
        with pytest.raises(ConfigError, match=r"bounds must be two temperatures \(low, high\) with 0 < low < high"):
            TemperatureScaler(bounds=bounds)
    for n in (0, -3, 2.5, "10", True):
        with pytest.raises(ConfigError, match="num_bins must be a positive integer"):
            expected_calibration_error(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), num_bins=n)
    assert expected_calibration_error(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]), num_bins=np.int64(15)) == pytest.approx(0.15)
    assert TemperatureScaler(bounds=[0.5, 2.0]).bounds == [0.5, 2.0]
