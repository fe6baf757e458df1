"""Leakage check: near-duplicate images across splits, by perceptual hash (``imagehash``).

Byte-identical files are found while scanning (``find_cross_split_duplicates``); this finds
images that *look* the same — re-encoded, resized, slightly cropped or brightened copies —
whose presence in both train and test inflates the test score. Each image is reduced to a
64-bit pHash; two images are near-duplicates when the Hamming distance of their hashes is at
most ``max_distance`` (0 = same hash; imagehash's docs suggest small distances, ~<=5, for copies).

The same hashes also find *look-alike images filed under different classes* (in one split or across splits,
:func:`check_images`): a re-saved or resized copy with another label, which the byte-identical check
(``ImageSplits.conflicting_labels``) cannot see.
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


@dataclass(frozen=True)
class LookAlikeConflict:
    """Two images that look the same (pHash distance ``distance``) but are filed under different classes."""

    a_split: str
    a: str
    a_class: str
    b_split: str
    b: str
    b_class: str
    distance: int

    def to_dict(self) -> dict:
        return asdict(self)


def _as_paths(splits) -> dict[str, list[str]]:
    if isinstance(splits, Mapping):
        return {s: [str(p) for p in paths] for s, paths in splits.items()}
    names = ("train", "val", "test")  # an ImageSplits
    return {s: [str(r.path) for r in splits.split(s)] for s in names}


def _hash_splits(paths: dict[str, list[str]], hash_size: int, progress: bool) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per split: the readable paths and their pHash bits (one row each)."""
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
    return hashes


def _close_pairs(ha: np.ndarray, hb: np.ndarray, max_distance: int, *, same: bool = False):
    """(i, j, distance) for rows of ``ha`` and ``hb`` at most ``max_distance`` bits apart; ``same`` (``ha`` is ``hb``):
    each unordered pair once, never an image with itself. Distances in chunks of 256 rows: bounded memory."""
    for start in range(0, len(ha), 256):
        d = (ha[start : start + 256, None, :] != hb[None, :, :]).sum(-1)
        for i, j in zip(*np.nonzero(d <= max_distance)):
            if not same or start + i < j:
                yield start + int(i), int(j), int(d[i, j])


def _near_across_splits(hashes, max_distance: int) -> list[NearDuplicate]:
    pairs: list[NearDuplicate] = []
    for a, b in combinations(hashes, 2):
        (pa, ha), (pb, hb) = hashes[a], hashes[b]
        if len(pa) and len(pb):
            pairs.extend(NearDuplicate(a, pa[i], b, pb[j], d) for i, j, d in _close_pairs(ha, hb, max_distance))
    return sorted(pairs, key=lambda p: (p.distance, p.a_split, p.a, p.b))


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
    return _near_across_splits(_hash_splits(_as_paths(splits), hash_size, progress), max_distance)


def check_images(splits, max_distance: int = DEFAULT_MAX_DISTANCE, *, hash_size: int = 8,
                 progress: bool = True) -> tuple[list[NearDuplicate], list[LookAlikeConflict]]:
    """One pass of perceptual hashes over an :class:`~transferkit.data.ImageSplits`: near-duplicates across splits
    (leakage, as :func:`find_near_duplicates`) and look-alike pairs filed under different classes, in any splits.
    Byte-identical pairs are left out of the second list: ``ImageSplits.conflicting_labels`` already names them."""
    records = {s: list(splits.split(s)) for s in ("train", "val", "test")}
    by_path = {str(r.path): r for rs in records.values() for r in rs}
    hashes = _hash_splits({s: [str(r.path) for r in rs] for s, rs in records.items()}, hash_size, progress)
    near = _near_across_splits(hashes, max_distance)
    where = [(s, p) for s, (ps, _) in hashes.items() for p in ps]
    bits = np.concatenate([h for _, h in hashes.values()]) if where else np.zeros((0, hash_size * hash_size), bool)
    conflicts = []
    for i, j, d in _close_pairs(bits, bits, max_distance, same=True):
        (sa, a), (sb, b) = where[i], where[j]
        ra, rb = by_path[a], by_path[b]
        if ra.label != rb.label and ra.sha256 != rb.sha256:
            conflicts.append(LookAlikeConflict(sa, a, splits.classes[ra.label], sb, b, splits.classes[rb.label], d))
    return near, sorted(conflicts, key=lambda c: (c.distance, c.a_split, c.a, c.b))
