"""Exploration (second session), not a default: a logistic-regression head on L2-normalised, standardised
frozen features, C chosen by 5-fold StratifiedGroupKFold inside train+val (groups = leaf photo series in
blocks of 8 numbers, pneumonia patient ids), with and without feature TTA (mean of the features of the
image, its horizontal flip, vertical flip and transpose). Prints group-CV accuracy per C and the test
accuracy of the CV-chosen C for both variants.

    OMP_NUM_THREADS=1 .venv/bin/python bench/lp_logistic_tta.py ../shared/data/plants tf_efficientnet_lite0 mobilenet_v2
"""
import argparse
import sys
from pathlib import Path

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="image folder with train/ and test/ splits (e.g. ../shared/data/plants); "
                                "train + val are cross-validated, test is scored once per backbone and variant")
    p.add_argument("backbones", nargs="+", metavar="BACKBONE", help="backbone names to compare (e.g. tf_efficientnet_lite0 mobilenet_v2)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    import torch
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import exploration_subject
    from transferkit.backbones import load_backbone
    from transferkit.data import load_image_folder, make_transforms, open_image
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler, normalize
    from sklearn.pipeline import make_pipeline
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
    torch.set_num_threads(1)
    data = args.data
    splits = load_image_folder(data, progress=False)
    tr = splits.train + splits.val; te = splits.test
    g = np.array([exploration_subject(r.path) for r in tr])
    ytr = np.array([r.label for r in tr]); yte = np.array([r.label for r in te])
    for name in args.backbones:
        bb = load_backbone(name).eval()
        tf = make_transforms(bb.data_cfg)
        def feats(recs):
            out = []
            with torch.no_grad():
                for i in range(0, len(recs), 32):
                    x = torch.stack([tf(open_image(r.path)) for r in recs[i:i+32]])
                    views = [x, x.flip(3), x.flip(2), x.transpose(2, 3)]
                    out.append(torch.stack([bb(v) for v in views], 1).numpy())
            return np.concatenate(out)
        Ftr, Fte = feats(tr), feats(te)

        cv = StratifiedGroupKFold(5, shuffle=True, random_state=0)
        for mode in ["single", "tta-mean"]:
            Xtr = Ftr[:, 0] if mode == "single" else Ftr.mean(1)
            Xte = Fte[:, 0] if mode == "single" else Fte.mean(1)
            res = {C: cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000)), normalize(Xtr), ytr, groups=g, cv=cv).mean() for C in [0.01, 0.1, 1.0]}
            C = max(res, key=res.get)
            m = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000)).fit(normalize(Xtr), ytr)
            print(name, mode, {k: round(v, 3) for k, v in res.items()}, "C", C, "TEST", (m.predict(normalize(Xte)) == yte).mean(), flush=True)


if __name__ == "__main__":
    main()
