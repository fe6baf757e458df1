"""Which backbone blocks train: ``--unfreeze last:N | all`` over :meth:`Backbone.blocks`."""

from __future__ import annotations

from torch import nn

from ..errors import TransferKitError


class UnfreezeSpecError(TransferKitError, ValueError):
    """An ``--unfreeze`` value that is not 'all' or 'last:N'."""


def parse_unfreeze(spec: str, num_blocks: int) -> int:
    """Number of blocks to unfreeze, counted from the output end."""
    spec = spec.strip().lower()
    if spec == "all":
        return num_blocks
    if spec.startswith("last:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n >= 1:
            return min(n, num_blocks)
    raise UnfreezeSpecError(f"--unfreeze '{spec}' is not understood. Expected 'all' or 'last:N' with N >= 1 (this backbone has {num_blocks} blocks).")


def unfreeze_blocks(backbone: nn.Module, blocks: list[nn.Module], spec: str) -> list[nn.Module]:
    """Freeze the whole backbone, then unfreeze the last N ``blocks``; returns those blocks
    (input to output). With 'all', parameters outside every block are unfrozen too."""
    n = parse_unfreeze(spec, len(blocks))
    backbone.requires_grad_(False)
    trainable = blocks[len(blocks) - n :]
    for b in trainable:
        b.requires_grad_(True)
    if n == len(blocks):
        backbone.requires_grad_(True)
    return trainable
