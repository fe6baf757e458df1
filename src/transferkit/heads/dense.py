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

    ``in_features``: the backbone's ``num_features`` (>= 1); ``num_classes`` >= 2; ``hidden_dim``: None or 0 (a single
    Dense layer) or a positive width; ``dropout`` in [0, 1]. Anything else is a :class:`~transferkit.errors.ConfigError`.
    """

    def __init__(self, in_features: int, num_classes: int, *, hidden_dim: int | None = None, dropout: float = 0.0):
        _check_head_args(in_features, num_classes, hidden_dim, dropout)
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
        if not isinstance(features, torch.Tensor) or features.ndim == 0 or features.shape[-1] != self.in_features:
            from ..errors import DataError

            got = tuple(features.shape) if hasattr(features, "shape") else type(features).__name__
            raise DataError(f"this head takes features of shape (N, {self.in_features}) (its in_features); got {got}. Features "
                            "must come from the backbone (and feature_stages) the head was built for: DenseHead(backbone.num_features, ...).")
        return self.net((features - self.feature_mean) / self.feature_std)

    def config(self) -> dict[str, Any]:
        return {"type": "dense", "in_features": self.in_features, "num_classes": self.num_classes, "hidden_dim": self.hidden_dim, "dropout": self.dropout_p}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "DenseHead":
        """The head :meth:`config` describes; a record that is not a dict, lacks a key or holds a value the head cannot
        take is a :class:`~transferkit.errors.ConfigError` (a ValueError) naming it."""
        from ..errors import ConfigError

        if not isinstance(cfg, dict):
            raise ConfigError(f"a head config must be a dict like DenseHead.config() returns; got {type(cfg).__name__}.")
        missing = [k for k in ("in_features", "num_classes") if k not in cfg]
        if missing:
            raise ConfigError(f"the head config lacks {', '.join(repr(k) for k in missing)}; it has {sorted(cfg)}.")
        try:
            return cls(cfg["in_features"], cfg["num_classes"], hidden_dim=cfg.get("hidden_dim"), dropout=cfg.get("dropout", 0.0))
        except ConfigError as exc:
            raise ConfigError(f"the head config {cfg} is not usable: {exc}") from None


def _check_head_args(in_features: Any, num_classes: Any, hidden_dim: Any, dropout: Any) -> None:
    from numbers import Integral, Real

    from ..errors import ConfigError

    def whole(v: Any) -> bool:
        return isinstance(v, Integral) and not isinstance(v, bool)

    if not whole(in_features) or in_features < 1:
        raise ConfigError(f"in_features must be a positive integer (the backbone's num_features); got {in_features!r}.")
    if not whole(num_classes) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2 (one output per class); got {num_classes!r}.")
    if hidden_dim is not None and (not whole(hidden_dim) or hidden_dim < 0):
        raise ConfigError(f"hidden_dim must be None or 0 (a single Dense layer) or a positive width; got {hidden_dim!r}.")
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0.0 <= float(dropout) <= 1.0:
        raise ConfigError(f"dropout must be a probability in [0, 1]; got {dropout!r}.")
