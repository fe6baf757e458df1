"""Exploration (second session), not a default: class-balanced logistic regression on L2-normalised,
standardised frozen features of pneumonia X-rays, C chosen by ROC-AUC in 5-fold StratifiedGroupKFold
inside train+val (groups = patient ids from the file names). Prints test AUC / balanced accuracy of the
CV-chosen C.

    OMP_NUM_THREADS=1 .venv/bin/python bench/lp_logistic_pneumonia.py ../shared/data/pneumonia mobilenet_v2 tf_efficientnet_lite0
"""
import argparse
import re

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="image folder with train/ and test/ splits (e.g. ../shared/data/pneumonia); "
                                "train + val are cross-validated, test is scored once per backbone")
    p.add_argument("backbones", nargs="+", metavar="BACKBONE", help="backbone names to compare (e.g. mobilenet_v2 tf_efficientnet_lite0)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from transferkit.backbones import load_backbone
    from transferkit.data import load_image_folder
    from transferkit.features.cache import FeatureCache
    from transferkit.features.extract import extract_features
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler, normalize
    from sklearn.pipeline import make_pipeline
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
    from sklearn.metrics import roc_auc_score, balanced_accuracy_score
    splits = load_image_folder(args.data, progress=False)
    tr = splits.train + splits.val; te = splits.test
    def group(n):
        for pat in (r"(person\d+)_", r"(IM-\d+)-", r"(NORMAL2-IM-\d+)-"):
            m = re.match(pat, n)
            if m: return m.group(1)
        return n
    g = np.array([group(r.path.name) for r in tr]); print("groups", len(set(g)), len(tr))
    ytr = np.array([r.label for r in tr]); yte = np.array([r.label for r in te])
    for name in args.backbones:
        bb = load_backbone(name)
        Xtr = normalize(extract_features(bb, tr, cache=FeatureCache(), progress=False)); Xte = normalize(extract_features(bb, te, cache=FeatureCache(), progress=False))
        cv = StratifiedGroupKFold(5, shuffle=True, random_state=0)
        res = {C: cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, class_weight="balanced")), Xtr, ytr, groups=g, cv=cv, scoring="roc_auc").mean() for C in [0.001, 0.003, 0.01, 0.03, 0.1, 1.0]}
        C = max(res, key=res.get)
        m = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, class_weight="balanced")).fit(Xtr, ytr)
        p = m.predict_proba(Xte)[:, 1]
        print(name, {k: round(v, 3) for k, v in res.items()}, "C", C, "TEST auc %.4f bal %.4f acc %.4f" % (roc_auc_score(yte, p), balanced_accuracy_score(yte, p >= .5), ((p >= .5) == yte).mean()), flush=True)


if __name__ == "__main__":
    main()
