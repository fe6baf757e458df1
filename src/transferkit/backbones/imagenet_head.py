"""The ImageNet classifier a backbone was trained with, applied to its pooled features.

:class:`~transferkit.backbones.Backbone` drops the ImageNet classifier. Scores such as LEEP
and NCE need the source model's class probabilities, so this module rebuilds the library's
full ImageNet model, loads the *same* weights file the backbone was built from (checked by
sha256, ``strict=True``) and keeps its final classifier. For the families where that
classifier reads the globally pooled features (timm EfficientNets, torchvision MobileNet and
ResNet), ``classifier(backbone(x)) == full_model(x)``, so the probabilities come straight from
cached features at no extra forward pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import TransferKitError
from ._convert import efficientnet_pytorch_to_timm
from ._weights import file_sha256, read_state_dict
from .backbone import Backbone, WeightsMismatchError


class ImageNetHeadUnavailableError(TransferKitError, ValueError):
    """The backbone has no trained ImageNet classifier that reads its pooled features."""


def _classifier_of(family: str, library: str, model: nn.Module) -> nn.Module:
    if library == "timm":
        return model.get_classifier()
    if family == "mobilenet":
        return model.classifier  # Dropout + Linear on the pooled features (dropout is off in eval)
    if family == "resnet":
        return model.fc
    raise ImageNetHeadUnavailableError(
        f"the '{family}' ImageNet classifier does not read globally pooled features (VGG's reads the 7x7 map), "
        "so it cannot be applied to cached features; LEEP/NCE are skipped for it."
    )


def load_imagenet_classifier(backbone: Backbone) -> nn.Module:
    """The trained ImageNet classifier of ``backbone`` (eval mode), from the same weights file.

    Raises :class:`ImageNetHeadUnavailableError` for random-init backbones (no trained
    classifier) and for families whose classifier does not read pooled features.
    """
    spec = backbone.spec
    record = backbone.weights_record
    if record.get("source") == "none" or not record.get("path"):
        raise ImageNetHeadUnavailableError(f"'{backbone.name}' is randomly initialised: it has no trained ImageNet classifier.")
    if spec.family == "vgg":
        _classifier_of(spec.family, spec.library, nn.Identity())  # raises with the reason
    path = Path(record["path"])
    if not path.is_file() or file_sha256(path) != record.get("sha256"):
        raise ImageNetHeadUnavailableError(
            f"the weights file '{path}' of '{backbone.name}' is gone or changed since the backbone was loaded; reload the backbone."
        )
    model = spec.build()
    state_dict = read_state_dict(path)
    if spec.library == "timm" and spec.family == "efficientnet":
        state_dict = efficientnet_pytorch_to_timm(state_dict, [len(s) for s in model.blocks])
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise WeightsMismatchError(f"weights from '{path}' do not fit the full '{spec.arch}' model: {str(exc)[:300]}") from None
    return _classifier_of(spec.family, spec.library, model).eval()


@torch.inference_mode()
def imagenet_probabilities(backbone: Backbone, features: np.ndarray, *, classifier: nn.Module | None = None,
                           batch_size: int = 1024) -> np.ndarray:
    """ImageNet class probabilities ``(n, 1000)`` from the backbone's pooled ``features``. Multi-stage features
    (:attr:`Backbone.feature_stages` > 1) hold the last stage's pooled output first; the classifier reads only that."""
    head = classifier if classifier is not None else load_imagenet_classifier(backbone)
    x = torch.as_tensor(np.asarray(features, dtype=np.float32)[:, : backbone.spec.num_features])
    out = [head(x[i : i + batch_size]).float().softmax(1).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 1000), np.float32)
