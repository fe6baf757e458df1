"""Train-only augmentation with torchvision.transforms.v2; evaluation keeps the model's transform."""

from __future__ import annotations

from typing import Any

from ..config import AugmentConfig
from ..data import make_transforms

_INTERPOLATION = {"bilinear": "BILINEAR", "bicubic": "BICUBIC", "nearest": "NEAREST"}


def make_train_transform(data_cfg: dict[str, Any], augment: AugmentConfig | None = None):
    """Random resized crop, flip, small rotation and colour jitter, then the backbone's normalisation.

    With ``augment.enabled`` false the eval transform is returned, so "no augmentation" means
    exactly the preprocessing used at prediction time.
    """
    from torchvision.transforms import v2

    augment = augment or AugmentConfig()
    if not augment.enabled:
        return make_transforms(data_cfg)
    size = int(data_cfg["input_size"][-1])
    interpolation = getattr(v2.InterpolationMode, _INTERPOLATION.get(str(data_cfg.get("interpolation", "bilinear")), "BILINEAR"))
    steps: list = [v2.ToImage(), v2.RandomResizedCrop(size, scale=(augment.crop_scale_min, 1.0), interpolation=interpolation, antialias=True)]
    if augment.hflip > 0:
        steps.append(v2.RandomHorizontalFlip(augment.hflip))
    if augment.rotation > 0:
        # torchvision rotates tensors with nearest or bilinear only; bicubic backbones (EfficientNet) rotate bilinearly.
        rotate_with = interpolation if interpolation == v2.InterpolationMode.NEAREST else v2.InterpolationMode.BILINEAR
        steps.append(v2.RandomRotation(augment.rotation, interpolation=rotate_with))
    if augment.color_jitter > 0:
        j = augment.color_jitter
        steps.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j))
    import torch

    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(data_cfg["mean"]), std=list(data_cfg["std"]))]
    return v2.Compose(steps)
