"""transferkit: choose the right pretrained model and transfer it to a small labelled dataset.

Layer 1 (one call): :func:`fit`, :func:`fit_seeds`, :func:`evaluate`, :func:`predict`, :func:`load`,
:func:`rank_backbones`.
Layer 2 (pieces): :func:`load_backbone`, :func:`load_image_folder`, :func:`extract_features`, :func:`extract_train_views`,
:class:`FeatureCache`, :class:`DenseHead`, :class:`HeadTrainer`, :func:`classification_metrics`,
:class:`TransferModel`.

Names are imported lazily (PEP 562): ``import transferkit`` is cheap, and
``transferkit.runtime`` (exported models) never pulls in torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    ".api": ("FitResult", "SeedsResult", "evaluate", "fit", "fit_seeds", "predict"),
    ".backbones": ("Backbone", "get_backbone_spec", "list_backbones", "load_backbone"),
    ".config": ("DataConfig", "FitConfig", "HeadConfig", "HeadTrainConfig"),
    ".data": ("ImageSplits", "load_image_folder", "open_image"),
    ".errors": ("DataError", "NotFittedError", "TransferKitError", "UnknownBackboneError", "WeightsNotFoundError"),
    ".evaluation": ("classification_metrics",),
    ".features": ("FeatureCache", "extract_features", "extract_train_views"),
    ".heads": ("DenseHead",),
    ".model": ("TransferModel", "load"),
    ".selection": ("rank_backbones", "choose_backbone"),
    ".training": ("HeadTrainer", "views_as_augmented"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # tk.training, tk.errors ... as after `import transferkit.x`
    else:
        raise AttributeError(f"module 'transferkit' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
