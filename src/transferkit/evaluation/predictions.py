"""Per-example predictions of a run, saved at fit time so reports need no recomputation.

``RUN/predictions/{val,test}.csv``: one row per example: ``path`` (an image file, or a text's
``file:line``), ``label`` (true class index), ``true`` (class name), for text runs ``text`` (the
text itself, so the report can show it), then ``p_<class>`` per class: probabilities of the
model *before* temperature scaling (temperature 1). Reports recompute them from ``RUN/model``
and the data named in ``RUN/config.json`` (image root, or text file) when the file is missing.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TransferKitError

PREDICTIONS_DIR = "predictions"


@dataclass
class Predictions:
    """True labels and (uncalibrated) class probabilities of one split.

    ``paths``: image files, or ``file:line`` of each text; ``texts``: the texts (text runs only).
    """

    split: str
    paths: list[str]
    y_true: np.ndarray
    proba: np.ndarray
    classes: list[str]
    texts: list[str] | None = None


def predictions_path(run_dir: str | os.PathLike, split: str) -> Path:
    return Path(run_dir) / PREDICTIONS_DIR / f"{split}.csv"


def save_predictions(
    run_dir: str | os.PathLike,
    split: str,
    paths: Sequence[str | os.PathLike],
    y_true: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    *,
    classes: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
) -> Path:
    """Write ``RUN/predictions/<split>.csv`` (atomically). ``proba``: (N, C), temperature 1.

    ``texts`` (text runs): the N texts, written in a ``text`` column after ``true``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if proba.ndim != 2 or len(proba) != len(y_true) or len(paths) != len(y_true) or (texts is not None and len(texts) != len(y_true)):
        raise TransferKitError(
            f"save_predictions: got {len(paths)} paths, {len(y_true)} labels"
            + (f", {len(texts)} texts" if texts is not None else "")
            + f" and proba of shape {proba.shape}; expected N paths, N labels (N texts) and an (N, num_classes) array."
        )
    classes = list(classes) if classes is not None else [str(i) for i in range(proba.shape[1])]
    out = predictions_path(run_dir, split)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "true", *(["text"] if texts is not None else []), *[f"p_{c}" for c in classes]])
        for i, (p, y, row) in enumerate(zip(paths, y_true, proba)):
            w.writerow([str(p), int(y), classes[int(y)], *([texts[i]] if texts is not None else []), *[repr(float(v)) for v in row]])
    os.replace(tmp, out)
    return out


def load_predictions(run_dir: str | os.PathLike, split: str) -> Predictions:
    path = predictions_path(run_dir, split)
    if not path.is_file():
        raise TransferKitError(f"no saved predictions at '{path}'.")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    first = 4 if header[3:4] == ["text"] else 3  # text runs: the text after the class name
    if header[:3] != ["path", "label", "true"] or len(header) < first + 2 or not all(h.startswith("p_") for h in header[first:]):
        raise TransferKitError(f"'{path}' is not a transferkit predictions file (header {header[:5]}…).")
    classes = [h[2:] for h in header[first:]]
    return Predictions(
        split,
        [r[0] for r in body],
        np.array([int(r[1]) for r in body], dtype=np.int64),
        np.array([[float(v) for v in r[first:]] for r in body], dtype=np.float64).reshape(len(body), len(classes)),
        classes,
        [r[3] for r in body] if first == 4 else None,
    )


def _run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        raise TransferKitError(f"'{run_dir}' is not a run folder: no config.json (written by `transferkit fit --out RUN`).")
    return json.loads(path.read_text())


def load_run_splits(run_dir: str | os.PathLike, *, progress: bool = True):
    """Rebuild the run's train/val/test splits from the data and split settings in config.json
    (an :class:`~transferkit.data.ImageSplits`, or a ``TextSplits`` for a ``fit-text`` run)."""
    from ..data import load_image_folder

    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    if "fit_text" in cfg:
        return _load_text_run_splits(run_dir, cfg["fit_text"])
    data_cfg = (cfg.get("fit") or {}).get("data") or {}
    root = data_cfg.get("root") or (cfg.get("data") or {}).get("root")
    if not root:
        raise TransferKitError(f"{run_dir}/config.json does not name its data root; cannot recompute predictions.")
    root = Path(root)
    if not root.is_dir():
        raise TransferKitError(
            f"the run's data folder '{root}' is not here (relative paths are read from the current folder); "
            "run the command where `fit` ran, or save predictions at fit time."
        )
    kwargs = {k: data_cfg[k] for k in ("val_fraction", "test_fraction", "seed", "max_pixels", "groups", "groups_file") if k in data_cfg}
    return load_image_folder(root, progress=progress, **kwargs)


def _load_text_run_splits(run_dir: Path, fit_cfg: dict):
    from ..data.text import load_text_dataset

    if fit_cfg.get("cv"):
        raise TransferKitError(f"'{run_dir}' is a --cv run: its folds have no saved test split to report on. "
                               "Fit with a test split (drop --cv, optionally --test FILE) to get a report.")
    data, test = fit_cfg.get("data"), fit_cfg.get("test")
    for f in (data, test):
        if f and not Path(f).exists():
            raise TransferKitError(f"the run's data file '{f}' is not here (relative paths are read from the current folder); "
                                   "run the command where `fit-text` ran, or save predictions at fit time.")
    return load_text_dataset(data, test=test, text_col=fit_cfg.get("text_col"), label_col=fit_cfg.get("label_col"),
                             val_fraction=fit_cfg.get("val_fraction", 0.15), test_fraction=fit_cfg.get("test_fraction", 0.2),
                             seed=fit_cfg.get("seed", 0), encoding=fit_cfg.get("encoding", "utf-8"))


def compute_predictions(run_dir: str | os.PathLike, splits, split: str, *, batch_size: int = 32, device: str = "auto",
                        progress: bool = True) -> Predictions:
    """Uncalibrated probabilities of ``RUN/model`` on one split of ``splits`` (ImageSplits or TextSplits)."""
    import torch
    from torch.utils.data import DataLoader

    from ..data import make_transforms
    from ..features import ImageRecordDataset, resolve_device
    from ..model import load
    from ..progress import track

    model = load(run_dir)
    dev = resolve_device(device)
    model.eval().to(dev)
    records = splits.split(split)
    if not hasattr(model, "data_cfg"):  # a text classifier
        texts = [r.text for r in records]
        proba = model.predict_proba(texts, batch_size=batch_size, device=dev, calibrated=False).astype(np.float64)
        return Predictions(split, [r.where for r in records], np.array([r.label for r in records], dtype=np.int64), proba,
                           list(model.classes), texts)
    loader = DataLoader(ImageRecordDataset(records, make_transforms(model.data_cfg)), batch_size=batch_size)
    chunks = []
    with track(f"{split} predictions", len(records), unit="img", enabled=progress) as advance, torch.inference_mode():
        for x, _ in loader:
            chunks.append(model(x.to(dev)).float().softmax(1).cpu().numpy())  # forward = raw logits (temperature 1)
            advance(len(x))
    proba = np.concatenate(chunks).astype(np.float64)
    return Predictions(split, [str(r.path) for r in records], np.array([r.label for r in records], dtype=np.int64), proba, list(model.classes))


def get_predictions(run_dir: str | os.PathLike, split: str, *, splits=None, save: bool = True, progress: bool = True) -> Predictions:
    """Saved predictions of ``split``, or recomputed (and then saved) when the file is missing."""
    if predictions_path(run_dir, split).is_file():
        return load_predictions(run_dir, split)
    splits = splits if splits is not None else load_run_splits(run_dir, progress=progress)
    preds = compute_predictions(run_dir, splits, split, progress=progress)
    if save:
        save_predictions(run_dir, split, preds.paths, preds.y_true, preds.proba, classes=preds.classes, texts=preds.texts)
    return preds
