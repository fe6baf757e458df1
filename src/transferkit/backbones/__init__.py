"""Pretrained backbones: registry, weights resolution and the common ``Backbone`` surface."""

from . import _zoo, text  # noqa: F401  (registers the shipped image and text entries)
from ._registry import BackboneSpec, get_backbone_spec, list_backbones, register_backbone
from ._weights import PackagedWeights, ResolvedWeights, WeightsCfg, file_sha256, is_offline, read_state_dict, resolve_weights
from .backbone import Backbone, WeightsMismatchError, backbone_num_params, load_backbone

__all__ = [
    "Backbone",
    "BackboneSpec",
    "PackagedWeights",
    "ResolvedWeights",
    "WeightsCfg",
    "WeightsMismatchError",
    "file_sha256",
    "get_backbone_spec",
    "is_offline",
    "list_backbones",
    "load_backbone",
    "read_state_dict",
    "register_backbone",
    "resolve_weights",
]
