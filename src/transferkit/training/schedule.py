"""Learning-rate schedules (linear warm-up, then cosine or linear decay) and layer-wise LR decay groups."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def warmup_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, *, shape: str = "cosine") -> torch.optim.lr_scheduler.LambdaLR:
    """Multiplier ramps 0 -> 1 over ``warmup_steps`` optimizer steps, then decays to 0 at ``total_steps``.

    ``shape="cosine"`` follows a half cosine (timm / fastai); ``"linear"`` falls in a straight line
    (the BERT recipe, transformers' ``get_linear_schedule_with_warmup``). A plain function (not a
    pickled object) drives it, so ``state_dict()`` is JSON-serialisable.
    """
    if shape not in ("cosine", "linear"):
        raise ValueError(f"unknown schedule '{shape}': use 'cosine' or 'linear'.")
    total_steps = max(1, int(total_steps))
    warmup_steps = min(max(0, int(warmup_steps)), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress)) if shape == "cosine" else 1.0 - progress

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay (:func:`warmup_decay` with ``shape="cosine"``)."""
    return warmup_decay(optimizer, total_steps, warmup_steps, shape="cosine")


def _no_decay(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    return param.ndim <= 1 or isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm))


def _split_decay(module: nn.Module, lr: float, weight_decay: float, seen: set[int], label: str) -> list[dict]:
    decay, no_decay = [], []
    for sub in module.modules():
        for name, p in sub.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if _no_decay(name, p, sub) else decay).append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "lr": lr, "weight_decay": weight_decay, "name": f"{label}"})
    if no_decay:
        groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{label}.no_decay"})
    return groups


def layerwise_param_groups(
    head: nn.Module, blocks: Sequence[nn.Module], *, lr: float, decay: float, weight_decay: float, rest: nn.Module | None = None,
    first_index: int = 0,
) -> list[dict]:
    """AdamW parameter groups with discriminative learning rates.

    ``blocks`` run from input to output. The head gets ``lr``, the last block ``lr * decay``,
    the one before ``lr * decay**2`` and so on (fastai's ``slice(lo, hi)``, BEiT's layer decay).
    Only trainable parameters are included; norm weights and biases get no weight decay.
    ``rest`` catches trainable parameters outside every block (given the smallest LR). Groups are named ``head``,
    ``block{i}`` and ``rest``, where ``i`` is the block's index in the backbone: pass ``first_index`` (the index of
    ``blocks[0]``) when ``blocks`` are only the last, unfrozen ones.
    """
    seen: set[int] = set()
    groups = _split_decay(head, lr, weight_decay, seen, "head")
    n = len(blocks)
    for depth, block in enumerate(reversed(blocks), start=1):
        groups += _split_decay(block, lr * decay**depth, weight_decay, seen, f"block{first_index + n - depth}")
    if rest is not None:
        groups += _split_decay(rest, lr * decay ** (n + 1), weight_decay, seen, "rest")
    return groups
