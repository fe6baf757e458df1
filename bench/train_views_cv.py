"""Exploration (eighth session), train + val only, the test split is never read: does a frozen-base head gain from
training on the features of augmented copies of each training image (computed once, like the clean features)?

Arms, both on the library's default features (``feature_stages=3``, the weights' eval transform for scoring):
- clean:     one feature vector per training image (today's default);
- views M:   the clean vector plus M vectors of randomly augmented copies (the fine-tuning augmentation,
             ``training.augment.make_train_transform`` with ``AugmentConfig()``: random resized crop >= 70 % of the area,
             horizontal flip, +/-10 degree rotation, colour jitter 0.2), each copy with the label of its image.
Scored like ``bench/multilayer_features_cv.py``: 5-fold StratifiedGroupKFold inside train + val, subjects kept together
(``_common.exploration_subject``), standardised logistic regression (class-balanced on binary data) at C in
{0.01, 0.1, 1}; the augmented copies of an image join the training folds only, and every held-out image is scored on its
clean features. Plants by accuracy, pneumonia by ROC-AUC (balanced accuracy printed too).

Rule, fixed in the commit that adds this script, before it ran: training views (M = 4) become the default of the
frozen-base head only if "views 4" (best C) scores at least as well as "clean" (best C) on all four pairs
{plants, pneumonia} x {tf_efficientnet_lite0, mobilenet_v2} and better on their mean. Otherwise nothing changes.

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_views_cv.py plants tf_efficientnet_lite0 mobilenet_v2
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_views_cv import train_val_records  # noqa: E402
from _common import DATA_EPILOG  # noqa: E402

VIEWS = 4
CS = (0.01, 0.1, 1.0)


def extract(backbone, records, transform, *, seed: int | None = None) -> np.ndarray:
    from transferkit.data import open_image

    if seed is not None:
        torch.manual_seed(seed)
    out = []
    with torch.no_grad():
        for i in range(0, len(records), 32):
            out.append(backbone(torch.stack([transform(open_image(r.path)) for r in records[i:i + 32]])).numpy())
    return np.concatenate(out)


def cv_scores(X: np.ndarray, views: list[np.ndarray], y, g, C: float) -> dict[str, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    binary = len(set(y)) == 2
    proba = np.zeros((len(y), len(set(y))))
    for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(X, y, g):
        Xtr = np.concatenate([X[tr]] + [v[tr] for v in views])
        ytr = np.concatenate([y[tr]] * (1 + len(views)))
        m = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced" if binary else None))
        proba[te] = m.fit(Xtr, ytr).predict_proba(X[te])
    s = {"acc": accuracy_score(y, proba.argmax(1)), "bal": balanced_accuracy_score(y, proba.argmax(1))}
    if binary:
        s["auc"] = roc_auc_score(y, proba[:, 1])
    return {k: round(float(v), 4) for k, v in s.items()}


def main(data_name: str, names: list[str]) -> None:
    from sklearn.exceptions import ConvergenceWarning

    import transferkit as tk
    from transferkit.data import make_transforms
    from transferkit.training.augment import make_train_transform

    warnings.simplefilter("ignore", ConvergenceWarning)
    recs, y, g = train_val_records(data_name)
    key = "auc" if len(set(y)) == 2 else "acc"
    for name in names:
        bb = tk.load_backbone(name).eval()
        bb.feature_stages = 3
        t0 = time.perf_counter()
        X = extract(bb, recs, make_transforms(bb.data_cfg))
        aug = make_train_transform(bb.data_cfg)
        V = [extract(bb, recs, aug, seed=1000 + v) for v in range(VIEWS)]
        print(f"{data_name} {name}: {X.shape[1]} features, {len(recs)} images x {1 + VIEWS} views in {time.perf_counter() - t0:.0f} s", flush=True)
        best = {}
        for arm, views in (("clean", []), (f"views {VIEWS}", V)):
            for C in CS:
                s = cv_scores(X, views, y, g, C)
                print(f"{data_name} {name} {arm:8s} C={C:<5} {s}", flush=True)
                if arm not in best or s[key] > best[arm][key]:
                    best[arm] = s
        print(f"{data_name} {name} best {key}: clean {best['clean'][key]:.4f}, views {VIEWS} {best[f'views {VIEWS}'][key]:.4f} "
              f"({best[f'views {VIEWS}'][key] - best['clean'][key]:+.4f})", flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    p.add_argument("data", metavar="DATASET", help="image data set by name under the data root (plants, pneumonia); only train + val are read")
    p.add_argument("backbones", nargs="+", metavar="BACKBONE", help="backbone names, e.g. tf_efficientnet_lite0 mobilenet_v2; the clean and views arms are scored per backbone")
    return p


if __name__ == "__main__":
    args = build_parser().parse_args()
    main(args.data, args.backbones)
