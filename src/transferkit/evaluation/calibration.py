"""Calibration: expected calibration error, reliability bins, temperature scaling.

Temperature scaling (Guo et al., 2017) divides the logits by one scalar ``T`` fitted by
minimising the negative log-likelihood on the *validation* split; it changes confidence, never
the arg-max. The fitted ``T`` is stored in the model folder's ``config.json`` (``temperature``)
and applied by ``TransferModel.predict``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from ..errors import ConfigError, DataError, ModelFolderError, NotFittedError, TransferKitError
from .metrics import check_class_indices


def logits_from_proba(proba: np.ndarray, eps: float = 1e-30) -> np.ndarray:
    """Log-probabilities: logits up to a per-row constant, which softmax ignores."""
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), eps, None))


def negative_log_likelihood(logits: np.ndarray, y_true: np.ndarray, temperature: float = 1.0) -> float:
    """Mean cross-entropy of ``softmax(logits / temperature)``."""
    logp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(y_true)), np.asarray(y_true)].mean())


@dataclass(frozen=True)
class ReliabilityBins:
    """Top-label confidence vs accuracy in equal-width bins (the reliability diagram's data)."""

    edges: np.ndarray
    confidence: np.ndarray  # mean confidence per bin (nan when empty)
    accuracy: np.ndarray  # accuracy per bin (nan when empty)
    counts: np.ndarray
    ece: float


def reliability_bins(y_true: np.ndarray, proba: np.ndarray, *, num_bins: int = 15) -> ReliabilityBins:
    """Bin the top-label confidence; ECE = sum over bins of |accuracy - confidence| * share. ``num_bins``: a positive
    integer."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, Integral) or num_bins < 1:
        raise ConfigError(f"num_bins must be a positive integer (the number of equal-width confidence bins, 15 by default); "
                          f"got {num_bins!r}.")
    num_bins = int(num_bins)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise DataError(f"expected proba (N, C) and N labels; got shapes {proba.shape} and {np.shape(y_true)}.")
    y_true = check_class_indices(y_true, proba.shape[1])
    conf = proba.max(1)
    correct = (proba.argmax(1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, num_bins - 1)
    counts = np.bincount(which, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=num_bins) / counts
        mean_acc = np.bincount(which, weights=correct, minlength=num_bins) / counts
    filled = counts > 0
    ece = float(np.sum(np.abs(mean_acc[filled] - mean_conf[filled]) * counts[filled]) / max(len(y_true), 1))
    return ReliabilityBins(edges, mean_conf, mean_acc, counts, ece)


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, *, num_bins: int = 15) -> float:
    """Top-label ECE with ``num_bins`` equal-width bins."""
    return reliability_bins(y_true, proba, num_bins=num_bins).ece


class TemperatureScaler:
    """One temperature for all classes, fitted on validation logits by minimising the NLL.

    >>> scaler = TemperatureScaler().fit(val_logits, y_val)
    >>> scaler.temperature_, scaler.predict_proba(test_logits)
    """

    def __init__(self, *, bounds: tuple[float, float] = (0.05, 20.0)):
        """``bounds``: the lowest and highest temperature the fit may choose, ``0 < low < high``."""
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            low = high = float("nan")
        if not (0.0 < low < high < float("inf")):
            raise ConfigError(f"bounds must be two temperatures (low, high) with 0 < low < high, e.g. (0.05, 20.0); got {bounds!r}.")
        self.bounds = bounds

    def fit(self, logits: np.ndarray, y_true: np.ndarray, *, classes: Sequence[str] | None = None) -> "TemperatureScaler":
        """Fit ``temperature_`` (1 with a ``note_`` saying why when no temperature can be fitted: a validation split that
        holds fewer than all classes, or one classified without an error). ``classes``: names for that note."""
        logits, y_true = np.asarray(logits, dtype=np.float64), np.asarray(y_true)
        if logits.ndim != 2 or len(logits) != len(y_true) or len(y_true) == 0:
            raise TransferKitError(f"expected logits (N, C) and N labels; got shapes {logits.shape} and {y_true.shape}.")
        y_true = check_class_indices(y_true, logits.shape[1])
        if not np.isfinite(logits).all():
            raise DataError("the logits contain NaN or infinite values: the temperature cannot be fitted on them.")
        if logits.shape[1] > 1 and logits.min() >= 0 and logits.max() <= 1 and np.allclose(logits.sum(1), 1.0, atol=1e-4):
            raise DataError("these look like probabilities (every row in [0, 1] and summing to 1), not logits: temperature "
                            "scaling divides logits, so pass logits_from_proba(proba) (the fitted T then applies to it too).")
        lo, hi = np.log(self.bounds[0]), np.log(self.bounds[1])
        self.nll_before_ = negative_log_likelihood(logits, y_true, 1.0)
        self.note_ = None
        missing = sorted(set(range(logits.shape[1])) - set(y_true.tolist()))
        if missing:
            # e.g. a split of one class (a 40:3 data set's stratified 15 % carve can hold no minority image): its NLL only
            # asks how sure the model should be of the classes it holds, so T would follow them alone (towards 0 when
            # they are all right) and rescale every later prediction of the missing class(es) on no evidence: no scaling
            self.temperature_, self.nll_after_ = 1.0, self.nll_before_
            self.note_ = _missing_classes_note(missing, sorted(set(y_true.tolist())), classes)
            return self
        res = minimize_scalar(lambda log_t: negative_log_likelihood(logits, y_true, float(np.exp(log_t))), bounds=(lo, hi), method="bounded")
        t = float(np.exp(res.x))
        # never worse than doing nothing (the optimiser is bounded and 1-D, so this is a guard)
        nll_t = negative_log_likelihood(logits, y_true, t)
        if (logits.argmax(1) == y_true).all():
            # every validation example right: each term of the NLL falls towards 0 as T -> 0, so there is no optimum, only
            # the bound or wherever the NLL underflows to 0. That T would push every later probability to 0 or 1 (and
            # worsen a test NLL many times over): no scaling
            t, nll_t = 1.0, self.nll_before_
            self.note_ = ("not fitted: the validation split is classified without an error, so the likelihood keeps rising "
                          "as the temperature falls and has no optimum; the temperature stays 1")
        self.temperature_ = t if nll_t <= self.nll_before_ else 1.0
        if self.note_ is None and self.temperature_ != 1.0 and min(abs(np.log(t) - lo), abs(np.log(t) - hi)) < 1e-3:
            self.note_ = (f"the optimum lies at or beyond the bound T = {t:.3g} (bounds {self.bounds}): the temperature is "
                          "clipped there")
        self.nll_after_ = min(nll_t, self.nll_before_)
        return self

    def predict_proba(self, logits: np.ndarray) -> np.ndarray:
        if not hasattr(self, "temperature_"):
            raise NotFittedError("TemperatureScaler is not fitted yet: call fit(val_logits, y_val) first.")
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature_, axis=1)


def _missing_classes_note(missing: list[int], present: list[int], classes: Sequence[str] | None) -> str:
    def name(i: int) -> str:
        return repr(str(classes[i])) if classes is not None and i < len(classes) else f"index {i}"

    return (f"not fitted: the validation split holds no example of class {', '.join(map(name, missing))} (only of "
            f"{', '.join(map(name, present))}), so a temperature fitted on it would say nothing about how sure the model "
            "should be of the missing class(es); the temperature stays 1. Add examples of that class (so that the validation "
            "carve gets some), or give a validation split that holds every class (images: a val/ folder beside train/; texts: a "
            "folder holding train.*, val.* and test.* files)")


def calibrate_on_validation(y_val: np.ndarray, proba_val: np.ndarray, *,
                            classes: Sequence[str] | None = None) -> dict[str, float | str] | None:
    """The temperature a fit saves with its model: fitted on the validation split's probabilities (temperature 1), so
    ``predict`` gives calibrated confidences whether or not a report is written. None when validation is empty. A split
    that holds fewer than all classes, or no error, fits none: the temperature stays 1 and ``note`` says why (``classes``:
    the class names it uses)."""
    y_val = np.asarray(y_val)
    if len(y_val) == 0:
        return None
    scaler = TemperatureScaler().fit(logits_from_proba(proba_val), y_val, classes=classes)
    return {"temperature": scaler.temperature_, "fitted_on": "validation split (NLL)", "val_nll_before": scaler.nll_before_,
            "val_nll_after": scaler.nll_after_, **({"note": scaler.note_} if scaler.note_ else {})}


def calibrated_threshold(threshold: float, temperature: float) -> float:
    """A binary threshold on the uncalibrated P(positive), expressed on the temperature-scaled P(positive) that
    ``predict`` and ``evaluate`` compare with it: the same decisions, on the scale they are made on."""
    t = min(max(float(threshold), 1e-300), 1.0)
    if t >= 1.0 or temperature == 1.0:
        return t
    a, b = np.log(t) / temperature, np.log1p(-t) / temperature
    return float(1.0 / (1.0 + np.exp(b - a)))


def save_temperature(model_dir: str | os.PathLike, temperature: float) -> Path:
    """Write ``temperature`` into a model folder's config.json (atomically); predict uses it."""
    model_dir = Path(model_dir)
    if (model_dir / "model" / "config.json").is_file():
        model_dir = model_dir / "model"
    path = model_dir / "config.json"
    if not path.is_file():
        raise ModelFolderError(f"no config.json in '{model_dir}': expected a model folder (RUN/model).")
    cfg = json.loads(path.read_text())
    cfg["temperature"] = float(temperature)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(cfg, indent=2))
    os.replace(tmp, path)
    return path
