"""Running a frozen backbone over image records, with the feature cache in front."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..backbones import Backbone
from ..data import ImageRecord, make_transforms, open_image
from ..progress import track
from .cache import FeatureCache, feature_key


class ImageRecordDataset(Dataset):
    """Torch dataset over :class:`ImageRecord` s: (transformed image, label)."""

    def __init__(self, records: Sequence[ImageRecord], transform, *, max_pixels: int | None = None):
        self.records = list(records)
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        r = self.records[i]
        kwargs = {"max_pixels": self.max_pixels} if self.max_pixels else {}
        return self.transform(open_image(r.path, **kwargs)), r.label


@dataclass
class ExtractionStats:
    num_total: int = 0
    num_cached: int = 0
    num_computed: int = 0


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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
    autocast on CUDA) and then stored. A random-init backbone is never cached.
    """
    stats = stats if stats is not None else ExtractionStats()
    hashes = [r.sha256 for r in records]
    sha = backbone.weights_record.get("sha256")
    views = getattr(backbone, "test_views", "none")
    stages = getattr(backbone, "feature_stages", 1)
    key = feature_key(backbone.name, sha, backbone.data_cfg, views, stages) if (cache is not None and sha) else None
    have = cache.get(key, hashes) if key else {}
    missing = [r for r in dict((r.sha256, r) for r in records).values() if r.sha256 not in have]
    stats.num_total += len(records)
    stats.num_cached += len(records) - sum(1 for r in records if r.sha256 not in have)
    if missing:
        dev = resolve_device(device)
        backbone.eval().to(dev)
        loader = DataLoader(
            ImageRecordDataset(missing, make_transforms(backbone.data_cfg)),
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=dev.type == "cuda",
        )
        chunks = []
        use_amp = dev.type == "cuda"
        with track(f"{description} ({backbone.name})", len(missing), unit="img", enabled=progress) as advance:
            for x, _ in loader:
                x = x.to(dev, non_blocking=True)
                with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
                    f = backbone(x)
                chunks.append(f.float().cpu().numpy())
                advance(len(x))
        computed = np.concatenate(chunks)
        stats.num_computed += len(missing)
        new = {r.sha256: v for r, v in zip(missing, computed)}
        if key:
            meta = {"backbone": backbone.name, "weights": backbone.weights_record, "preprocessing": backbone.data_cfg,
                    "test_views": views, "feature_stages": stages}
            cache.put(key, list(new), np.stack(list(new.values())), meta=meta)
        have = {**have, **new}
    return np.stack([have[h] for h in hashes]).astype(np.float32)
