"""Which features the relative (scikit-learn) constant test calls constant on the full training splits, against the old
absolute test (std < 1e-6): the recorded bench numbers are unchanged if the two agree on every pretrained backbone."""
import numpy as np
import torch

import transferkit as tk
from transferkit.heads.dense import feature_scale

for ds in ("pneumonia", "plants"):
    splits = tk.load_image_folder(f"/work/shared/data/{ds}", progress=False)
    for name in ("mobilenet_v2", "tf_efficientnet_lite0"):
        b = tk.load_backbone(name, feature_stages=3)
        tr = tk.extract_features(b, splits.train, cache=tk.FeatureCache(), progress=False).astype(np.float64)
        std, mean = tr.std(0, ddof=1), tr.mean(0)
        old = std < 1e-6
        new = feature_scale(torch.from_numpy(std), torch.from_numpy(mean), len(tr)).numpy() == 1.0
        new &= ~((std == 1.0) & ~old)  # a spread of exactly 1 is kept as 1 either way
        print(ds, name, "features", tr.shape[1], "constant (old, std < 1e-6):", int(old.sum()), "constant (relative):", int(new.sum()),
              "same set:", bool((old == new).all()), "min std of the rest:", float(std[~old].min()), flush=True)
