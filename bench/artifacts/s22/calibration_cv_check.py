"""Fourteenth session, explored and not adopted: a 10-fold check inside the validation split of the temperature that
`fit` saves. Per run: the whole-validation temperature (what fit saves), the held-out NLL without scaling and with each
part's temperature fitted on the other nine, and (evaluation only) the test NLL with T = 1 and with the saved T.

    bash bench/artifacts/s22/calibration_runs.sh      # 12 runs: pneumonia/plants x mobilenet_v2/tf_efficientnet_lite0 x seeds 0-2
    python bench/artifacts/s22/calibration_cv_check.py "/tmp/s22/me/cal-*[0-9]"
"""
import csv
import glob
import sys

import numpy as np

from transferkit.evaluation.calibration import TemperatureScaler, logits_from_proba, negative_log_likelihood


def read(path):
    rows = list(csv.DictReader(open(path)))
    cols = [c for c in rows[0] if c.startswith("p_")]
    classes = [c[2:] for c in cols]
    return np.array([[float(r[c]) for c in cols] for r in rows]), np.array([classes.index(r["true"]) for r in rows])


def held_out(logits, y, folds=10):
    parts = np.array_split(np.random.default_rng(0).permutation(len(y)), min(folds, len(y)))
    before = after = 0.0
    for k, part in enumerate(parts):
        rest = np.concatenate([p for j, p in enumerate(parts) if j != k])
        t_k = TemperatureScaler().fit(logits[rest], y[rest]).temperature_
        before += negative_log_likelihood(logits[part], y[part]) * len(part)
        after += negative_log_likelihood(logits[part], y[part], t_k) * len(part)
    return before / len(y), after / len(y)


for run in sorted(glob.glob(sys.argv[1])):
    (Pv, yv), (Pt, yt) = read(f"{run}/predictions/val.csv"), read(f"{run}/predictions/test.csv")
    Lv, Lt = logits_from_proba(Pv), logits_from_proba(Pt)
    t = TemperatureScaler().fit(Lv, yv).temperature_
    b, a = held_out(Lv, yv) if t != 1.0 else (float("nan"), float("nan"))
    print(f"{run.split('/')[-1]:40s} n_val {len(yv):3d}  saved T {t:.3f}  held-out NLL {b:.4f} -> {a:.4f} "
          f"({'confirmed' if a < b else 'not confirmed' if a >= b else 'T = 1'})  | test NLL T=1 {negative_log_likelihood(Lt, yt):.4f}, "
          f"saved T {negative_log_likelihood(Lt, yt, t):.4f}")
