"""Parity between a reference (PyTorch) model and an exported one: max |Δlogit|, top-1 agreement (images or texts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import TransferKitError


class ParityError(TransferKitError, RuntimeError):
    """The exported model does not reproduce the PyTorch model within tolerance.

    ``random_noise``: when the check ran on random-noise images instead of real ones, why (None otherwise), so a caller
    that rewords the message (``benchmark``) can still say so."""

    def __init__(self, message: str, *, random_noise: str | None = None):
        super().__init__(message)
        self.random_noise = random_noise


@dataclass(frozen=True)
class ParityReport:
    """How closely ``candidate`` logits follow ``reference`` logits on the same images."""

    stage: str  # "network" (same input tensor) or "pipeline" (files -> numpy preprocessing -> exported net)
    num_samples: int
    max_abs_logit_diff: float
    mean_abs_logit_diff: float
    max_abs_prob_diff: float
    top1_agreement: float
    atol: float | None
    min_agreement: float
    passed: bool
    unit: str = "images"  # what the samples are: "images" or "texts"

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        tol = f" (tolerance {self.atol:g})" if self.atol is not None else ""
        return (f"{self.stage}: max |Δlogit| {self.max_abs_logit_diff:.2e}{tol}, top-1 agreement "
                f"{self.top1_agreement:.1%} (min {self.min_agreement:.0%}) on {self.num_samples} {self.unit}: "
                f"{'ok' if self.passed else 'FAILED'}")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def runtime_decision(config) -> "Callable[[np.ndarray], np.ndarray]":
    """Logits -> class indices as the exported runtime decides them (:func:`transferkit.runtime.predictor.decide`):
    temperature-scaled probabilities, and for a binary model with a positive class P(positive) >= threshold. ``config``:
    the export's :class:`~transferkit.runtime.folder.ExportConfig`."""
    from ..runtime.predictor import decide, softmax

    return lambda logits: decide(softmax(np.asarray(logits), config.temperature), config.positive_index, config.threshold)


def compare_logits(reference: np.ndarray, candidate: np.ndarray, *, stage: str, atol: float | None, min_agreement: float,
                   unit: str = "images", decision: "Callable[[np.ndarray], np.ndarray] | None" = None) -> ParityReport:
    """Compare two ``(N, C)`` logit arrays; ``atol=None`` reports the difference without gating on it.

    ``decision`` (logits -> class indices; default arg-max) decides both sides for the agreement: pass
    :func:`runtime_decision` so that the gate checks the decisions ``predict`` will make. An arg-max breaks a tie
    towards class 0 while a binary threshold rule breaks it towards the positive class: an int8 model whose logits
    had collapsed to [0, 0] agreed 100 % by arg-max and labelled every image the positive class in ``predict``."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape or reference.ndim != 2 or len(reference) == 0:
        raise ParityError(f"cannot compare logits of shapes {reference.shape} and {candidate.shape}; expected two equal (N, C) arrays, N > 0.")
    diff = np.abs(reference - candidate)
    max_diff = float(diff.max())
    decide = decision or (lambda z: z.argmax(1))
    agreement = float((np.asarray(decide(reference)) == np.asarray(decide(candidate))).mean())
    passed = agreement >= min_agreement and (atol is None or max_diff <= atol) and bool(np.isfinite(candidate).all())
    return ParityReport(
        stage=stage,
        num_samples=len(reference),
        max_abs_logit_diff=max_diff,
        mean_abs_logit_diff=float(diff.mean()),
        max_abs_prob_diff=float(np.abs(_softmax(reference) - _softmax(candidate)).max()),
        top1_agreement=agreement,
        atol=atol,
        min_agreement=min_agreement,
        passed=passed,
        unit=unit,
    )
