"""Exploration (fifth session), train + val only, test never read: does refitting the logistic head on all labelled
images, with its C chosen by cross-validation, beat the shipped protocol (C chosen on a 15 % validation carve, head fitted
on the other 85 %)?

Nested: outer StratifiedGroupKFold(5) over train + val with subjects kept together (bench/_common.exploration_subject:
pneumonia patients, plant photo series), repeated for 3 seeds. In each outer-train part:
- carve:  HeadTrainer(hidden_dim=0, linear_refit=False), the protocol shipped until the fifth session: a stratified 15 %
          validation carve by image, C by its loss, the head fitted on the other 85 %;
- refit:  HeadTrainer(hidden_dim=0, linear_refit=True), the default since: C by 5-fold stratified CV log loss on the whole
          outer-train part (carve + rest), then refitted on all of it (as LogisticRegressionCV).
Both are scored on the outer fold (subjects unseen): accuracy, balanced accuracy, log loss.

    OMP_NUM_THREADS=1 .venv/bin/python bench/lp_refit_cv.py plants tf_efficientnet_lite0 mobilenet_v2
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_EPILOG, exploration_subject, require_data, split_features  # noqa: E402


def main(data_name: str, backbones: list[str]) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    from transferkit.config import HeadConfig, HeadTrainConfig
    from transferkit.training import HeadTrainer

    warnings.simplefilter("ignore", ConvergenceWarning)
    data = require_data(data_name)
    for name in backbones:
        splits, X, y = split_features(data, name)
        recs = splits.train + splits.val
        Xa = np.concatenate([X["train"], X["val"]]).astype(np.float32)
        ya = np.concatenate([y["train"], y["val"]])
        g = np.array([exploration_subject(r.path) for r in recs])
        k = int(ya.max() + 1)
        rows = {"carve": [], "refit": []}
        for seed in (0, 1, 2):
            outer = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
            for tr, te in outer.split(Xa, ya, g):
                Xtr, ytr = Xa[tr], ya[tr]
                # both through the product's HeadTrainer, on the same 85 / 15 carve of the outer-train part
                a, b = train_test_split(np.arange(len(tr)), test_size=0.15, stratify=ytr, random_state=seed)
                for proto, refit in (("carve", False), ("refit", True)):
                    t = HeadTrainer(HeadConfig(hidden_dim=0), HeadTrainConfig(linear_refit=refit), progress=False)
                    t.fit(Xtr[a], ytr[a], Xtr[b], ytr[b], num_classes=k)
                    assert (t.refit_ is not None) == refit
                    rows[proto].append(_score(t.predict_proba(Xa[te]), ya[te], k, accuracy_score, balanced_accuracy_score, log_loss))
        for proto, r in rows.items():
            r = np.array(r)
            print(f"{data_name} {name} {proto:5s}  acc {r[:, 0].mean():.4f} ± {r[:, 0].std():.4f}  bal {r[:, 1].mean():.4f}  "
                  f"logloss {r[:, 2].mean():.4f}  (15 outer folds)", flush=True)
        d = np.array(rows["refit"])[:, 0] - np.array(rows["carve"])[:, 0]
        print(f"{data_name} {name} refit - carve accuracy: {d.mean():+.4f} (paired over 15 folds; wins {int((d > 0).sum())}, "
              f"ties {int((d == 0).sum())}, losses {int((d < 0).sum())})", flush=True)


def _score(p, y, k, acc, bal, ll):
    p = np.asarray(p, np.float64)
    p = p / p.sum(1, keepdims=True)  # float32 softmax rows sum to 1 within 1e-7 only
    return [acc(y, p.argmax(1)), bal(y, p.argmax(1)), ll(y, p, labels=list(range(k)))]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    p.add_argument("data", metavar="DATASET", help="image data set by name under the data root (plants, pneumonia); only train + val are read")
    p.add_argument("backbones", nargs="+", metavar="BACKBONE", help="backbone names, e.g. tf_efficientnet_lite0 mobilenet_v2; the carve and refit protocols are compared per backbone")
    return p


if __name__ == "__main__":
    args = build_parser().parse_args()
    main(args.data, args.backbones)
