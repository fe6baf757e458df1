"""Choose the head's default hyper-parameters by cross-validation INSIDE the training data.

The test split is never read. For each (data set, backbone), the non-test images (train +
val) are split 5-fold, stratified; every candidate configuration trains a head with early
stopping on the held-out fold; we rank configurations by mean fold accuracy (then log-loss),
averaged over the data sets and backbones.

    python bench/head_defaults.py              # stratified 5-fold
    python bench/head_defaults.py --group-cv   # folds keep a patient's / a leaf's images together

Both data sets hold several images of one subject (pneumonia: a patient, ``personN_*`` /
``IM-XXXX-*``; plants: ~4 photos of one leaf with consecutive numbers), and their test splits
hold other subjects. Plain K-fold puts one subject in both sides of a fold, which flatters
heads that memorise; ``--group-cv`` uses StratifiedGroupKFold with groups read from file names.
"""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
from sklearn.metrics import log_loss
import argparse
import re

from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from _common import DATA_EPILOG, require_data, split_features
from transferkit.config import HeadConfig, HeadTrainConfig
from transferkit.training import HeadTrainer

CASES = [("pneumonia", "mobilenet_v2"), ("pneumonia", "tf_efficientnet_lite0"), ("plants", "mobilenet_v2"), ("plants", "tf_efficientnet_lite0")]
GRID = {
    "lr": [1e-3, 3e-3, 1e-2],
    "weight_decay": [1e-4, 1e-2],
    "hidden": [None, 256],
}


def subject_group(path) -> str:
    """Subject of an image from its file name (patient for pneumonia, leaf run for plants)."""
    name = path.name
    if m := re.match(r"(person\d+)_", name):
        return m.group(1)
    if m := re.match(r"((?:NORMAL2-)?IM-\d+)-", name):
        return m.group(1)
    if m := re.match(r".*___(\S+) (\d+)", name):  # PlantVillage: <uuid>___<series> <number>
        return f"{m.group(1)}:{int(m.group(2)) // 8}"
    return name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    ap.add_argument("--group-cv", action="store_true")
    args = ap.parse_args()
    if args.group_cv:
        GRID["lr"] = [1e-3]
        GRID["weight_decay"] = [1e-4, 1e-2, 1e-1]
    rows = {}
    t0 = time.perf_counter()
    for data_name, backbone in CASES:
        splits, X, y = split_features(require_data(data_name), backbone)
        Xa, ya = np.concatenate([X["train"], X["val"]]), np.concatenate([y["train"], y["val"]])
        if args.group_cv:
            groups = [subject_group(r.path) for r in splits.train + splits.val]
            folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(Xa, ya, groups))
        else:
            folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(Xa, ya))
        for lr, wd, hidden in itertools.product(*GRID.values()):
            accs, losses, epochs = [], [], []
            for k, (tr, va) in enumerate(folds):
                head_cfg = HeadConfig(hidden_dim=hidden, dropout=0.3 if hidden else 0.0)
                trainer = HeadTrainer(head_cfg, HeadTrainConfig(lr=lr, weight_decay=wd, epochs=300, seed=k), progress=False)
                trainer.fit(Xa[tr], ya[tr], Xa[va], ya[va], int(ya.max()) + 1)
                p = trainer.predict_proba(Xa[va])
                accs.append(float((p.argmax(1) == ya[va]).mean()))
                losses.append(float(log_loss(ya[va], p, labels=list(range(p.shape[1])))))
                epochs.append(trainer.best_epoch_)
            print(f"{data_name}/{backbone} lr={lr} wd={wd} hidden={hidden}: cv acc {np.mean(accs):.4f}", flush=True)
            key = (lr, wd, hidden)
            rows.setdefault(key, []).append({"case": f"{data_name}/{backbone}", "acc": np.mean(accs), "loss": np.mean(losses), "best_epoch": np.mean(epochs)})
    table = []
    for (lr, wd, hidden), cases in rows.items():
        table.append({"lr": lr, "weight_decay": wd, "hidden": hidden, "cv_acc": np.mean([c["acc"] for c in cases]),
                      "cv_logloss": np.mean([c["loss"] for c in cases]), "mean_best_epoch": np.mean([c["best_epoch"] for c in cases]),
                      "per_case": {c["case"]: round(c["acc"], 4) for c in cases}})
    table.sort(key=lambda r: (-r["cv_acc"], r["cv_logloss"]))
    print(f"{'lr':>7} {'wd':>7} {'hidden':>6} {'cv acc':>7} {'logloss':>8} {'epoch':>6}  per case")
    for r in table:
        print(f"{r['lr']:7.0e} {r['weight_decay']:7.0e} {str(r['hidden']):>6} {r['cv_acc']:7.4f} {r['cv_logloss']:8.4f} {r['mean_best_epoch']:6.1f}  {r['per_case']}")
    print(f"chosen (best mean {'group ' if args.group_cv else ''}5-fold CV accuracy inside train+val, test never read): {json.dumps({k: table[0][k] for k in ('lr', 'weight_decay', 'hidden')})}")
    print(f"bench time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
