"""A transferred model: backbone + head + labels + preprocessing, saved as one folder.

``save_pretrained(dir)`` writes ``config.json`` and ``model.safetensors`` (full weights, so
the folder is self-contained); ``transferkit.load(dir)`` rebuilds it offline, with no
pickle anywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .backbones import Backbone, load_backbone
from .backbones._weights import file_sha256  # memoised on (path, size, mtime)
from .data import BadImageError, make_transforms, open_image
from .errors import ConfigError, ModelFolderError, TrainingError
from .evaluation import predict_labels, resolve_positive
from .heads import DenseHead
from .runtime.predictor import as_paths, check_threshold, prediction_record

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "transferkit.image-classifier"


def _version() -> str:
    from . import __version__

    return __version__


def write_model_folder(module: nn.Module, directory: str | os.PathLike, config: dict[str, Any],
                       extra_files: Callable[[Path], None] | None = None) -> Path:
    """``model.safetensors`` (written atomically), then ``extra_files(dir)``, then ``config.json`` last."""
    from .safetensors_files import save_model_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = save_model_file(module, directory / WEIGHTS_NAME)
    if extra_files is not None:
        extra_files(directory)
    config = {**config, WEIGHTS_SHA256_KEY: file_sha256(weights)}  # checked on load: a damaged copy is refused
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2))  # last: ours wins over any other file's
    return directory


WEIGHTS_SHA256_KEY = "model_file_sha256"


def _scalar_problem(name: str, value: Any) -> str | None:
    """What is wrong with a ``threshold`` (a number in [0, 1]) or ``temperature`` (a finite number > 0), or None."""
    import math

    rule, ok = {"threshold": ("a number between 0 and 1", lambda v: 0.0 <= v <= 1.0),
                "temperature": ("a finite number above 0", lambda v: math.isfinite(v) and v > 0)}[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(float(value)):
        return f"'{name}' is {value!r}; it must be {rule}"
    return None


def check_batch_size(batch_size: Any) -> int:
    """A positive whole number of inputs per forward pass, or a :class:`ConfigError` saying so."""
    import numbers

    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number of at least 1; got {batch_size!r}.")
    return int(batch_size)


class DecisionScalars:
    """``threshold`` and ``temperature`` as checked attributes (mixed into the image and text classifiers): a value set
    after construction (``model.temperature = 0``) is refused when it is set, not first when the saved folder will not
    load, or when every prediction has turned into NaN."""

    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value: Any) -> None:
        problem = _scalar_problem("threshold", value)
        if problem:
            raise ConfigError(f"{problem}.")
        self._threshold = float(value)

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: Any) -> None:
        problem = _scalar_problem("temperature", value)
        if problem:
            raise ConfigError(f"{problem}.")
        self._temperature = float(value)


def check_scalars(threshold: Any, temperature: Any) -> None:
    """A model's ``threshold`` and ``temperature`` checked when it is built: a folder saved with a bad one would never load
    again (:func:`check_saved_scalars`), and a temperature of 0 turns every prediction into NaN."""
    for name, value in (("threshold", threshold), ("temperature", temperature)):
        problem = _scalar_problem(name, value)
        if problem:
            raise ConfigError(f"{problem}.")


def check_saved_scalars(cfg: dict[str, Any], cfg_path: Path) -> dict[str, float]:
    """``threshold`` (a number in [0, 1]) and ``temperature`` (a finite number > 0) of a saved config.json, checked: a
    hand-edited value would otherwise load and silently turn predictions into NaN or flip them."""
    out: dict[str, float] = {}
    for name, default in (("threshold", 0.5), ("temperature", 1.0)):
        value = cfg.get(name, default)
        problem = _scalar_problem(name, value)
        if problem:
            raise ModelFolderError(f"{cfg_path}: {problem} (the default is {default}). "
                                   "Fix the value, or save the model again with transferkit.")
        out[name] = float(value)
    return out


def load_weights_strictly(model: nn.Module, weights_path: Path, expected_sha256: str | None = None) -> None:
    """``model.safetensors`` into ``model``, every key and shape matching; a mismatch names what differs. The file must
    have the sha256 its config.json recorded (folders saved since it is recorded) and hold finite numbers only: a damaged
    file otherwise loads and predicts NaN, which an arg-max turns into the first class for every input."""
    from safetensors.torch import load_model

    if expected_sha256 is not None and file_sha256(weights_path) != expected_sha256:
        raise ModelFolderError(f"{weights_path} is not the file that was saved with its config.json (its sha256 differs from "
                               f"the recorded '{WEIGHTS_SHA256_KEY}'): it is damaged, or was copied from another save. Copy the "
                               "model folder again from where it was saved, or save the model again.")
    try:
        load_model(model, str(weights_path), strict=True)
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:4] if len(lines) > 1 else lines)[:600]
        raise ModelFolderError(f"{weights_path} does not match its config.json ({detail}). The two files must come from the same "
                               "save_pretrained; copy them together.") from None
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelFolderError(f"{weights_path} holds values that are not finite (NaN or inf) in {len(bad)} tensor(s), e.g. "
                               f"{', '.join(bad[:3])}: the file is damaged, or the model diverged before it was saved. Copy the "
                               "model folder again, or train it again (a lower learning rate, if it diverged).")


class TransferModel(DecisionScalars, nn.Module):
    """Images -> logits over ``classes``; the unit that is saved, loaded, evaluated and exported."""

    def __init__(
        self,
        backbone: Backbone,
        head: DenseHead,
        classes: Sequence[str],
        *,
        positive: str | None = None,
        threshold: float = 0.5,
        extra: dict[str, Any] | None = None,
        temperature: float = 1.0,
    ):
        super().__init__()
        classes = list(classes)
        if len(set(classes)) != len(classes):
            raise ConfigError(f"class names must be distinct; got {classes}.")
        # checked here, not first at predict time (an IndexError) or at load time (a folder saved but never loadable)
        if getattr(head, "num_classes", len(classes)) != len(classes):
            raise ConfigError(f"the head has {head.num_classes} outputs but {len(classes)} class names were given ({classes}): "
                              "build the head with one output per class.")
        width = getattr(backbone, "num_features", None)
        if width is not None and getattr(head, "in_features", width) != width:
            raise ConfigError(f"the head takes {head.in_features} features but the backbone gives {width}"
                              + (f" (feature_stages={backbone.feature_stages})" if hasattr(backbone, "feature_stages") else "")
                              + ": build the head with DenseHead(backbone.num_features, ...) after setting feature_stages.")
        check_scalars(threshold, temperature)
        self.backbone = backbone
        self.head = head
        self.classes = classes
        self.positive_index = resolve_positive(self.classes, positive)
        self.threshold = float(threshold)
        self.temperature = float(temperature)  # calibration: predict divides logits by it (forward does not)
        self.extra = dict(extra or {})

    @property
    def data_cfg(self) -> dict[str, Any]:
        return self.backbone.data_cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    # ---- inference -------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_proba_tensor(self, x: torch.Tensor) -> np.ndarray:
        self.eval()
        proba = (self(x).float() / self.temperature).softmax(1).cpu().numpy()
        if not np.isfinite(proba).all():  # an arg-max over NaN is class 0: every image would get the first class
            raise TrainingError("the model's outputs are not finite (NaN or inf), so it cannot predict: its weights hold "
                                "non-finite values (training diverged, or they were set by hand). Train it again, with a lower "
                                "learning rate if it diverged.")
        return proba

    def predict(self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, batch_size: int = 32,
                threshold: float | None = None) -> list[dict[str, Any]]:
        """Predict image files (one path or a list), on the model's device. Unreadable files get an ``error`` entry
        instead of a crash. ``threshold`` (binary models): the decision threshold on the calibrated P(positive), as
        ``evaluate --threshold`` (default: the model's own)."""
        threshold = check_threshold(self.classes, threshold, self.threshold)
        batch_size = check_batch_size(batch_size)
        paths = as_paths(paths)
        transform = make_transforms(self.data_cfg)
        device = next(self.parameters()).device
        results: list[dict[str, Any]] = [{} for _ in paths]
        good: list[tuple[int, torch.Tensor]] = []
        for i, p in enumerate(paths):
            try:
                good.append((i, transform(open_image(p))))
            except BadImageError as exc:
                results[i] = {"path": str(p), "error": exc.reason}
        for start in range(0, len(good), batch_size):
            chunk = good[start : start + batch_size]
            proba = self.predict_proba_tensor(torch.stack([t for _, t in chunk]).to(device))
            labels = predict_labels(proba, self.positive_index, threshold)
            for (i, _), pr, lab in zip(chunk, proba, labels):
                results[i] = prediction_record("path", str(paths[i]), self.classes, lab, pr)
        return results

    # ---- persistence -----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "transferkit_version": _version(),
            "backbone": {
                "name": self.backbone.name,
                "library": self.backbone.spec.library,
                "arch": self.backbone.spec.arch,
                "weights": {"fine_tuned": False, **self.backbone.weights_record},  # provenance; fine_tuned: changed since
                "test_views": self.backbone.test_views,
                "feature_stages": self.backbone.feature_stages,
            },
            "head": self.head.config(),
            "num_classes": len(self.classes),
            "id2label": {str(i): c for i, c in enumerate(self.classes)},
            "label2id": {c: i for i, c in enumerate(self.classes)},
            "preprocessing": self.data_cfg,
            "positive_label": self.classes[self.positive_index] if self.positive_index is not None else None,
            "threshold": self.threshold,
            "temperature": self.temperature,
            **({"extra": self.extra} if self.extra else {}),
        }

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        return write_model_folder(self, directory, self.config())

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> "TransferModel":
        directory = Path(directory).expanduser()
        if (directory / "model" / CONFIG_NAME).is_file():  # a run folder: its model/ sub-folder
            directory = directory / "model"
        cfg_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        if not cfg_path.is_file() or not weights_path.is_file():
            from .run_folder import seeds_hint

            raise ModelFolderError(
                f"'{directory}' is not a transferkit model folder: expected {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(as written by `transferkit fit --out RUN`, in RUN/model/)." + seeds_hint(directory)
            )
        try:
            cfg = json.loads(cfg_path.read_text())
            if cfg.get("format") != FORMAT:
                raise ModelFolderError(f"{cfg_path} has format {cfg.get('format')!r}; expected {FORMAT!r}.")
            classes = [cfg["id2label"][str(i)] for i in range(cfg["num_classes"])]
            backbone = load_backbone(cfg["backbone"]["name"], weights="none")
            # the weights come from this folder; a folder saved before `fine_tuned` was recorded may hold fine-tuned ones
            backbone.weights_record = {"fine_tuned": None, **cfg["backbone"]["weights"]}
            backbone.test_views = cfg["backbone"].get("test_views", "none")  # absent in folders saved before it existed
            backbone.feature_stages = cfg["backbone"].get("feature_stages", 1)  # likewise
            if cfg.get("preprocessing") is not None:  # what the model was trained with, whatever the registry says now
                backbone.data_cfg = cfg["preprocessing"]
            head = DenseHead.from_config(cfg["head"])
            if head.in_features != backbone.num_features:
                raise ModelFolderError(
                    f"{cfg_path}: the head takes {head.in_features} features, but {backbone.name} with feature_stages="
                    f"{backbone.feature_stages} gives {backbone.num_features}; 'head' and 'backbone' must come from the same save.")
            model = cls(backbone, head, classes, positive=cfg.get("positive_label"), extra=cfg.get("extra"), **check_saved_scalars(cfg, cfg_path))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:  # AttributeError: JSON that is not an object
            if isinstance(exc, ModelFolderError):
                raise
            raise ModelFolderError(f"{cfg_path} is not a valid transferkit config ({type(exc).__name__}: {exc}).") from None
        load_weights_strictly(model, weights_path, cfg.get(WEIGHTS_SHA256_KEY))
        model.source_dir = directory  # evaluate finds the run's record of its training images from here
        return model.to(device).eval()


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> TransferModel:
    """Load a saved model folder (or a run folder) offline; text classifiers dispatch on their format."""
    from .text.model import TextClassifier, is_text_model_folder

    if is_text_model_folder(path):
        return TextClassifier.from_pretrained(path, device=device)
    return TransferModel.from_pretrained(path, device=device)
