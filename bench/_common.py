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


def exploration_subject(path: Path) -> str:
    """Subject of an image for the group-CV explorations: the pneumonia patient (``personN_``, ``IM-NNNN-``), or for
    PlantVillage file names a photo series guessed as blocks of 8 consecutive numbers (not a documented pattern)."""
    import re

    n = path.name
    for pat in (r"(person\d+)_", r"(IM-\d+)-"):
        m = re.match(pat, n)
        if m:
            return m.group(1)
    m = re.match(r".*___(.+?) ?\(?(\d+)\)?\.\w+$", n)
    if m:
        return m.group(1) + str(int(m.group(2)) // 8)
    return n
