"""WiSE-FT: a model whose weights lie on the line between the model before and after fine-tuning.

Wortsman et al., "Robust fine-tuning of zero-shot models" (CVPR 2022), interpolate every weight of
the network before fine-tuning (theta_0) and after it (theta_1): theta_alpha = (1 - alpha) theta_0 + alpha theta_1.
Fine-tuning from a fitted head keeps the two ends in one basin (the LP-FT setting here: stage two starts from
the stage-one probe), and points in between often generalise better under distribution shift than either end,
at no training cost. ``alpha = 1`` is plain fine-tuning and ``alpha = 0`` the probe.

Only floating-point tensors are mixed; integer buffers (BatchNorm's ``num_batches_tracked``) keep the
fine-tuned value. The mix is computed in float32 and cast back, so half-precision weights do not lose the
small differences that fine-tuning at a low learning rate makes.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..errors import ConfigError


def check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"the WiSE-FT mixing weight must lie in [0, 1] (1 = the fine-tuned weights, 0 = the weights before "
                          f"fine-tuning); got {alpha}.")
    return alpha


def interpolate_weights(start: Mapping[str, torch.Tensor], end: Mapping[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * start + alpha * end`` for every floating tensor; ``end``'s value for the others.

    Both mappings must hold the same keys with the same shapes (two states of one architecture).
    """
    alpha = check_alpha(alpha)
    if start.keys() != end.keys():
        missing, extra = sorted(set(end) - set(start)), sorted(set(start) - set(end))
        raise ValueError(f"the two states are not of one model: keys only after fine-tuning {missing[:5]}, only before {extra[:5]}.")
    mixed: dict[str, torch.Tensor] = {}
    for key, b in end.items():
        a = start[key]
        if a.shape != b.shape:
            raise ValueError(f"'{key}' has shape {tuple(a.shape)} before fine-tuning and {tuple(b.shape)} after.")
        if b.is_floating_point():
            mixed[key] = torch.lerp(a.detach().float().to(b.device), b.detach().float(), alpha).to(b.dtype)
        else:
            mixed[key] = b.detach().clone()
    return mixed


@torch.no_grad()
def apply_wise_ft(model: nn.Module, start_state: Mapping[str, torch.Tensor], alpha: float) -> nn.Module:
    """Replace ``model``'s weights (the fine-tuned ones) by their mix with ``start_state``, in place; returns ``model``."""
    end = model.state_dict()
    model.load_state_dict(interpolate_weights(start_state, end, alpha), strict=True)
    return model


def describe_wise_ft(record: dict) -> str:
    """One line on a run's WiSE-FT mix, from ``metrics.json`` ``training.wise_ft``."""
    alpha = record["alpha"]
    return (f"weights {1 - alpha:g} x stage one + {alpha:g} x fine-tuned; validation loss {record['val_loss']:.3g} "
            f"(fine-tuned alone {record['val_loss_fine_tuned']:.3g})")


__all__ = ["apply_wise_ft", "check_alpha", "describe_wise_ft", "interpolate_weights"]
