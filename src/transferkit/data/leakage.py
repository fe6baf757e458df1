"""Leakage check: near-duplicate images across splits, by perceptual hash (``imagehash``).

Byte-identical files are found while scanning (``find_cross_split_duplicates``); this finds
images that *look* the same — re-encoded, resized, slightly cropped or brightened copies —
whose presence in both train and test inflates the test score. Each image is reduced to a
64-bit pHash; two images are near-duplicates when the Hamming distance of their hashes is at
most ``max_distance`` (0 = same hash; imagehash's docs suggest small distances, ~<=5, for copies).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np

from ..progress import track

DEFAULT_MAX_DISTANCE = 4


@dataclass(frozen=True)
class NearDuplicate:
    """Two images in different splits whose perceptual hashes differ by ``distance`` bits."""

    a_split: str
    a: str
    b_split: str
    b: str
    distance: int

    def to_dict(self) -> dict:
        return asdict(self)


def perceptual_hash(path: str | os.PathLike, *, hash_size: int = 8) -> np.ndarray | None:
    """pHash bits (hash_size**2 booleans) of an image file; None when it cannot be read."""
    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.draft("L", (4 * hash_size * 4, 4 * hash_size * 4))  # JPEG: decode at reduced size (fast)
            return np.asarray(imagehash.phash(img.convert("L"), hash_size=hash_size).hash, dtype=bool).ravel()
    except Exception:  # noqa: BLE001 - unreadable files are the loader's business (already counted there)
        return None


def _as_paths(splits) -> dict[str, list[str]]:
    if isinstance(splits, Mapping):
        return {s: [str(p) for p in paths] for s, paths in splits.items()}
    names = ("train", "val", "test")  # an ImageSplits
    return {s: [str(r.path) for r in splits.split(s)] for s in names}


def find_near_duplicates(
    splits: "Mapping[str, Sequence[str | os.PathLike]] | object",
    max_distance: int = DEFAULT_MAX_DISTANCE,
    *,
    hash_size: int = 8,
    progress: bool = True,
) -> list[NearDuplicate]:
    """Pairs of images in *different* splits whose pHash distance is ``<= max_distance``.

    ``splits``: an :class:`~transferkit.data.ImageSplits` or a mapping ``split -> paths``.
    Sorted by distance (exact look-alikes first).
    """
    paths = _as_paths(splits)
    hashes: dict[str, tuple[list[str], np.ndarray]] = {}
    total = sum(len(v) for v in paths.values())
    with track("leakage check (perceptual hashes)", total, unit="img", enabled=progress) as advance:
        for split, ps in paths.items():
            kept, bits = [], []
            for p in ps:
                h = perceptual_hash(p, hash_size=hash_size)
                advance()
                if h is not None:
                    kept.append(p)
                    bits.append(h)
            hashes[split] = (kept, np.array(bits, dtype=bool).reshape(len(bits), hash_size * hash_size))
    pairs: list[NearDuplicate] = []
    for a, b in combinations(paths, 2):
        pa, ha = hashes[a]
        pb, hb = hashes[b]
        if len(pa) == 0 or len(pb) == 0:
            continue
        # Hamming distances in chunks: (chunk, Nb) matrix of differing bits, bounded memory.
        for start in range(0, len(pa), 256):
            d = (ha[start : start + 256, None, :] != hb[None, :, :]).sum(-1)
            for i, j in zip(*np.nonzero(d <= max_distance)):
                pairs.append(NearDuplicate(a, pa[start + i], b, pb[j], int(d[i, j])))
    return sorted(pairs, key=lambda p: (p.distance, p.a_split, p.a, p.b))
