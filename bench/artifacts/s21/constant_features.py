import numpy as np, transferkit as tk, sys
for ds in ("pneumonia", "plants"):
    splits = tk.load_image_folder(f"/work/shared/data/{ds}", progress=False)
    for name in ("mobilenet_v2", "tf_efficientnet_lite0"):
        b = tk.load_backbone(name); b.feature_stages = 3
        cache = tk.FeatureCache()
        tr = tk.extract_features(b, splits.train, cache=cache, progress=False)
        te = tk.extract_features(b, splits.test, cache=cache, progress=False)
        std = tr.std(0, ddof=1)
        dead = std < 1e-6
        z = np.abs(te[:, dead]).max() / 1e-6 if dead.any() else 0
        print(ds, name, "features", tr.shape[1], "constant on train:", int(dead.sum()), "test images firing one:", int((np.abs(te[:, dead]) > 0).any(1).sum()) if dead.any() else 0, f"max z {z:.3g}", flush=True)
