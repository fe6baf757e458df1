"""transferkit: choose the right pretrained model and transfer it to a small labelled dataset.

Layer 1 (one call): :func:`fit`, :func:`evaluate`, :func:`predict`, :func:`load`.
Layer 2 (pieces): :func:`load_backbone`, :func:`load_image_folder`, :func:`extract_features`,
:class:`FeatureCache`, :class:`DenseHead`, :class:`HeadTrainer`, :func:`classification_metrics`,
:class:`TransferModel`.
"""

__version__ = "0.1.0"

try:  # torch is optional only for `transferkit.runtime` (exported models on an edge device)
    import torch as _torch  # noqa: F401
except ImportError:
    _torch = None
if _torch is not None:
    from .api import FitResult, evaluate, fit, predict
    from .backbones import Backbone, get_backbone_spec, list_backbones, load_backbone
    from .config import DataConfig, FitConfig, HeadConfig, HeadTrainConfig
    from .data import ImageSplits, load_image_folder, open_image
    from .errors import DataError, NotFittedError, TransferKitError, UnknownBackboneError, WeightsNotFoundError
    from .evaluation import classification_metrics
    from .features import FeatureCache, extract_features
    from .heads import DenseHead
    from .model import TransferModel, load
    from .training import HeadTrainer

__all__ = [
    "Backbone", "DataConfig", "DataError", "DenseHead", "FeatureCache", "FitConfig", "FitResult", "HeadConfig",
    "HeadTrainConfig", "HeadTrainer", "ImageSplits", "NotFittedError", "TransferKitError", "TransferModel",
    "UnknownBackboneError", "WeightsNotFoundError", "classification_metrics", "evaluate", "extract_features", "fit",
    "get_backbone_spec", "list_backbones", "load", "load_backbone", "load_image_folder", "open_image", "predict",
]
