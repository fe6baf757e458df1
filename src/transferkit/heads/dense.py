"""The new classifier head put on a frozen base."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def feature_scale(std: torch.Tensor, mean: torch.Tensor, n: int) -> torch.Tensor:
    """Per-feature divisors for standardisation: the spread, or 1 where the feature is constant in training (e.g. a ReLU
    channel that never fires on the training images): centred, not scaled. Dividing by a zero spread instead would turn
    any value a new image gives that feature into a huge input (a channel dead on the training images but active on a
    test image reached 10^4-10^5 standard units and decided the prediction).

    Constant means scikit-learn's StandardScaler test (``_is_constant_feature``): a variance within float64 rounding of
    zero, relative to the feature's own size, with ``std`` and ``mean`` computed in float64. A fixed threshold would call
    every feature of a backbone whose outputs are all tiny constant (random-init mobilenet_v2's are ~1e-10: the
    ``--weights none`` control then predicted one constant), though they separate classes once scaled."""
    var = std.double() ** 2
    eps = torch.finfo(torch.float64).eps
    constant = var <= n * eps * var + (n * mean.double().abs() * eps) ** 2
    return torch.where(constant, torch.ones_like(std), std)


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
        x = features.double()  # float64: a constant float32 column then has exactly zero spread (see feature_scale)
        mean = x.mean(0)
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(feature_scale(x.std(0), mean, len(x)))
        return self

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((features - self.feature_mean) / self.feature_std)

    def config(self) -> dict[str, Any]:
        return {"type": "dense", "in_features": self.in_features, "num_classes": self.num_classes, "hidden_dim": self.hidden_dim, "dropout": self.dropout_p}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "DenseHead":
        return cls(cfg["in_features"], cfg["num_classes"], hidden_dim=cfg.get("hidden_dim"), dropout=cfg.get("dropout", 0.0))
