"""Grad-CAM overlays of images (the ``grad-cam`` package, ``pytorch_grad_cam``).

The target layer is the backbone's last block (``model.backbone.blocks()[-1]``), i.e. the last
convolutional feature map before pooling.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def _target_layer(model) -> nn.Module:
    layer = model.backbone.blocks()[-1]
    # A ModuleList groups modules but is never called itself, so hooks on it would never fire.
    while isinstance(layer, nn.ModuleList):
        layer = layer[-1]
    return layer


def gradcam_overlays(model, paths: Sequence[str | os.PathLike], target_classes: Sequence[int], *, batch_size: int = 8) -> list[np.ndarray | None]:
    """RGB uint8 overlays (input resolution) of Grad-CAM for ``target_classes[i]`` on ``paths[i]``.

    An image that cannot be read now (moved, deleted, or a path relative to where ``fit`` ran) gives None in its place;
    the caller leaves it out and says so.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from ..data import BadImageError, make_transforms, open_image

    transform = make_transforms(model.data_cfg)
    mean = np.array(model.data_cfg["mean"]).reshape(3, 1, 1)
    std = np.array(model.data_cfg["std"]).reshape(3, 1, 1)
    size = model.data_cfg["input_size"][1:]
    model = model.eval()
    device = next(model.parameters()).device
    out: list[np.ndarray | None] = []
    # one view: the hooks expect one feature map per input (test-time views would give four)
    with model.backbone.single_view(), GradCAM(model=model, target_layers=[_target_layer(model)]) as cam:
        for start in range(0, len(paths), batch_size):
            chunk = list(zip(paths[start : start + batch_size], target_classes[start : start + batch_size]))
            tensors, ok = [], []
            for p, _ in chunk:
                try:
                    tensors.append(transform(open_image(p)))
                    ok.append(True)
                except BadImageError:
                    ok.append(False)
            maps = iter([])
            if tensors:
                x = torch.stack(tensors).to(device)
                x.requires_grad_(True)  # gradients flow even when every weight is frozen
                targets = [ClassifierOutputTarget(int(t)) for (_, t), good in zip(chunk, ok) if good]
                with torch.enable_grad():
                    grayscale = cam(input_tensor=x, targets=targets)
                rgb = np.clip(x.detach().cpu().numpy() * std + mean, 0, 1).transpose(0, 2, 3, 1)
                maps = iter(list(zip(rgb, grayscale)))
            for good in ok:
                if good:
                    img, g = next(maps)
                    out.append(show_cam_on_image(img.astype(np.float32), g, use_rgb=True))
                else:
                    out.append(None)
    return out
