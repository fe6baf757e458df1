"""Which features the float32-relative test (std <= eps32 x largest std, added in the fifteenth session) calls constant
beyond scikit-learn's test, on the full training splits of every recorded image configuration (K = 3 stages, pretrained
and random init) and on all-MiniLM-L6-v2 over amazon_cells: recorded numbers stand if only MiniLM's three dimensions move."""
import numpy as np
import torch

import transferkit as tk
from transferkit.backbones.text import load_text_backbone
from transferkit.text.features import embed_texts

EPS32 = float(torch.finfo(torch.float32).eps)


def report(label, f):
    f = f.astype(np.float64)
    std, mean, n = f.std(0, ddof=1), f.mean(0), len(f)
    var = std ** 2
    eps = np.finfo(np.float64).eps
    sk = var <= n * eps * var + (n * np.abs(mean) * eps) ** 2
    new = sk | (std <= EPS32 * std.max())
    rest = std[~new] / std.max()
    print(f"{label}: features {f.shape[1]}, constant (scikit-learn) {int(sk.sum())}, constant (+ float32 relative) {int(new.sum())}, "
          f"added {int((new & ~sk).sum())}; smallest spread ratio kept {rest.min():.3g}", flush=True)


for ds in ("pneumonia", "plants"):
    splits = tk.load_image_folder(f"/work/shared/data/{ds}", progress=False)
    for name in ("mobilenet_v2", "tf_efficientnet_lite0"):
        for weights in ("auto", "none"):
            tk.training.seed_everything(0)
            b = tk.load_backbone(name, weights=weights, feature_stages=3)
            report(f"{ds} {name} weights={weights}", tk.extract_features(b, splits.train, cache=tk.FeatureCache(), progress=False))
texts = [line.rsplit("\t", 1)[0] for line in open("/work/shared/data/reviews/amazon_cells_labelled.txt", encoding="utf-8").read().splitlines() if line.strip()]
report("amazon_cells all-MiniLM-L6-v2", embed_texts(load_text_backbone("all-MiniLM-L6-v2"), texts, cache=None, progress=False, device="cpu"))
