"""Running a frozen backbone over image records, with the feature cache in front."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..backbones import Backbone
from ..config import AugmentConfig
from ..data import ImageRecord, make_transforms, open_image
from ..progress import track
from .cache import FeatureCache, cacheable_sha256, feature_key


class ImageRecordDataset(Dataset):
    """Torch dataset over :class:`ImageRecord` s: (transformed image, label)."""

    def __init__(self, records: Sequence[ImageRecord], transform, *, max_pixels: int | None = None):
        self.records = list(records)
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.records)

    def _open(self, i: int):
        r = self.records[i]
        return r, open_image(r.path, **({"max_pixels": self.max_pixels} if self.max_pixels else {}))

    def __getitem__(self, i: int):
        r, image = self._open(i)
        return self.transform(image), r.label


class AugmentedViewDataset(ImageRecordDataset):
    """Augmented copy number ``view`` of each record: the random transform runs under a seed derived from the image's
    content hash and ``view`` alone, so a view is the same whatever the batch, order, worker or run seed (and cacheable)."""

    def __init__(self, records: Sequence[ImageRecord], transform, view: int, *, max_pixels: int | None = None):
        super().__init__(records, transform, max_pixels=max_pixels)
        self.view = view

    def __getitem__(self, i: int):
        r, image = self._open(i)
        with torch.random.fork_rng(devices=[]):  # the caller's RNG stream is left as it was
            torch.manual_seed(view_seed(r.sha256, self.view))
            return self.transform(image), r.label


def view_seed(sha256: str, view: int) -> int:
    """The seed of augmented copy ``view`` of the image whose content hash is ``sha256``."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{sha256}:{view}".encode()).digest()[:8], "little") & (2**63 - 1)


@dataclass
class ExtractionStats:
    num_total: int = 0
    num_cached: int = 0
    num_computed: int = 0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA when present, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; a device that is not here is a
    one-line error, not a driver traceback in the middle of a run."""
    from ..errors import ConfigError

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {str(device)!r}: use auto, cpu, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r}: no CUDA GPU is visible here (torch.cuda.is_available() is False). "
                          "Use --device cpu, or auto (CUDA when present).")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    return dev


def _check_extraction_args(records: Any, cache: Any, batch_size: Any, num_workers: Any
                           ) -> tuple[list[ImageRecord], FeatureCache | None, int, int]:
    """The records as a list, the cache (a folder path becomes ``FeatureCache(path)``), batch_size and num_workers as
    ints; or an error saying what to pass."""
    from ..data import ImageSplits
    from ..errors import ConfigError, DataError

    how = ("pass ImageRecords, e.g. splits.train (or .val, .test) of splits = transferkit.data.load_image_folder(root); "
           "to predict on image files use model.predict(paths)")
    if isinstance(records, ImageSplits):
        raise DataError("records must be one split's ImageRecords, not an ImageSplits: pass splits.train (or splits.val, "
                        "splits.test); the class names are splits.classes.")
    if isinstance(records, (str, bytes, os.PathLike)) or not isinstance(records, Iterable):
        raise DataError(f"records must be a list of ImageRecords; got {type(records).__name__} {str(records)[:80]!r}: {how}.")
    records = list(records)
    wrong = next((r for r in records if not isinstance(r, ImageRecord) and not hasattr(r, "sha256")), None)
    if wrong is not None:
        raise DataError(f"records must be ImageRecords (path, label, content hash); got a {type(wrong).__name__} "
                        f"({str(wrong)[:80]!r}): {how}.")
    if isinstance(cache, (str, os.PathLike)):
        cache = FeatureCache(cache)
    elif cache is not None and not isinstance(cache, FeatureCache):
        raise ConfigError(f"cache must be a FeatureCache (e.g. transferkit.FeatureCache('~/.cache/transferkit')), a cache "
                          f"folder path or None; got {type(cache).__name__}.")
    for name, value, least in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < least:
            raise ConfigError(f"{name} must be {'a positive' if least else 'a non-negative'} integer; got {value!r}.")
    return records, cache, int(batch_size), int(num_workers)


@torch.inference_mode()
def extract_features(
    backbone: Backbone,
    records: Sequence[ImageRecord],
    *,
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    description: str = "features",
    stats: ExtractionStats | None = None,
) -> np.ndarray:
    """Features ``(len(records), backbone.num_features)`` in record order.

    Cached vectors are reused; only the missing ones are computed (in eval mode, under
    autocast on CUDA) and then stored. A random-init or fine-tuned backbone is never cached
    (:func:`~transferkit.features.cache.cacheable_sha256`).

    ``records``: ImageRecords, e.g. ``load_image_folder(root).train``. ``cache``: a :class:`FeatureCache`, a cache folder
    (str or path: ``FeatureCache(path)``) or None. ``batch_size``: a positive integer.
    """
    records, cache, batch_size, num_workers = _check_extraction_args(records, cache, batch_size, num_workers)
    return _features(backbone, records, lambda todo: ImageRecordDataset(todo, make_transforms(backbone.data_cfg)), cache=cache,
                     batch_size=batch_size, num_workers=num_workers, device=device, progress=progress, description=description,
                     stats=stats)


@torch.inference_mode()
def extract_train_views(
    backbone: Backbone,
    records: Sequence[ImageRecord],
    views: int,
    *,
    augment: AugmentConfig | None = None,
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    stats: ExtractionStats | None = None,
) -> np.ndarray:
    """Features of ``views`` augmented copies of every record, ``(views, len(records), num_features)``.

    Training data for a head on a frozen base: the fine-tuning augmentation (``augment``, default
    :class:`AugmentConfig`: random resized crop, flip, rotation, colour jitter) applied offline, each copy computed once and
    cached like the clean features (the key adds the augmentation and the copy's number). Copy ``v`` of an image is fixed
    by its content and ``v`` (:func:`view_seed`), so every run and seed shares the cached copies. ``views``: a
    non-negative integer; ``records``, ``cache`` and ``batch_size`` as in :func:`extract_features`.
    """
    from ..errors import ConfigError
    from ..training.augment import make_train_transform

    if isinstance(views, bool) or not isinstance(views, Integral) or views < 0:
        raise ConfigError(f"views must be a non-negative integer (the number of augmented copies of each image); got {views!r}.")
    views = int(views)
    records, cache, batch_size, num_workers = _check_extraction_args(records, cache, batch_size, num_workers)
    augment = augment or AugmentConfig(enabled=True)
    transform = make_train_transform(backbone.data_cfg, augment)
    out = [_features(backbone, records, lambda todo, v=v: AugmentedViewDataset(todo, transform, v), cache=cache, batch_size=batch_size,
                     num_workers=num_workers, device=device, progress=progress, description=f"augmented copy {v + 1}/{views}",
                     stats=stats, train_view={"index": v, "augment": augment.model_dump()})
           for v in range(views)]
    return np.stack(out) if out else np.zeros((0, len(records), backbone.num_features), np.float32)


# an extraction stores what it has computed every this many images (one shard each), so Ctrl-C or a crash loses at most
# these: the same command computes only the rest
CACHE_FLUSH_ROWS = 256


def _features(backbone: Backbone, records: Sequence[ImageRecord], make_dataset, *, cache: FeatureCache | None, batch_size: int,
              num_workers: int, device: str | torch.device, progress: bool, description: str, stats: ExtractionStats | None,
              train_view: dict | None = None) -> np.ndarray:
    stats = stats if stats is not None else ExtractionStats()
    hashes = [r.sha256 for r in records]
    sha = cacheable_sha256(backbone.weights_record)
    views = getattr(backbone, "test_views", "none")
    stages = getattr(backbone, "feature_stages", 1)
    key = feature_key(backbone.name, sha, backbone.data_cfg, views, stages, train_view) if (cache is not None and sha) else None
    have = cache.get(key, hashes, width=backbone.num_features) if key else {}
    missing = [r for r in dict((r.sha256, r) for r in records).values() if r.sha256 not in have]
    stats.num_total += len(records)
    stats.num_cached += len(records) - sum(1 for r in records if r.sha256 not in have)
    if missing:
        dev = resolve_device(device)
        backbone.eval().to(dev)
        loader = DataLoader(make_dataset(missing), batch_size=batch_size, num_workers=num_workers, pin_memory=dev.type == "cuda")
        chunks = []
        use_amp = dev.type == "cuda"
        meta = {"backbone": backbone.name, "weights": backbone.weights_record, "preprocessing": backbone.data_cfg,
                "test_views": views, "feature_stages": stages, **({"train_view": train_view} if train_view else {})}
        stored, pending = 0, []  # rows of `missing` in the cache (stored as they come: an interrupted run keeps them), rows not yet

        def store() -> None:
            nonlocal stored, pending
            if key and pending:
                rows = np.concatenate(pending)
                cache.put(key, [r.sha256 for r in missing[stored:stored + len(rows)]], rows, meta=meta)
                stored, pending = stored + len(rows), []

        with track(f"{description} ({backbone.name})", len(missing), unit="img", enabled=progress) as advance:
            for x, _ in loader:
                x = x.to(dev, non_blocking=True)
                with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
                    f = backbone(x)
                chunks.append(f.float().cpu().numpy())
                pending.append(chunks[-1])
                advance(len(x))
                if sum(len(c) for c in pending) >= CACHE_FLUSH_ROWS:
                    store()
        computed = np.concatenate(chunks)
        store()
        stats.num_computed += len(missing)
        new = {r.sha256: v for r, v in zip(missing, computed)}
        have = {**have, **new}
    if not hashes:
        return np.zeros((0, backbone.num_features), np.float32)
    return np.stack([have[h] for h in hashes]).astype(np.float32)
