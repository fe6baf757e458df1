"""Shared bench plumbing: paths of the real data and cached features of one split.

The real data sets live in ``../shared/data`` next to the repository (``SHARED``). Set the environment variable
``TRANSFERKIT_SHARED_DATA`` to another folder laid out the same way (``plants/``, ``pneumonia/``, ``reviews/``...) to run
the benches on other data, e.g. a copy of the scripts pointed at a small test set::

    TRANSFERKIT_SHARED_DATA=/tmp/small_data OMP_NUM_THREADS=1 .venv/bin/python bench/lp_refit_cv.py plants mobilenet_v2
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

SHARED_DATA_ENV = "TRANSFERKIT_SHARED_DATA"
DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_root() -> Path:
    """The data root: ``$TRANSFERKIT_SHARED_DATA`` when set (and not empty), else ``../shared/data``."""
    env = os.environ.get(SHARED_DATA_ENV, "").strip()
    return Path(env).expanduser() if env else DEFAULT_SHARED


SHARED = shared_root()

# the epilog of each bench's --help that reads data sets by name under the data root
DATA_EPILOG = (f"data root: data sets are read by name under ${SHARED_DATA_ENV} when that environment variable is set,\n"
               f"else under ../shared/data next to the repository (now: {SHARED}).")


def require_data(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        if os.environ.get(SHARED_DATA_ENV, "").strip():
            sys.exit(f"skip: {path} is absent (the data root is ${SHARED_DATA_ENV}={SHARED})")
        sys.exit(f"skip: {path} is absent (the real data sets live in ../shared/data; set {SHARED_DATA_ENV} to read another folder)")
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
