"""Exploration (fifth session), train + val only, test never read: which frozen-feature recipe separates the classes best?

Variants of the eval transform for a backbone (features extracted here, not cached):
- crop:        the weights' published eval transform (e.g. resize 256, centre crop 224: crop_pct 0.875);
- full224:     the whole image resized to the input size (crop_pct 1.0);
- full256:     the whole image at 256 x 256 (the data's native size; the CNN pools globally);
- crop+tta4:   the mean feature of the crop, its horizontal and vertical flips and its transpose.
Each scored with the refit logistic probe (C by inner 5-fold CV log loss, refit on the outer-train part) in nested
StratifiedGroupKFold(5) x 3 seeds with subjects kept together (bench/_common.exploration_subject).

    OMP_NUM_THREADS=1 .venv/bin/python bench/feature_views_cv.py plants tf_efficientnet_lite0
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_EPILOG, exploration_subject, require_data  # noqa: E402


def features(backbone, records, transform, tta: bool) -> np.ndarray:
    from transferkit.data import open_image

    out = []
    with torch.no_grad():
        for i in range(0, len(records), 32):
            x = torch.stack([transform(open_image(r.path)) for r in records[i:i + 32]])
            if tta:
                out.append(torch.stack([backbone(v) for v in (x, x.flip(3), x.flip(2), x.transpose(2, 3))]).mean(0).numpy())
            else:
                out.append(backbone(x).numpy())
    return np.concatenate(out)


def refit_probe_cv(X, y, g, Cs) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def model(C):
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=2000))

    accs = []
    for seed in (0, 1, 2):
        for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(X, y, g):
            inner = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(X[tr], y[tr]))
            loss = {C: np.mean([log_loss(y[tr][b], model(C).fit(X[tr][a], y[tr][a]).predict_proba(X[tr][b]), labels=np.unique(y))
                                for a, b in inner]) for C in Cs}
            m = model(min(loss, key=loss.get)).fit(X[tr], y[tr])
            accs.append((m.predict(X[te]) == y[te]).mean())
    return np.array(accs)


def train_val_records(data_name: str):
    """(records, labels, subject groups) of a shared data set's train + val; single-threaded, quiet sklearn."""
    from sklearn.exceptions import ConvergenceWarning

    import transferkit as tk

    warnings.simplefilter("ignore", ConvergenceWarning)
    torch.set_num_threads(1)
    splits = tk.load_image_folder(require_data(data_name), seed=0, progress=False)
    recs = splits.train + splits.val
    return recs, np.array([r.label for r in recs]), np.array([exploration_subject(r.path) for r in recs])


def report_variants(data_name: str, name: str, variants: dict, y, g) -> None:
    """Group-CV accuracy of each feature variant (a callable giving the features), paired against the first one."""
    from transferkit.config import HeadTrainConfig

    base, first = None, next(iter(variants))
    for label, make in variants.items():
        acc = refit_probe_cv(make(), y, g, HeadTrainConfig().linear_C)
        base = acc if base is None else base
        print(f"{data_name} {name} {label:10s} group-CV acc {acc.mean():.4f} ± {acc.std():.4f}  vs {first} {acc.mean() - base.mean():+.4f} "
              f"(wins {int((acc > base).sum())}, losses {int((acc < base).sum())} of {len(acc)})", flush=True)


def main(data_name: str, names: list[str]) -> None:
    import transferkit as tk
    from transferkit.data import make_transforms

    recs, y, g = train_val_records(data_name)
    for name in names:
        bb = tk.load_backbone(name).eval()
        cfg = dict(bb.data_cfg)
        side = cfg["input_size"][-1]
        variants = {"crop": (cfg, False), "full%d" % side: ({**cfg, "crop_pct": 1.0}, False),
                    "full256": ({**cfg, "input_size": (3, 256, 256), "crop_pct": 1.0}, False), "crop+tta4": (cfg, True)}
        report_variants(data_name, name, {label: (lambda c=c, t=t: features(bb, recs, make_transforms(c), t)) for label, (c, t) in variants.items()}, y, g)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    p.add_argument("data", metavar="DATASET", help="image data set by name under the data root (plants, pneumonia); only train + val are read")
    p.add_argument("backbones", nargs="+", metavar="BACKBONE", help="backbone names, e.g. tf_efficientnet_lite0 mobilenet_v2; the feature variants (crop, full, full256, crop+tta4) are scored per backbone")
    return p


if __name__ == "__main__":
    args = build_parser().parse_args()
    main(args.data, args.backbones)
