"""Image datasets for fine-tuning: decode once, augment per epoch, reproducibly.

Decoding a large JPEG costs more than a MobileNet forward pass on the CPU, and fine-tuning
reads every image once per epoch. :class:`DecodedImageDataset` decodes each file once and keeps
it resized to the backbone's resize size (shorter side, the first step of its eval transform,
so the eval output is unchanged). Augmentation draws come from a generator seeded by
``(seed, epoch, index)``: the same image gets the same crop on every run, process and resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from ..data import ImageRecord, make_transforms, open_image
from ..progress import track


def _pre_resize(data_cfg: dict[str, Any]):
    """The eval transform's leading Resize (shorter side), or None when it has none."""
    from torchvision import transforms as T

    eval_tf = make_transforms(data_cfg)
    first = eval_tf.transforms[0] if hasattr(eval_tf, "transforms") else None
    return first if isinstance(first, T.Resize) and isinstance(first.size, int | list | tuple) else None


class DecodedImageDataset(Dataset):
    """``(transform(image), label)`` over records, images decoded once and held in memory."""

    def __init__(self, records: Sequence[ImageRecord], transform, data_cfg: dict[str, Any], *, seed: int = 0,
                 progress: bool = False, description: str = "decoding images", max_pixels: int | None = None):
        self.records = list(records)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        resize = _pre_resize(data_cfg)
        self.images = []
        kwargs = {"max_pixels": max_pixels} if max_pixels else {}
        with track(description, len(self.records), unit="img", enabled=progress) as advance:
            for r in self.records:
                img = open_image(r.path, **kwargs)
                self.images.append(resize(img) if resize is not None else img)
                advance()
        self.labels = [r.label for r in self.records]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_033 + i)
            x = self.transform(self.images[i])
        return x, self.labels[i]

    def with_transform(self, transform) -> "DecodedImageDataset":
        """The same decoded images under another transform (no second decode)."""
        other = object.__new__(DecodedImageDataset)
        other.__dict__.update(self.__dict__)
        other.transform = transform
        return other
