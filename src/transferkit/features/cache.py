"""On-disk cache of frozen-backbone features, one vector per image file content.

The key of a feature set is (backbone name, weights sha256, preprocessing, extractor
version); inside it, vectors are looked up by the sha256 of each image file's bytes. So a
second fit, another head, a re-split, or model ranking over the same files reuses every
vector already computed, and a changed file or changed weights never reuse a stale one.

Layout: ``<cache_dir>/<key>/meta.json`` and ``shard-*.safetensors`` files, each holding a
``features`` matrix whose row order is given by the JSON list of content hashes in the
shard's metadata (with the key it was written under). New vectors are appended as new shards, written atomically.
A shard that cannot be trusted is ignored and its vectors recomputed: unreadable, rows and hashes of different lengths,
non-finite values, written under another key (a file copied or moved between feature spaces), or vectors of another
width than the backbone gives. Untrusted shards (all but the last kind, which depends on the reader) and ``.tmp`` files
left by a writer that died more than an hour ago are deleted when the cache is writable, and the user is told how many.
``transferkit cache info`` / ``clear`` (:meth:`FeatureCache.spaces`, :meth:`FeatureCache.remove`) show and free the space.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

FEATURES_VERSION = 1
_KEY = re.compile(r"[0-9a-f]{24}")  # a feature space's folder name: feature_key()
STALE_TMP_SECONDS = 3600  # a .tmp older than this is a dead writer's, not one still writing


def default_cache_dir() -> Path:
    """``$TRANSFERKIT_CACHE`` or ``$XDG_CACHE_HOME/transferkit`` (``~/.cache/transferkit``), + ``/features``."""
    env = os.environ.get("TRANSFERKIT_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "transferkit"
    return base / "features"


def feature_key(backbone: str, weights_sha256: str | None, data_cfg: dict[str, Any], views: str = "none", stages: int = 1,
                train_view: dict[str, Any] | None = None) -> str:
    """Stable key of one feature space. Random-init backbones (no sha) are never cached. ``views`` (test-time views,
    :attr:`Backbone.test_views`), ``stages`` (:attr:`Backbone.feature_stages`) and ``train_view`` (an augmented training
    copy: its number and augmentation, :func:`extract_train_views`) enter the key only when not at their defaults
    ("none", 1, None), so the keys of plain features are what they always were."""
    fields = {"backbone": backbone, "weights_sha256": weights_sha256, "preprocessing": data_cfg, "version": FEATURES_VERSION}
    extra = {**({"views": views} if views != "none" else {}), **({"stages": stages} if stages != 1 else {}),
             **({"train_view": train_view} if train_view is not None else {})}
    payload = json.dumps({**fields, **extra}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def cacheable_sha256(weights_record: dict[str, Any]) -> str | None:
    """The sha256 that keys a backbone's cached features, or None when its features must not be cached.

    Features are cached only for weights that are exactly the file named by the record: random init (no sha256) and
    fine-tuned weights (``"fine_tuned": true``) are computed afresh. A model folder saved before transferkit recorded
    ``fine_tuned`` loads with ``"fine_tuned": null`` (unknown), and is not cached either: its backbone may have been
    fine-tuned, and the pretrained file's features would then be silently wrong for it.
    """
    if weights_record.get("fine_tuned", False) is not False:
        return None
    return weights_record.get("sha256") or None


class FeatureCache:
    """Feature vectors by (feature space key, file content hash)."""

    def __init__(self, cache_dir: str | Path | None = None, *, read_only: bool = False):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.read_only = read_only  # e.g. the non-main processes under `accelerate launch`: they read, one process writes
        self._loaded: dict[str, dict[str, np.ndarray]] = {}
        self.removed_ = {"damaged": 0, "stale": 0}  # untrusted shards and dead writers' .tmp files deleted so far

    def _dir(self, key: str) -> Path:
        return self.cache_dir / key

    def _index(self, key: str) -> dict[str, np.ndarray]:
        if key not in self._loaded:
            from safetensors import safe_open

            index: dict[str, np.ndarray] = {}
            untrusted: list[Path] = []
            for shard in sorted(self._dir(key).glob("shard-*.safetensors")):
                try:
                    with safe_open(str(shard), framework="numpy") as f:
                        meta = f.metadata()
                        hashes = json.loads(meta["hashes"])
                        feats = f.get_tensor("features")
                except Exception:  # a damaged shard is ignored: its vectors are recomputed
                    untrusted.append(shard)
                    continue
                written_for = meta.get("key")  # shards written before the key was recorded have none
                if (written_for not in (None, key) or feats.ndim != 2 or len(hashes) != len(feats)
                        or not np.isfinite(feats).all()):
                    untrusted.append(shard)
                    continue
                index.update(zip(hashes, feats))
            self._loaded[key] = index
            self._remove_untrusted(key, untrusted)
        return self._loaded[key]

    def _remove_untrusted(self, key: str, untrusted: list[Path]) -> None:
        """Delete shards that can never be used and dead writers' ``.tmp`` files, and say so (not when read-only: under
        `accelerate launch` the main process does it)."""
        if self.read_only:
            return
        cutoff = time.time() - STALE_TMP_SECONDS
        stale = []
        for tmp in self._dir(key).glob("*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    stale.append(tmp)
            except OSError:
                continue
        removed = {"damaged": 0, "stale": 0}
        for path, kind in [*((p, "damaged") for p in untrusted), *((p, "stale") for p in stale)]:
            try:
                path.unlink()
                removed[kind] += 1
            except OSError:
                continue
        if removed["damaged"] or removed["stale"]:
            from ..progress import console

            parts = ([f"{removed['damaged']} damaged or misplaced shard(s) (their vectors are computed again)"] if removed["damaged"] else []) \
                + ([f"{removed['stale']} unfinished .tmp file(s) of an interrupted write"] if removed["stale"] else [])
            console.print(f"[yellow]note:[/] removed {' and '.join(parts)} from the feature cache {self._dir(key)}.")
        for kind, n in removed.items():
            self.removed_[kind] += n

    def get(self, key: str, hashes: list[str], width: int | None = None) -> dict[str, np.ndarray]:
        """The cached vectors among ``hashes`` (missing ones are simply absent; so are vectors of another ``width`` than
        the backbone's, when given)."""
        index = self._index(key)
        return {h: index[h] for h in hashes if h in index and (width is None or index[h].shape[0] == width)}

    def put(self, key: str, hashes: list[str], features: np.ndarray, meta: dict[str, Any] | None = None) -> None:
        """Store new vectors as one shard (atomic write: a crash never leaves half a shard)."""
        from ..safetensors_files import save_tensors_file

        if len(hashes) == 0:
            return
        if self.read_only:  # kept for this process only
            self._index(key).update(zip(hashes, np.asarray(features, dtype=np.float32)))
            return
        folder = self._dir(key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if meta is not None and not (folder / "meta.json").exists():
                (folder / "meta.json").write_text(json.dumps(meta, indent=2))
            name = f"shard-{uuid.uuid4().hex[:12]}.safetensors"
            save_tensors_file({"features": np.ascontiguousarray(features, dtype=np.float32)}, folder / name,
                              metadata={"hashes": json.dumps(list(hashes)), "key": key})
        except OSError as exc:
            # a cache that cannot be written (read-only, a file in the way, a full disk) must not cost the features just
            # computed, nor end the run after them: they are kept for this process, and the user told once
            from ..progress import console

            console.print(f"[yellow]note:[/] the feature cache {self.cache_dir} cannot be written "
                          f"({exc.strerror or type(exc).__name__}); features are kept for this run only and will be computed "
                          "again next time. Pass --cache-dir FOLDER (or set TRANSFERKIT_CACHE) to cache them.")
            self.read_only = True
        self._index(key).update(zip(hashes, np.asarray(features, dtype=np.float32)))

    def spaces(self) -> list[dict[str, Any]]:
        """One row per feature space on disk: key, backbone and weights (from meta.json), number of vectors, bytes on disk
        and when it was last written. Counts come from the shards' metadata (no vectors are read); damaged shards count
        no vectors."""
        from safetensors import safe_open

        rows = []
        for folder in self._space_folders():
            try:
                meta = json.loads((folder / "meta.json").read_text())
            except (OSError, ValueError):
                meta = {}
            files = [f for f in folder.rglob("*") if f.is_file()]
            vectors = 0
            for shard in folder.glob("shard-*.safetensors"):
                try:
                    with safe_open(str(shard), framework="numpy") as f:
                        vectors += len(json.loads(f.metadata()["hashes"]))
                except Exception:
                    continue
            weights = meta.get("weights") or {}
            rows.append({"key": folder.name, "backbone": meta.get("backbone"), "weights_source": weights.get("source"),
                         "weights_sha256": weights.get("sha256"), "num_vectors": vectors,
                         "num_shards": sum(1 for f in files if f.name.endswith(".safetensors")),
                         "bytes": sum(f.stat().st_size for f in files),
                         "last_written": max((f.stat().st_mtime for f in files), default=folder.stat().st_mtime)})
        return rows

    def _space_folders(self) -> list[Path]:
        """The feature-space folders (named by :func:`feature_key`): not the other things kept beside them, such as the
        random-init control weights that `rank` saves in ``random-init/`` and tells the user to fit with."""
        if not self.cache_dir.is_dir():
            return []
        return sorted(p for p in self.cache_dir.iterdir() if p.is_dir() and _KEY.fullmatch(p.name))

    def remove(self, key: str) -> int:
        """Delete one feature space (its folder); returns the bytes freed. Its vectors are computed again when needed."""
        folder = self._dir(key)
        if not _KEY.fullmatch(key) or not folder.is_dir():
            raise KeyError(key)
        freed = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder)
        self._loaded.pop(key, None)
        return freed

    def __len__(self) -> int:
        return sum(len(self._index(p.name)) for p in self._space_folders())
