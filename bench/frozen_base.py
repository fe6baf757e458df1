"""Frozen ImageNet base + new Dense head, mean ± std over 3 seeds, with the no-transfer
baseline (``weights='none'``: the same architecture, random init) beside it.

Each seed changes the validation carve-out, the head's initialisation and batch order (and
the random backbone of the controls). Defaults were chosen by bench/head_defaults.py
(cross-validation inside train); the test split is only read for the final numbers here.
Results are cached in bench/artifacts/frozen_base.json (``--artifacts DIR``: DIR/frozen_base.json), so an interrupted run
resumes.

    python bench/frozen_base.py [--seeds 0 1 2]
    python bench/frozen_base.py --groups      # pneumonia again, validation carved by patient (--groups, see PNEUMONIA_SUBJECTS)
    python bench/frozen_base.py --head 256    # the head of the first three sessions (one hidden layer of 256), cached rows
    python bench/frozen_base.py --datasets plants --pretrained-only
    python bench/frozen_base.py --pretrained-only --tta flips   # test-time views (fit --tta flips), an option, not the default
    python bench/frozen_base.py --stages 1      # the last stage's features only (the default until the seventh session)
    python bench/frozen_base.py --datasets plants --pretrained-only --train-views 4   # augmented training copies (an option)
    python bench/frozen_base.py --pretrained-only --train-views auto    # the head's CV decides whether to use 4 copies

``--stages`` is ``fit(feature_stages=...)``: rows keyed ``...|stages=K`` for K > 1; rows without it are K = 1, what every
session before the seventh measured. Two processes (e.g. one per data set) can run at once: the store is re-read before
each write.
``--head`` is the head's ``hidden_dim``: ``auto`` (the library default since the fourth session: a single Dense layer or
one hidden layer of 256, chosen per run by 5-fold CV on train + val) or a fixed width. Rows cached before ``--head``
existed are the ``256`` rows. A single-layer head is refitted on train + val with C chosen by CV (``linear_refit``, the
default since the fifth session; rows keyed ``...|head=auto|refit``); the fourth session's ``...|head=auto`` rows chose C
on the validation carve and fitted on train only.

With ``--groups`` the pneumonia runs carve validation so that no patient is on both sides (the file names carry the
patient: ``personN_bacteria_M.jpeg``, ``IM-NNNN-MMMM.jpeg``; see ../shared/data/pneumonia/README.md). Plants has no
documented subject in its file names, so it is not re-run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _common import DATA_EPILOG, require_data
import transferkit as tk
from transferkit.config import DEFAULT_FEATURE_STAGES

RUNS = [  # the required numbers first, the random-init controls (uncacheable, slow) last
    ("pneumonia", "mobilenet_v2", "auto", "PNEUMONIA"),
    ("pneumonia", "tf_efficientnet_lite0", "auto", "PNEUMONIA"),
    ("plants", "tf_efficientnet_lite0", "auto", None),
    ("plants", "mobilenet_v2", "auto", None),
    ("pneumonia", "mobilenet_v2", "none", "PNEUMONIA"),
    ("pneumonia", "tf_efficientnet_lite0", "none", "PNEUMONIA"),
    ("plants", "tf_efficientnet_lite0", "none", None),
    ("plants", "mobilenet_v2", "none", None),
]
PNEUMONIA_SUBJECTS = r"(person\d+)_|(IM-\d+)-"
ARTIFACTS = Path(__file__).parent / "artifacts"  # --artifacts default
STORE = ARTIFACTS / "frozen_base.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one fit per seed and run (default: 0 1 2)")
    ap.add_argument("--groups", action="store_true", help="pneumonia: carve validation by patient (PNEUMONIA_SUBJECTS)")
    ap.add_argument("--head", default="auto", help="the head's hidden_dim: auto (library default) or a width (256: earlier default)")
    ap.add_argument("--datasets", nargs="+", default=["pneumonia", "plants"], help="which of the RUNS to run, by data set name under the data root")
    ap.add_argument("--pretrained-only", action="store_true", help="skip the random-init controls")
    ap.add_argument("--tta", default="none", choices=["none", "flips"], help="test-time views (fit --tta); rows keyed ...|tta=flips")
    ap.add_argument("--stages", type=int, default=DEFAULT_FEATURE_STAGES, help="fit(feature_stages=K); rows keyed ...|stages=K")
    ap.add_argument("--train-views", type=lambda v: v if v == "auto" else int(v), default=0,
                    help="fit(train_views=N or auto): augmented training copies; rows keyed ...|views=N")
    ap.add_argument("--artifacts", type=Path, default=ARTIFACTS, metavar="DIR",
                    help="folder of the results store DIR/frozen_base.json, read back to resume and to print the table "
                         "(default: %(default)s)")
    args = ap.parse_args()
    runs = [r for r in RUNS if r[0] == "pneumonia"] if args.groups else RUNS
    runs = [r for r in runs if r[0] in args.datasets and not (args.pretrained_only and r[2] == "none")]
    # rows since the fifth session fit a single-layer head with linear_refit (C by CV on train + val, refitted on all);
    # the fourth session's "|head=auto" rows chose C on the validation carve
    suffix = ("|groups" if args.groups else "") + ("" if args.head == "256" else f"|head={args.head}") + ("" if args.head == "256" else "|refit")
    suffix += "" if args.tta == "none" else f"|tta={args.tta}"
    suffix += "" if args.stages == 1 else f"|stages={args.stages}"
    suffix += f"|views={args.train_views}" if args.train_views else ""
    store = args.artifacts / STORE.name
    store.parent.mkdir(parents=True, exist_ok=True)
    done = json.loads(store.read_text()) if store.exists() else {}
    for data, model, weights, positive in runs:
        for seed in args.seeds:
            key = f"{data}|{model}|{weights}|{seed}{suffix}"
            if key in done:
                continue
            r = tk.fit(require_data(data), model=model, weights=weights, seed=seed, positive=positive, progress=False,
                       groups=PNEUMONIA_SUBJECTS if args.groups else None, hidden_dim=args.head, tta=args.tta,
                       feature_stages=args.stages, train_views=args.train_views)
            t = r.test
            done[key] = {"accuracy": t["accuracy"], "balanced_accuracy": t["balanced_accuracy"], "macro_f1": t["macro_f1"],
                         "roc_auc": t.get("roc_auc"), "sensitivity": t.get("binary", {}).get("sensitivity"),
                         "specificity": t.get("binary", {}).get("specificity"), "best_epoch": r.metrics["training"]["best_epoch"],
                         "seconds": r.metrics["timing_s"]["total"], "head": r.metrics["training"].get("head", 256),
                         "head_selection": r.metrics["training"].get("head_selection"), "refit": r.metrics["training"].get("refit"),
                         "train_views": r.metrics["training"].get("train_views")}
            row, done = done[key], json.loads(store.read_text()) if store.exists() else {}  # another process may have written
            done[key] = row
            store.write_text(json.dumps(done, indent=1))
            print(f"{key}: acc {t['accuracy']:.4f} bal {t['balanced_accuracy']:.4f} auc {t.get('roc_auc', float('nan')):.4f} "
                  f"head {done[key]['head']}", flush=True)

    def ms(vals):
        vals = [v for v in vals if v is not None]
        return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1) if len(vals) > 1 else 0:.3f}" if vals else "-"

    print("\n| data | backbone | weights | head (per seed) | test accuracy | balanced acc | ROC-AUC | sensitivity | specificity | n seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for data, model, weights, _ in runs:
        rows = [done[k] for s in args.seeds if (k := f"{data}|{model}|{weights}|{s}{suffix}") in done]
        heads = ", ".join(str(r.get("head", 256)) + (" + copies" if (r.get("train_views") or {}).get("rows") else "") for r in rows)
        print(f"| {data} | {model} | {'ImageNet' if weights == 'auto' else 'none (random init)'} | {heads} | {ms([r['accuracy'] for r in rows])} | "
              f"{ms([r['balanced_accuracy'] for r in rows])} | {ms([r['roc_auc'] for r in rows])} | {ms([r['sensitivity'] for r in rows])} | "
              f"{ms([r['specificity'] for r in rows])} | {len(rows)} |")


if __name__ == "__main__":
    main()
