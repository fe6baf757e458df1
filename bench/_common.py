"""Shared bench plumbing: paths of the real data and cached features of one split."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_data(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        sys.exit(f"skip: {path} is absent (the real data sets live in ../shared/data)")
    return path


def split_features(data: Path, backbone_name: str, seed: int = 0, weights: str = "auto"):
    """(splits, {split: X}, {split: y}) with features from the shared on-disk cache."""
    import transferkit as tk
    from transferkit.training import seed_everything

    splits = tk.load_image_folder(data, seed=seed, progress=False)
    seed_everything(seed)
    backbone = tk.load_backbone(backbone_name, weights)
    cache = tk.FeatureCache()
    X = {s: tk.extract_features(backbone, splits.split(s), cache=cache, progress=False) for s in ("train", "val", "test")}
    y = {s: np.array([r.label for r in splits.split(s)]) for s in ("train", "val", "test")}
    return splits, X, y
