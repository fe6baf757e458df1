"""Exploration (third session), not a feature: do pooled features from several stages of a frozen backbone
(global average of each stage's output, L2-normalised per stage, concatenated) beat the last stage alone?
Judged only by 5-fold StratifiedGroupKFold inside train+val (subjects kept together; the test split is never read),
with a standardised logistic regression at C in {0.01, 0.1, 1}.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/multilayer_features_cv.py ../shared/data/plants tf_efficientnet_lite0

Seventh session, rule fixed before the mobilenet_v2 rows were run: ``Backbone.feature_stages`` (pooled outputs of the
last K stages, concatenated) becomes the library default with K = 3 only if "last3" (best C) is at least as good as
"last" (best C) on all four pairs {plants, pneumonia} x {tf_efficientnet_lite0, mobilenet_v2} — plants by accuracy,
pneumonia by ROC-AUC — and better on their mean. Otherwise it ships as an option (default K = 1, today's features).
"""
import argparse
import sys
from pathlib import Path

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="image folder (e.g. ../shared/data/plants); only its train + val images are read")
    p.add_argument("backbone", help="backbone name: a timm EfficientNet-Lite (e.g. tf_efficientnet_lite0) or mobilenet_v2")
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
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
    torch.set_num_threads(1)
    data, name = args.data, args.backbone
    splits = load_image_folder(data, progress=False)
    tr = splits.train + splits.val
    g = np.array([exploration_subject(r.path) for r in tr]); y = np.array([r.label for r in tr])
    bb = load_backbone(name).eval()
    if bb.spec.library == "timm":
        mods = list(bb.body.blocks)[2:] + [bb.body.bn2]
    else:
        f = bb.body[0]; mods = [f[6], f[10], f[13], f[16], f[17], f[18]]
    outs = {}
    for i, m in enumerate(mods):
        m.register_forward_hook(lambda mod, a, o, i=i: outs.__setitem__(i, o.mean((2, 3))))
    tf = make_transforms(bb.data_cfg)
    F = [[] for _ in mods]
    with torch.no_grad():
        for i in range(0, len(tr), 32):
            x = torch.stack([tf(open_image(r.path)) for r in tr[i:i+32]]); bb(x)
            for j in range(len(mods)): F[j].append(outs[j].numpy())
    F = [np.concatenate(a) for a in F]
    print(name, data, [a.shape[1] for a in F], flush=True)
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=0)
    binary = len(set(y)) == 2
    def score(X, C):
        m = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced" if binary else None))
        p = cross_val_predict(m, X, y, groups=g, cv=cv, method="predict_proba")
        s = {"acc": accuracy_score(y, p.argmax(1)), "bal": balanced_accuracy_score(y, p.argmax(1))}
        if binary: s["auc"] = roc_auc_score(y, p[:, 1])
        return {k: round(v, 4) for k, v in s.items()}
    L = len(F) - 1
    combos = {"last": [L], "last+prev": [L - 1, L], "last3": [L - 2, L - 1, L], "last4": list(range(L - 3, L + 1)), "all": list(range(L + 1))}
    for cname, idx in combos.items():
        X = np.concatenate([normalize(F[j]) for j in idx], 1)
        for C in [0.01, 0.1, 1.0]:
            print(name, cname, C, score(X, C), flush=True)


if __name__ == "__main__":
    main()
