"""The evaluation transform in numpy + Pillow: the same pixels as timm's ``create_transform``.

timm's eval pipeline (``transforms_imagenet_eval``, centre mode) is: resize the shorter side to
``floor(size / crop_pct)`` with the weights' interpolation (torchvision ``Resize`` on a PIL
image, i.e. Pillow's antialiased ``Image.resize``), centre crop to ``size`` (torchvision's
rounding, zero padding when the image is smaller), scale to [0, 1] and normalise with mean/std.
The arithmetic below follows torchvision's ``_compute_resized_output_size`` and
``center_crop`` exactly, so an exported model sees the same input tensor as the PyTorch model;
the export parity check measures the whole pipeline to prove it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..errors import TransferKitError

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


class PreprocessingError(TransferKitError, ValueError):
    """A preprocessing config the numpy pipeline cannot reproduce."""


@dataclass(frozen=True)
class Preprocessing:
    """Input size, crop fraction, interpolation and normalisation of a model's weights."""

    input_size: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    crop_pct: float = 0.875

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "Preprocessing":
        try:
            pre = cls(
                input_size=tuple(int(v) for v in cfg["input_size"]),  # type: ignore[arg-type]
                mean=tuple(float(v) for v in cfg["mean"]),  # type: ignore[arg-type]
                std=tuple(float(v) for v in cfg["std"]),  # type: ignore[arg-type]
                interpolation=str(cfg.get("interpolation", "bilinear")),
                crop_pct=float(cfg.get("crop_pct") or 0.875),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PreprocessingError(f"preprocessing config {cfg!r} is incomplete ({type(exc).__name__}: {exc}); "
                                     "expected input_size, mean, std, interpolation, crop_pct.") from None
        if pre.interpolation not in _RESAMPLE:
            raise PreprocessingError(f"interpolation {pre.interpolation!r} is not supported; expected one of {sorted(_RESAMPLE)}.")
        if len(pre.input_size) != 3 or pre.input_size[0] != 3:
            raise PreprocessingError(f"input_size {pre.input_size} must be (3, height, width).")
        return pre

    def to_config(self) -> dict[str, Any]:
        return {"input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation, "crop_pct": self.crop_pct}

    @property
    def resize_size(self) -> tuple[int, int]:
        """(height, width) of the shorter-side resize target, before the crop (timm's scale_size)."""
        h, w = self.input_size[1:]
        return math.floor(h / self.crop_pct), math.floor(w / self.crop_pct)

    def __call__(self, img: Image.Image) -> np.ndarray:
        """An RGB Pillow image -> float32 array (3, H, W), normalised."""
        return preprocess_image(img, self)

    def batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.stack([self(im) for im in images]).astype(np.float32, copy=False)


def resize_shorter_side(img: Image.Image, size: int, interpolation: str) -> Image.Image:
    """torchvision ``Resize(size)`` on a PIL image: the shorter side becomes ``size``."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    if short == size:
        return img  # torchvision returns the image unchanged in this case too
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return img.resize((new_w, new_h), _RESAMPLE[interpolation])


def resize_keep_ratio(img: Image.Image, size: tuple[int, int], interpolation: str) -> Image.Image:
    """timm ``ResizeKeepRatio`` (non-square targets): scale so the image covers ``size``."""
    w, h = img.size
    ratio = min(w / size[1], h / size[0])  # shorter side matches, per timm's default longest=0
    new_w, new_h = round(w / ratio), round(h / ratio)
    return img.resize((new_w, new_h), _RESAMPLE[interpolation])


def center_crop(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision ``center_crop`` on an (H, W, C) array, zero-padding a too-small image first."""
    h, w = arr.shape[:2]
    if height > h or width > w:
        pad_t, pad_l = (height - h) // 2 if height > h else 0, (width - w) // 2 if width > w else 0
        pad_b, pad_r = (height - h + 1) // 2 if height > h else 0, (width - w + 1) // 2 if width > w else 0
        arr = np.pad(arr, ((pad_t, pad_b), (pad_l, pad_r), (0, 0)))
        h, w = arr.shape[:2]
        if h == height and w == width:
            return arr
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return arr[top : top + height, left : left + width]


def preprocess_image(img: Image.Image, pre: Preprocessing) -> np.ndarray:
    """Resize, centre-crop and normalise one RGB image -> float32 (3, H, W)."""
    if img.mode != "RGB":
        raise PreprocessingError(f"expected an RGB image, got mode {img.mode!r}; read files with "
                                 "transferkit.runtime.read_image, which converts every mode to RGB.")
    sh, sw = pre.resize_size
    img = resize_shorter_side(img, sh, pre.interpolation) if sh == sw else resize_keep_ratio(img, (sh, sw), pre.interpolation)
    arr = center_crop(np.asarray(img), pre.input_size[1], pre.input_size[2])
    x = arr.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(pre.mean, dtype=np.float32)) / np.asarray(pre.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
