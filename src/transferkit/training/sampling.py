"""A sampler whose order is a pure function of (seed, epoch): resuming mid-run replays it exactly."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


def balanced_sample_weights(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Per-sample weights ``1 / n_class``: every class is drawn equally often in expectation."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = 1.0
    return 1.0 / counts[labels]


class EpochSampler(Sampler[int]):
    """Shuffles (or, with ``weights``, draws with replacement) using a generator seeded by
    ``seed`` and the epoch set by :meth:`set_epoch` — the same order on every process and after
    a resume. The trainer calls ``set_epoch`` before each epoch."""

    def __init__(self, num_samples: int, *, seed: int = 0, weights: Sequence[float] | None = None):
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.weights = None if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float64))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is not None:
            idx = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)
        else:
            idx = torch.randperm(self.num_samples, generator=g)
        return iter(idx.tolist())
