"""The report's figures (matplotlib; scikit-learn's displays where they exist).

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot's global state;
:func:`figure_png` turns one into PNG bytes.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..evaluation.calibration import ReliabilityBins


# installed fonts that cover scripts DejaVu Sans lacks (CJK above all); used as fallbacks when present
_FALLBACK_FONT_HINTS = ("cjk", "han sans", "han serif", "wenquanyi", "droid sans fallback", "unifont", "arial unicode",
                        "noto sans jp", "noto sans kr", "noto sans sc", "noto sans tc", "ipagothic", "takao", "nanum")


@functools.cache
def _font_chain() -> tuple[tuple[str, str], ...]:
    """(family, file) of the default sans-serif font, then each installed fallback font."""
    from matplotlib import font_manager, rcParams

    default = font_manager.findfont(font_manager.FontProperties(family=rcParams["font.family"]))
    chain, seen = [(font_manager.FontProperties(fname=default).get_name(), default)], {default}
    for entry in font_manager.fontManager.ttflist:
        if entry.fname not in seen and any(h in entry.name.lower() for h in _FALLBACK_FONT_HINTS):
            chain.append((entry.name, entry.fname))
            seen.add(entry.fname)
    return tuple(chain)


@functools.cache
def _drawable(text: str) -> bool:
    """Whether every character of ``text`` has a glyph in one of the plotting fonts (else matplotlib draws boxes)."""
    from matplotlib.ft2font import FT2Font

    fonts = [FT2Font(path) for _, path in _font_chain()]
    return all(ch.isspace() or any(f.get_char_index(ord(ch)) for f in fonts) for ch in text)


def plot_names(classes: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Class names as the plots draw them, and the key for those replaced: a name with a character no installed font can
    draw (CJK on a machine without a CJK font) becomes ``class i``, where matplotlib would draw empty boxes. The report's
    HTML, drawn by the browser, shows the real names beside the key."""
    names = [c if _drawable(c) else f"class {i}" for i, c in enumerate(classes)]
    return names, {n: c for n, c in zip(names, classes) if n != c}


@contextlib.contextmanager
def plot_fonts() -> Iterator[None]:
    """Figures made inside use the installed fallback fonts after the default one (matplotlib >= 3.6 falls back per
    glyph), so CJK names are drawn where a CJK font is installed."""
    from matplotlib import rc_context

    families = list(dict.fromkeys(name for name, _ in _font_chain()))
    with rc_context({"font.family": families} if len(families) > 1 else {}):
        yield


def figure_png(fig: Figure, *, dpi: int = 110) -> bytes:
    """The figure as PNG bytes. Every text is drawn as written: a class name with ``$`` (``price $5``, ``$\\foo$``) would
    otherwise be parsed as matplotlib math, drawn as a formula or stop the report with a parse error."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def confusion_matrix_figure(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> Figure:
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(classes)
    fig = Figure(figsize=(max(4.0, 0.6 * n + 2.5), max(3.5, 0.6 * n + 2.0)))
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(range(n)), display_labels=list(classes), ax=ax,
                                            colorbar=False, cmap="Blues", xticks_rotation=45 if n > 4 else "horizontal")
    ax.set_title("confusion matrix (test)")
    return fig


def _one_vs_rest(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str], positive_index: int | None):
    """(name, is_class, score) per curve; a class absent from (or alone in) ``y_true`` has no curve."""
    if positive_index is not None and len(classes) == 2:
        curves = [(classes[positive_index], y_true == positive_index, proba[:, positive_index])]
    else:
        curves = [(c, y_true == i, proba[:, i]) for i, c in enumerate(classes)]
    return [(c, y, s) for c, y, s in curves if 0 < y.sum() < len(y)]


def _no_curve(ax) -> None:
    ax.text(0.5, 0.5, "undefined:\nthe test split lacks a class", ha="center", va="center", transform=ax.transAxes, color="#5b6673")


def roc_figure(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str], positive_index: int | None,
               operating_point: tuple[float, float] | None = None) -> Figure:
    """ROC curve (binary) or one curve per class, one-vs-rest; optional (1-spec, sens) marker."""
    from sklearn.metrics import RocCurveDisplay

    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    curves = _one_vs_rest(y_true, proba, classes, positive_index)
    for name, y, s in curves:
        RocCurveDisplay.from_predictions(y, s, ax=ax, name=name, plot_chance_level=False)
    if not curves:
        _no_curve(ax)
    ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=1)
    if operating_point is not None:
        ax.scatter([operating_point[0]], [operating_point[1]], c="crimson", zorder=5, label="operating point")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title("ROC (test)" + ("" if positive_index is not None else ", one-vs-rest"))
    return fig


def pr_figure(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str], positive_index: int | None) -> Figure:
    from sklearn.metrics import PrecisionRecallDisplay

    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    curves = _one_vs_rest(y_true, proba, classes, positive_index)
    for name, y, s in curves:
        PrecisionRecallDisplay.from_predictions(y, s, ax=ax, name=name)
    ax.set_title("precision-recall (test)" + ("" if positive_index is not None else ", one-vs-rest"))
    if curves:
        ax.legend(loc="lower left", fontsize=8)
    else:
        _no_curve(ax)
    return fig


def reliability_figure(before: ReliabilityBins, after: ReliabilityBins, temperature: float) -> Figure:
    """Reliability diagrams side by side: uncalibrated and temperature-scaled (test split)."""
    fig = Figure(figsize=(8.4, 3.9))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, bins, title in ((axes[0], before, "uncalibrated"), (axes[1], after, f"temperature T={temperature:.2f}")):
        centres = (bins.edges[:-1] + bins.edges[1:]) / 2
        width = bins.edges[1] - bins.edges[0]
        filled = bins.counts > 0
        ax.bar(centres[filled], bins.accuracy[filled], width=width * 0.95, color="#4c72b0", alpha=0.8, label="accuracy")
        gap = (bins.confidence - bins.accuracy)[filled]
        ax.bar(centres[filled], np.abs(gap), bottom=np.minimum(bins.accuracy, bins.confidence)[filled], width=width * 0.95,
               facecolor="none", edgecolor="#c44e52", hatch="//", lw=0.8, label="gap to mean confidence")
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top label)")
        ax.set_title(f"{title}: ECE {bins.ece:.3f}")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    return fig


def training_curves_figure(history: Sequence[dict]) -> Figure | None:
    """Loss (and accuracy) per epoch, from metrics.json's ``history``.

    LP-FT runs log two stages that each count epochs from 1 (head on cached features, then
    fine-tuning); the stages are drawn one after the other on a shared axis, with a marker
    line where fine-tuning starts, instead of on top of each other.
    """
    if not history:
        return None
    keys = sorted({k for h in history for k, v in h.items() if k not in ("epoch", "stage") and isinstance(v, (int, float))})
    if not keys:
        return None
    stages: dict[str, list[dict]] = {}
    for h in history:
        stages.setdefault(str(h.get("stage", "head")), []).append(h)
    losses = [k for k in keys if "loss" in k]
    others = [k for k in keys if k not in losses and k not in ("lr", "seconds")]  # bookkeeping, not curves
    fig = Figure(figsize=(8.4 if others else 4.8, 3.6))
    axes = fig.subplots(1, 2 if others else 1)
    axes = np.atleast_1d(axes)
    for ax, group, label in ((axes[0], losses, "loss"), *(((axes[1], others, "metric"),) if others else ())):
        offset = 0
        for n, (stage, rows) in enumerate(stages.items()):
            epochs = [offset + h.get("epoch", i + 1) for i, h in enumerate(rows)]
            if n:
                ax.axvline(offset + 0.5, color="0.5", ls=":", lw=1)
            for j, k in enumerate(group):
                name = k if len(stages) == 1 else f"{k} ({stage})"
                ax.plot(epochs, [h.get(k, np.nan) for h in rows], label=name, lw=1.5, color=f"C{j}", ls="-" if n == 0 else "--")
            offset = max(epochs, default=offset)
        ax.set_xlabel("epoch" if len(stages) == 1 else "epoch (" + ", then ".join(stages) + ")")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle("training curves")
    return fig


def ranking_figure(ranking: dict) -> Figure | None:
    """Model selection at a glance, from a saved ``ranking.json`` (``transferkit rank --json`` or
    ``fit --model auto``): predicted accuracy (with its 95 % interval) against measured batch-1
    latency, the accuracy/latency Pareto front joined by a line, the chosen model ringed, random-init
    controls hollow. Candidates that were excluded or unavailable have no point (the table lists them).
    """
    ranked = [c for c in ranking.get("candidates", []) if c.get("status") == "ranked" and c.get("predicted_accuracy") is not None]
    if not ranked:
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.subplots()
    lat = np.array([float((c.get("cost") or {}).get("latency_ms_p50") or np.nan) for c in ranked])
    acc = np.array([100 * float(c["predicted_accuracy"]) for c in ranked])
    ci = np.array([[100 * float(v) for v in (c.get("predicted_ci95") or (c["predicted_accuracy"],) * 2)] for c in ranked])
    x = np.where(np.isfinite(lat), lat, np.nanmax(lat) if np.isfinite(lat).any() else 1.0)
    ax.errorbar(x, acc, yerr=[acc - ci[:, 0], ci[:, 1] - acc], fmt="none", ecolor="0.6", elinewidth=1, capsize=3, zorder=1)
    for i, (c, xi, yi) in enumerate(zip(ranked, x, acc)):
        control = bool(c.get("is_control"))
        ax.scatter([xi], [yi], s=46, zorder=3, facecolors="none" if control else "C0", edgecolors="C0")
        # labels alternate above/below so that neighbours with equal accuracy stay readable
        ax.annotate(f"{c.get('rank')}. {c.get('label')}", (xi, yi), textcoords="offset points", xytext=(6, 5 if i % 2 == 0 else -12),
                    fontsize=7.5)
    front = sorted((xi, yi) for c, xi, yi in zip(ranked, x, acc) if c.get("on_pareto_front"))
    if len(front) > 1:
        ax.plot(*zip(*front), color="C1", lw=1.2, ls="--", zorder=2, label="Pareto front (accuracy vs latency)")
    best = ranked[0]
    ax.scatter([x[0]], [acc[0]], s=190, facecolors="none", edgecolors="C3", linewidths=1.8, zorder=4, label=f"chosen: {best.get('label')}")
    if np.isfinite(lat).all() and lat.max() / max(lat.min(), 1e-9) > 8:
        ax.set_xscale("log")
    ax.set_xlabel(f"latency at batch 1, p50 (ms, measured on {ranking.get('device', '?')})")
    ax.set_ylabel("predicted accuracy (%), 95 % interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower right")
    ax.set_title("model selection", fontsize=10)
    return fig
