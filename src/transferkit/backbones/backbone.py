"""One surface for every image backbone: ``embed(x) -> (N, num_features)``.

:func:`load_backbone` builds the library's full ImageNet model, loads resolved weights into
it with ``strict=True`` (so a wrong file fails loudly, never silently half-loads), then cuts
the ImageNet classifier off and keeps the pooled feature extractor.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import MAX_FEATURE_STAGES
from ..errors import ConfigError, TransferKitError
from ._convert import efficientnet_pytorch_to_timm
from ._registry import BackboneSpec, get_backbone_spec
from ._weights import resolve_weights


class WeightsMismatchError(TransferKitError, ValueError):
    """A weights file that does not fit the backbone's architecture."""


# test-time views: "flips" = the image, its horizontal and vertical mirror images and its transpose
TEST_VIEWS = ("none", "flips")


def flip_views(x: torch.Tensor) -> torch.Tensor:
    """``(4N, 3, H, W)``: the batch, mirrored left-right, mirrored top-bottom, and transposed (rotated by 180 degrees
    instead when the input is not square). Leaves and X-rays have no canonical orientation the label depends on."""
    t = x.transpose(-1, -2) if x.shape[-1] == x.shape[-2] else x.flip(-2, -1)
    return torch.cat([x, x.flip(-1), x.flip(-2), t])


class Backbone(nn.Module):
    """A pretrained feature extractor: images ``(N, 3, H, W)`` -> pooled features ``(N, D)``.

    ``test_views="flips"`` (test-time augmentation) makes the features, in eval mode, the mean over the four
    :func:`flip_views` of each image, computed as one batch; in train mode (fine-tuning) one view is used, since
    training augmentation already flips. Everything that runs the backbone in eval mode (feature extraction and
    its cache, evaluation, ``predict``, ONNX export) sees the same averaged features, at 4x the cost.

    ``feature_stages=K`` (K > 1) appends to the pooled output the global-average-pooled outputs of the K - 1 stages
    before it (a stage ends where the channel count or resolution changes), so a head also sees mid-level features
    (edges, textures, spots) that the last stage has abstracted away. Frozen intermediate features transfer better
    than the last layer alone to targets far from ImageNet (Evci et al., *Head2Toe*, ICML 2022). The features get
    wider (e.g. tf_efficientnet_lite0: 1280 -> 1280 + 192 + 320 for K = 3: the last stage, then the others in forward order) and cost nothing extra to compute.
    """

    def __init__(self, spec: BackboneSpec, body: nn.Module, weights_record: dict[str, Any]):
        super().__init__()
        self.spec = spec
        self.body = body
        self.weights_record = weights_record
        self._test_views = "none"
        self._feature_stages = 1
        self._stage_taps: list[tuple[nn.Module, int]] = []  # (module whose output is pooled, its channels)
        self._stage_ends: list[tuple[nn.Module, int]] | None = None  # every stage end, found once (the architecture is fixed)
        self._data_cfg: dict[str, Any] | None = None  # a saved model's own preprocessing (see data_cfg)

    @property
    def test_views(self) -> str:
        return self._test_views

    @test_views.setter
    def test_views(self, views: str) -> None:
        if views not in TEST_VIEWS:
            raise ValueError(f"test_views must be one of {', '.join(TEST_VIEWS)}; got {views!r}.")
        self._test_views = views

    @property
    def feature_stages(self) -> int:
        return self._feature_stages

    @feature_stages.setter
    def feature_stages(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_FEATURE_STAGES:
            raise ConfigError(f"feature_stages must be an integer from 1 (the last stage only) to {MAX_FEATURE_STAGES}; got {k!r}.")
        taps = self._all_stage_ends() if k > 1 else []
        if k - 1 > len(taps):
            raise ConfigError(f"'{self.name}' has {len(taps) + 1} stages; feature_stages={k} asks for more. Pass at most {len(taps) + 1}.")
        self._stage_taps = taps[len(taps) - (k - 1):] if k > 1 else []
        self._feature_stages = k

    @property
    def max_feature_stages(self) -> int:
        """How many stages this backbone has (the largest valid :attr:`feature_stages`, at most 8)."""
        return min(MAX_FEATURE_STAGES, len(self._all_stage_ends()) + 1)

    def _all_stage_ends(self) -> list[tuple[nn.Module, int]]:
        if self._stage_ends is None:
            self._stage_ends = _stage_ends(self)
        return self._stage_ends

    @contextmanager
    def single_view(self) -> Iterator["Backbone"]:
        """Temporarily one view (e.g. for Grad-CAM, whose feature-map hooks expect one map per input image)."""
        views, self._test_views = self._test_views, "none"
        try:
            yield self
        finally:
            self._test_views = views

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def num_features(self) -> int:
        return self.spec.num_features + sum(c for _, c in self._stage_taps)

    @property
    def data_cfg(self) -> dict[str, Any]:
        """Preprocessing the weights expect (input size, mean/std, interpolation, crop): the registry's, or the one a
        saved model folder records (what it was trained with, even if the registry has changed since)."""
        return self._data_cfg if self._data_cfg is not None else self.spec.weights.data_cfg

    @data_cfg.setter
    def data_cfg(self, cfg: dict[str, Any]) -> None:
        self._data_cfg = check_preprocessing(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x)
        weight = next(self.body.parameters(), None)
        if weight is not None and x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            from ..errors import DataError

            raise DataError(f"the backbone's weights are {str(weight.dtype).replace('torch.', '')} and the input is "
                            f"{str(x.dtype).replace('torch.', '')}: convert the input, x.to({weight.dtype}) (x.float() for float32).")
        if self._test_views == "flips" and not self.training:
            return self._pooled(flip_views(x)).unflatten(0, (4, -1)).mean(0)
        return self._pooled(x)

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        if not self._stage_taps:
            return self.body(x)
        pooled: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda _m, _a, out: pooled.append(out.mean((2, 3)))) for m, _ in self._stage_taps]
        try:
            last = self.body(x)
        finally:
            for h in hooks:
                h.remove()
        return torch.cat([last, *pooled], 1)  # the last stage first: column slice [:spec.num_features] = K = 1 features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of a batch ``(N, 3, H, W)``, a float tensor preprocessed as :attr:`data_cfg` says (the same as
        calling the module); any other input is a :class:`~transferkit.errors.DataError` saying how to convert it."""
        return self(x)

    def blocks(self) -> list[nn.Module]:
        """The backbone's stages from input to output (the unit of partial unfreezing)."""
        return _blocks(self.spec.family, self.spec.library, self.body)


PREPROCESS_HINT = ("preprocess images with transferkit.data.make_transforms(backbone.data_cfg) (PIL image -> (3, H, W) float "
                   "tensor, normalised) and stack them, or use model.predict(paths) for image files")


def check_image_batch(x: Any) -> None:
    """A backbone's input must be a float tensor ``(N, 3, H, W)``; anything else (a numpy array, one image without the
    batch dimension, channels last, one channel, uint8 pixels) is a :class:`DataError` naming what was received and how to
    convert it, instead of an error from inside a convolution."""
    from ..errors import DataError

    if not isinstance(x, torch.Tensor):
        shape = getattr(x, "shape", None)
        got = f"{type(x).__name__}" + (f" of shape {tuple(shape)} {getattr(x, 'dtype', '')}" if shape is not None else "")
        raise DataError(f"a backbone takes a float tensor of shape (N, 3, H, W); got a {got}: {PREPROCESS_HINT} "
                        "(torch.from_numpy(x) converts an array that is already preprocessed).")
    shape, dtype = tuple(x.shape), str(x.dtype).replace("torch.", "")
    hint = ""
    if not x.dtype.is_floating_point:
        hint = f"pixels must be preprocessed floats, not {dtype} values: "
    elif x.ndim == 3 and shape[0] == 3:
        hint = "one image needs the batch dimension: x.unsqueeze(0); "
    elif x.ndim == 3 and shape[-1] == 3:
        hint = "this looks like one channels-last image: x.permute(2, 0, 1).unsqueeze(0) after preprocessing; "
    elif x.ndim == 4 and shape[-1] == 3 and shape[1] != 3:
        hint = "this looks like channels-last images: x.permute(0, 3, 1, 2); "
    elif x.ndim == 4 and shape[1] == 1:
        hint = "one channel (grayscale): open the images as RGB (the preprocessing does) or x.expand(-1, 3, -1, -1); "
    elif x.ndim == 4 and shape[1] == 3:
        return
    else:
        hint = ""
    raise DataError(f"a backbone takes a float tensor of shape (N, 3, H, W); got {shape} {dtype}: {hint}{PREPROCESS_HINT}.")


def _tap_modules(backbone: Backbone) -> list[nn.Module]:
    """Modules that run in the body's forward and end each block before the last (a hook on them sees the block's
    output). Grouping containers that are never called themselves (a ModuleList, VGG's regrouped layers) stand for
    their last layer; stems given as ModuleLists are left out."""
    taps = []
    for block in backbone.blocks()[:-1]:
        if isinstance(block, nn.ModuleList):
            continue
        if backbone.spec.family == "vgg":
            block = block[-1]
        taps.append(block)
    return taps


def _stage_ends(backbone: Backbone) -> list[tuple[nn.Module, int]]:
    """(module, channels) at the end of each stage before the last, input to output: a block whose output shape
    differs from the next block's (channels or resolution). One forward of a small dummy batch finds them."""
    taps = _tap_modules(backbone)
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda _m, _a, out, i=i: shapes.__setitem__(i, tuple(out.shape[1:]))) for i, m in enumerate(taps)]
    param = next(backbone.body.parameters())
    size = max(64, int(backbone.data_cfg.get("input_size", (3, 224, 224))[-1]) // 2)
    modes = [(m, m.training) for m in backbone.body.modules()]  # restored one by one: frozen BatchNorm stays in eval
    try:
        backbone.body.eval()
        with torch.no_grad():
            backbone.body(torch.zeros(1, 3, size, size, device=param.device, dtype=param.dtype))
    finally:
        for h in hooks:
            h.remove()
        for m, mode in modes:
            m.training = mode
    ends = []
    for i, m in enumerate(taps):
        if i not in shapes or len(shapes[i]) != 3:  # not a feature map (or never called): not a stage
            continue
        nxt = shapes.get(i + 1)
        if nxt is None or nxt != shapes[i]:
            ends.append((m, shapes[i][0]))
    return ends


def _body(spec: BackboneSpec, model: nn.Module) -> nn.Module:
    """Cut the ImageNet classifier off: the rest ends in globally pooled features."""
    if spec.library == "timm":
        model.reset_classifier(0)
        return model
    if spec.family in ("vgg", "mobilenet"):
        return nn.Sequential(model.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    if spec.family == "resnet":
        model.fc = nn.Identity()
        return model
    raise ValueError(f"no feature cut defined for family '{spec.family}'")


def _blocks(family: str, library: str, body: nn.Module) -> list[nn.Module]:
    if library == "timm":  # EfficientNet: stem, stages, head conv
        return [nn.ModuleList([body.conv_stem, body.bn1]), *body.blocks, nn.ModuleList([body.conv_head, body.bn2])]
    if family == "vgg":  # split the conv stack after each max-pool
        groups, current = [], []
        for layer in body[0]:
            current.append(layer)
            if isinstance(layer, nn.MaxPool2d):
                groups.append(nn.Sequential(*current))
                current = []
        return groups + ([nn.Sequential(*current)] if current else [])
    if family == "mobilenet":
        return list(body[0])
    if family == "resnet":
        return [nn.ModuleList([body.conv1, body.bn1]), body.layer1, body.layer2, body.layer3, body.layer4]
    raise ValueError(f"no blocks defined for family '{family}'")


def _build_without_init(spec: BackboneSpec) -> nn.Module:
    """The architecture on the meta device: no time spent on a random init that the weights replace
    (seconds for VGG). Falls back to a normal build for builders that cannot run on meta."""
    try:
        with torch.device("meta"):
            return spec.build()
    except Exception:  # noqa: BLE001 - any builder failure on meta just means "build normally"
        return spec.build()


def _load_into(spec: BackboneSpec, model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """``load_state_dict(strict=True)``; a meta-built model takes fresh float32 copies of the tensors
    (fresh allocations: tensors sliced out of a file buffer may be misaligned, which changes CPU kernels)."""
    if not any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
        model.load_state_dict(state_dict, strict=True)
        return model
    state_dict = {k: v.to(torch.float32 if v.is_floating_point() else v.dtype, copy=True) for k, v in state_dict.items()}
    model.load_state_dict(state_dict, strict=True, assign=True)
    if any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):  # non-persistent buffers
        model = spec.build()
        model.load_state_dict(state_dict, strict=True)
    return model


def backbone_num_params(name: str) -> int | None:
    """Parameters of ``name`` as :func:`load_backbone` returns it (the ImageNet classifier cut off), counted on the meta
    device: no weights are read and nothing is initialised. None when the architecture cannot be built that way."""
    spec = get_backbone_spec(name)
    if spec.modality != "image":
        return None
    try:
        return int(sum(p.numel() for p in _body(spec, _build_without_init(spec)).parameters()))
    except Exception:  # noqa: BLE001 - a builder that cannot run on meta: the caller measures after loading instead
        return None


def check_preprocessing(cfg: Any) -> dict[str, Any]:
    """A preprocessing record (``input_size`` [3, H, W], ``mean`` and ``std`` of 3, ``interpolation``, ``crop_pct``), or
    a :class:`ConfigError` naming what is wrong."""
    from ..errors import ConfigError

    try:
        size = [int(v) for v in cfg["input_size"]]
        mean, std = [float(v) for v in cfg["mean"]], [float(v) for v in cfg["std"]]
        out = {"input_size": size, "mean": mean, "std": std, "interpolation": str(cfg["interpolation"]), "crop_pct": float(cfg["crop_pct"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"preprocessing needs input_size, mean, std, interpolation and crop_pct ({type(exc).__name__}: {exc}).") from None
    if len(size) != 3 or size[0] != 3 or min(size[1:]) < 8 or len(mean) != 3 or len(std) != 3 or min(std) <= 0 or not 0 < out["crop_pct"] <= 1:
        raise ConfigError(f"preprocessing {cfg} is not usable: input_size [3, H, W] with H, W >= 8, three means, three positive "
                          "stds and 0 < crop_pct <= 1.")
    from ..runtime.preprocess import _RESAMPLE  # the names both the torch transforms and the exported runtime resize with

    if out["interpolation"] not in _RESAMPLE:
        raise ConfigError(f"preprocessing interpolation {out['interpolation']!r} is not one of {sorted(_RESAMPLE)}.")
    return out


def load_backbone(name: str, weights: str | os.PathLike | None = "auto", *, feature_stages: int = 1) -> Backbone:
    """Build a registered backbone with its pretrained weights.

    ``weights``: ``"auto"`` (explicit > caches > installed packages > download),
    ``"none"``/``None`` (random init: the no-transfer baseline) or a file path.
    ``feature_stages``: how many of the last stages' pooled outputs the features concatenate (1: the last stage
    alone; ``transferkit.fit`` and ``rank`` use 3 by default, ``--stages``).
    """
    spec = get_backbone_spec(name)
    if spec.modality != "image":
        from ..errors import ConfigError

        raise ConfigError(f"'{name}' is a {spec.modality} encoder, not an image backbone: use transferkit.text.fit_text / "
                          f"`transferkit fit-text` (or transferkit.backbones.text.load_text_backbone('{name}')) for texts; `transferkit models` lists the image backbones.")
    if weights is None or str(weights).lower() == "none":
        model = spec.build()
        record: dict[str, Any] = {"source": "none", "path": None, "sha256": None}
    else:
        resolved = resolve_weights(name, spec.weights, weights)  # before building: missing weights fail fast
        model = _build_without_init(spec)
        state_dict = resolved.state_dict
        if spec.library == "timm" and spec.family == "efficientnet":
            state_dict = efficientnet_pytorch_to_timm(state_dict, [len(s) for s in model.blocks])
        try:
            model = _load_into(spec, model, state_dict)
        except RuntimeError as exc:
            first = str(exc).splitlines()
            raise WeightsMismatchError(
                f"weights from '{resolved.path}' do not fit '{name}' ({spec.library} {spec.arch}): "
                f"{' '.join(first[:3])[:400]}. Expected a full {spec.library} '{spec.arch}' ImageNet state dict."
            ) from None
        record = resolved.record()
        if record["path"] is not None:  # an absolute path: the record must not depend on the working directory
            record["path"] = str(Path(record["path"]).absolute())
    backbone = Backbone(spec, _body(spec, model), record)
    if feature_stages != 1:
        backbone.feature_stages = feature_stages  # range-checked by the setter
    return backbone
