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
    ``--weights none`` control then predicted one constant), though they separate classes once scaled.

    A feature is also constant when its spread is below float32 rounding of the largest spread in the same vector
    (``std <= eps32 x max(std)``): next to the loudest feature such a one is numerical residue, and scaling it up by
    ``1/std`` would multiply its gradient by as much. all-MiniLM-L6-v2's final LayerNorm has weights of about 1e-33 in
    two dimensions (and 1e-9 in a third): their spreads are 3e-32 and 9e-9 of the largest, the head divided by 1e-32,
    and every fine-tuning step's gradient norm overflowed to inf, which gradient clipping turned into a zero step, so
    full fine-tuning never trained. The next smallest ratios measured: 0.32 (MiniLM), 6.5e-6 (random-init
    mobilenet_v2), 2.8e-5 (tf_efficientnet_lite0)."""
    std64 = std.double()
    var = std64 ** 2
    eps = torch.finfo(torch.float64).eps
    constant = var <= n * eps * var + (n * mean.double().abs() * eps) ** 2
    if std64.numel():
        constant |= std64 <= torch.finfo(torch.float32).eps * std64.max()
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
