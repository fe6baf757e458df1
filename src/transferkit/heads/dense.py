"""The new classifier head put on a frozen base."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class DenseHead(nn.Module):
    """Standardise features, then a Dense layer (optionally one hidden layer + dropout).

    The standardisation statistics are buffers fitted on the training features, so the saved
    model maps raw backbone features to logits on its own.
    """

    def __init__(self, in_features: int, num_classes: int, *, hidden_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.in_features, self.num_classes, self.hidden_dim, self.dropout_p = in_features, num_classes, hidden_dim, dropout
        self.register_buffer("feature_mean", torch.zeros(in_features))
        self.register_buffer("feature_std", torch.ones(in_features))
        layers: list[nn.Module] = []
        width = in_features
        if hidden_dim:
            layers += [nn.Linear(in_features, hidden_dim), nn.ReLU(inplace=True)]
            width = hidden_dim
        layers += [nn.Dropout(dropout), nn.Linear(width, num_classes)]
        self.net = nn.Sequential(*layers)

    def set_feature_stats(self, features: torch.Tensor) -> "DenseHead":
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-6))
        return self

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.feature_mean) / self.feature_std)

    def config(self) -> dict[str, Any]:
        return {"type": "dense", "in_features": self.in_features, "num_classes": self.num_classes, "hidden_dim": self.hidden_dim, "dropout": self.dropout_p}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "DenseHead":
        return cls(cfg["in_features"], cfg["num_classes"], hidden_dim=cfg.get("hidden_dim"), dropout=cfg.get("dropout", 0.0))
