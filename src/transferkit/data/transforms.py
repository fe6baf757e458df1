"""Preprocessing follows the model: transforms are built from a backbone's ``data_cfg``."""

from __future__ import annotations

from typing import Any

from timm.data import create_transform


def make_transforms(data_cfg: dict[str, Any], *, train: bool = False):
    """The eval transform (resize, centre crop, normalise) for a backbone's weights.

    Uses timm's transform factory so the resize/crop arithmetic matches published evaluation.
    ``train=True`` is the fine-tuning engine's business (augmentation); here it only exists so
    callers can ask for it explicitly.
    """
    return create_transform(
        input_size=tuple(data_cfg["input_size"]),
        interpolation=data_cfg["interpolation"],
        mean=tuple(data_cfg["mean"]),
        std=tuple(data_cfg["std"]),
        crop_pct=data_cfg["crop_pct"],
        is_training=train,
    )
