"""Choosing the head on the user's data: K-fold cross-validation inside train + val.

A head with a hidden layer wins on some data sets and loses on others (bench/RESULTS.md: 5-fold CV
inside train prefers one hidden layer of 256 on the pneumonia X-rays, a single Dense layer on
the plant leaves), so ``HeadConfig(hidden_dim="auto")`` decides per data set. Augmented training
copies (``train_views``) likewise help on some data sets (the leaves) and not on others, so ``train_views="auto"``
puts "with copies" and "without" side by side in the same CV. Only training-side data is read: the test
split never is. Each fold's held-out part both stops a candidate's training early and scores it, the
same for every candidate; copies train only where the image they copy trains. With subject ids
(``groups``) the folds keep a subject's examples together (StratifiedGroupKFold), so a head that
memorises subjects is not rewarded.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import HeadConfig, HeadTrainConfig
from ..crossval import smallest_class, stratified_folds
from ..progress import track

# kept when the data are too few to cross-validate (fewer than 2 examples/subjects in a class)
FALLBACK_WIDTH = 256


def width_label(width: int | None) -> str:
    return f"hidden {width}" if width else "linear"


def candidate_label(width: int | None, copies: bool | None) -> str:
    """``linear``, ``hidden 256``; with ``copies`` compared, ``+ copies`` or ``no copies`` after it."""
    return width_label(width) + ("" if copies is None else " + copies" if copies else ", no copies")


@dataclass
class HeadChoice:
    """What ``choose_head`` decided, and on which evidence (mean over folds per candidate).

    ``copies``: whether the head trains on the augmented copies too; None when that was not a question (no copies, or
    copies asked for outright)."""

    hidden_dim: int | None
    folds: int
    grouped: bool
    scores: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    copies: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"hidden_dim": self.hidden_dim, "chosen": candidate_label(self.hidden_dim, self.copies), "folds": self.folds,
                "grouped": self.grouped, **({"copies": self.copies} if self.copies is not None else {}),
                "criterion": "mean balanced accuracy over folds; a tie keeps the simpler candidate", "candidates": self.scores, "reason": self.reason}

    def summary(self) -> str:
        return describe_head_choice(self.as_dict())


def describe_head_choice(choice: dict[str, Any]) -> str:
    """One line on a head choice, from :meth:`HeadChoice.as_dict` (as saved in metrics.json ``training.head_selection``)."""
    per = ", ".join(f"{c['label']} {c['balanced_accuracy']:.3f} ± {c.get('balanced_accuracy_std', 0):.3f}" for c in choice.get("candidates", []))
    if not per:
        return f"{choice.get('chosen', '?')} ({choice.get('reason', '')})"
    grouped = "grouped " if choice.get("grouped") else ""
    return (f"{choice.get('chosen', '?')}: {choice.get('folds')}-fold {grouped}CV on train + val, mean balanced accuracy "
            f"{per} (test not read)")


def describe_train_views(record: dict[str, Any]) -> str:
    """One line on the head's augmented training copies (``metrics.json`` ``training.train_views``)."""
    used = (f"the head also trained on {record['copies_per_image']} augmented copies of each image (cached)" if record.get("rows")
            else "the head trained on the images alone")
    if record.get("requested") != "auto":
        return used
    preferred = ("preferred them to the images alone" if record.get("rows")
                 else f"preferred that to {record.get('compared')} augmented copies of each")
    return f"{used}; the head's CV on train + val {preferred} (test not read)"


def describe_refit(refit: dict[str, Any]) -> str:
    """One line for a logistic head refitted on train + val (``metrics.json`` ``training.refit``)."""
    return (f"logistic regression, C={refit['C']:g} by {refit['folds']}-fold{' grouped' if refit.get('grouped') else ''} CV log loss, "
            f"refitted on all {refit['fitted_on']} train + val examples"
            + (f" and {refit['augmented_rows']} augmented copies" if refit.get("augmented_rows") else "")
            + " (validation numbers are out-of-fold)")


def choose_head(X: np.ndarray, y: np.ndarray, *, num_classes: int, head: HeadConfig | None = None,
                train: HeadTrainConfig | None = None, groups: np.ndarray | list[str] | None = None,
                augmented: tuple[np.ndarray, np.ndarray] | None = None, compare_copies: bool = False,
                progress: bool = False) -> HeadChoice:
    """Pick the head by K-fold CV of the full head training on ``X, y``: its hidden width among ``head.candidates``
    (``head.hidden_dim="auto"``; a fixed width is the only candidate otherwise) and, with ``compare_copies``, whether
    it also trains on the ``augmented`` copies.

    ``X, y``: training-side features and labels (train + val; never test). ``augmented``: (rows, owner) features of
    augmented copies and the index in ``X`` each copies; a copy trains only in folds where its original trains. Without
    ``compare_copies`` every candidate trains on them. Returns a :class:`HeadChoice`; with too few examples per class
    to cross-validate it keeps ``FALLBACK_WIDTH`` (or the fixed width) without copies, and says why.
    """
    from sklearn.metrics import balanced_accuracy_score, log_loss

    from .head_trainer import HeadTrainer, subset_augmented

    head = head or HeadConfig()
    train = train or HeadTrainConfig()
    X, y = np.asarray(X, np.float32), np.asarray(y, np.int64)
    widths = list(dict.fromkeys(w or None for w in head.candidates)) if head.hidden_dim == "auto" else [head.hidden_dim or None]
    compare = compare_copies and augmented is not None and len(augmented[1]) > 0
    candidates = [(w, c) for w in widths for c in ((False, True) if compare else (None,))]
    g = None if groups is None else np.asarray(groups)
    smallest = smallest_class(y, g)
    k = min(head.cv_folds, smallest)
    if len(candidates) == 1 or k < 2 or len(np.unique(y)) < 2:
        fallback = widths[0] if len(widths) == 1 else (FALLBACK_WIDTH if FALLBACK_WIDTH in widths else widths[-1])
        why = ("one candidate" if len(candidates) == 1 else
               f"too few {'subjects' if g is not None else 'examples'} per class to cross-validate (smallest: {smallest}); "
               f"kept {candidate_label(fallback, False if compare else None)}")
        return HeadChoice(fallback, folds=0, grouped=g is not None, reason=why, copies=False if compare else None)
    folds = stratified_folds(y, k, train.seed, g)
    scores = []
    fold_train = train.model_copy(update={"linear_refit": False})  # each fold's own held-out part judges C, as before
    with track("choosing head (CV)", len(candidates) * len(folds), unit="fit", enabled=progress) as advance:
        for width, copies in candidates:
            bal, losses = [], []
            cfg = head.model_copy(update={"hidden_dim": width or None})  # None: a single layer (model_copy skips the 0 -> None validator)
            for tr, te in folds:
                trainer = HeadTrainer(cfg, fold_train, progress=False).fit(
                    X[tr], y[tr], X[te], y[te], num_classes, augmented=subset_augmented(augmented, tr) if copies is not False else None)
                proba = trainer.predict_proba(X[te])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a grouped fold may miss a class: the score is still defined
                    bal.append(balanced_accuracy_score(y[te], proba.argmax(1)))
                    losses.append(log_loss(y[te], np.clip(proba, 1e-7, 1), labels=list(range(num_classes))))
                advance()
            scores.append({"hidden_dim": width, **({"copies": copies} if copies is not None else {}), "label": candidate_label(width, copies),
                           "balanced_accuracy": float(np.mean(bal)), "balanced_accuracy_std": float(np.std(bal)),
                           "log_loss": float(np.mean(losses))})
    # a tie keeps the simpler candidate (the earlier: the narrower head, no copies before copies). Log loss used to break
    # ties, but each fold's held-out part also stopped the training it scores, which flatters the log loss of the head
    # that early stopping tunes most (the hidden one): on 10 images a class it won ties at 0.967 and scored 0.556 on
    # test where the linear head scored 0.889
    best = max(scores, key=lambda s: round(s["balanced_accuracy"], 10))
    return HeadChoice(best["hidden_dim"], folds=len(folds), grouped=g is not None, scores=scores, copies=best.get("copies"),
                      reason="highest mean balanced accuracy over folds (a tie keeps the simpler head)")
