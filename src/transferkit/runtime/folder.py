"""The exported-model folder: ``export.json`` + the network file (+ ``labels.txt``, ``parity.json``;
``tokenizer.json`` for a text model).

``export.json`` holds everything needed to run the network without transferkit's training
stack: the modality (``image`` or ``text``), labels, preprocessing (image: resize/crop/normalise;
text: tokenizer file, ``max_length``, padding, input names), decision threshold, calibrated
temperature, precision and the parity measured at export time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TransferKitError
from .preprocess import Preprocessing
from .text import TextInputError, TextPreprocessing

EXPORT_CONFIG_NAME = "export.json"
EXPORT_FORMAT = "transferkit.export"
LABELS_NAME = "labels.txt"
PARITY_NAME = "parity.json"
MODALITIES = ("image", "text")


class ExportFolderError(TransferKitError, ValueError):
    """A folder that is not a readable transferkit export."""


def is_export_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder written by ``transferkit export``."""
    return (Path(path) / EXPORT_CONFIG_NAME).is_file()


@dataclass
class ExportConfig:
    """What ``export.json`` says about an exported model."""

    model_file: str
    runtime: str  # "onnx" or "torchscript"
    precision: str  # "fp32" or "int8"
    classes: list[str]
    preprocessing: Preprocessing | TextPreprocessing
    positive_label: str | None = None
    threshold: float = 0.5
    temperature: float | None = None
    input_name: str = "images"
    output_name: str = "logits"
    extra: dict[str, Any] = field(default_factory=dict)  # source, quantization, parity, versions
    modality: str = "image"  # "image" or "text"

    @property
    def is_text(self) -> bool:
        return self.modality == "text"

    @property
    def input_names(self) -> tuple[str, ...]:
        """The network's inputs: one image batch, or the tokenizer's arrays."""
        return tuple(self.preprocessing.input_names) if isinstance(self.preprocessing, TextPreprocessing) else (self.input_name,)

    @property
    def positive_index(self) -> int | None:
        return self.classes.index(self.positive_label) if self.positive_label is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "modality": self.modality,
            "model_file": self.model_file,
            "runtime": self.runtime,
            "precision": self.precision,
            **({"input_names": list(self.input_names)} if self.is_text else {"input_name": self.input_name}),
            "output_name": self.output_name,
            "num_classes": len(self.classes),
            "id2label": {str(i): c for i, c in enumerate(self.classes)},
            "preprocessing": self.preprocessing.to_config(),
            "positive_label": self.positive_label,
            "threshold": self.threshold,
            "temperature": self.temperature,
            **self.extra,
        }

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        (directory / EXPORT_CONFIG_NAME).write_text(json.dumps(self.to_json(), indent=2, default=str))
        (directory / LABELS_NAME).write_text("".join(c + "\n" for c in self.classes), encoding="utf-8")  # any locale
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "ExportConfig":
        directory = Path(directory)
        path = directory / EXPORT_CONFIG_NAME
        if not directory.is_dir():
            raise ExportFolderError(f"'{directory}' is not a folder; expected an export folder written by `transferkit export MODEL --out DIR`.")
        if not path.is_file():
            raise ExportFolderError(f"'{directory}' is not an exported model: {EXPORT_CONFIG_NAME} is missing "
                                    "(write one with `transferkit export MODEL --out DIR`).")
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != EXPORT_FORMAT:
                raise ExportFolderError(f"{path} has format {raw.get('format')!r}; expected {EXPORT_FORMAT!r}.")
            known = {"format", "modality", "model_file", "runtime", "precision", "input_name", "input_names", "output_name", "num_classes",
                     "id2label", "preprocessing", "positive_label", "threshold", "temperature"}
            modality = str(raw.get("modality", "image"))  # exports written before text support are image exports
            if modality not in MODALITIES:
                raise ExportFolderError(f"{path}: modality {modality!r} is not one of {MODALITIES}.")
            text = modality == "text"
            cfg = cls(
                model_file=str(raw["model_file"]),
                runtime=str(raw["runtime"]),
                precision=str(raw.get("precision", "fp32")),
                classes=saved_classes(raw, path),
                preprocessing=TextPreprocessing.from_config(raw["preprocessing"]) if text else Preprocessing.from_config(raw["preprocessing"]),
                positive_label=raw.get("positive_label"),
                threshold=saved_number(raw, "threshold", path),
                temperature=saved_number(raw, "temperature", path) if raw.get("temperature") is not None else None,
                input_name=str(raw.get("input_name", "input_ids" if text else "images")),
                output_name=str(raw.get("output_name", "logits")),
                extra={k: v for k, v in raw.items() if k not in known},
                modality=modality,
            )
        except TextInputError as exc:
            raise ExportFolderError(f"{path}: {exc}") from None
        except TransferKitError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ExportFolderError(f"{path} is not a valid export config ({type(exc).__name__}: {exc}).") from None
        if not (directory / cfg.model_file).is_file():
            raise ExportFolderError(f"'{directory}' is incomplete: {cfg.model_file} named in {EXPORT_CONFIG_NAME} is missing.")
        if cfg.is_text and not (directory / cfg.preprocessing.tokenizer_file).is_file():
            raise ExportFolderError(f"'{directory}' is incomplete: the tokenizer {cfg.preprocessing.tokenizer_file} named in "
                                    f"{EXPORT_CONFIG_NAME} is missing (re-export with `transferkit export MODEL --out DIR`).")
        if cfg.positive_label is not None and cfg.positive_label not in cfg.classes:
            raise ExportFolderError(f"{path}: positive_label {cfg.positive_label!r} is not one of {cfg.classes}.")
        return cfg


REEXPORT = "export the model again with `transferkit export MODEL --out DIR`"
# export.json's numbers: (the rule, its words, the default a missing value takes)
_NUMBERS = {"threshold": (lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1", 0.5),
            "temperature": (lambda v: math.isfinite(v) and v > 0, "a finite number above 0", None)}


def saved_number(raw: dict[str, Any], name: str, path: Path) -> float:
    """``threshold`` (a number in [0, 1]) or ``temperature`` (a finite number > 0) of an export.json, checked as
    ``transferkit.model.check_saved_scalars`` checks a model folder's: a hand-edited value would otherwise load and
    silently flip every decision (a threshold of -1 labels everything positive) or turn probabilities into NaN."""
    ok, rule, default = _NUMBERS[name]
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(float(value)):
        raise ExportFolderError(f"{path}: '{name}' is {value!r}; it must be {rule}"
                                + (f" (the default is {default})" if default is not None else "")
                                + f". The file was edited or damaged: {REEXPORT} (or fix the value).")
    return float(value)


def saved_classes(raw: dict[str, Any], path: Path) -> list[str]:
    """The class names of an export.json: ``num_classes`` (a whole number >= 1) names, ``id2label`` "0".."num_classes-1",
    no more, no fewer, no name twice. (How many scores the network gives is checked against the graph when it loads.)"""
    n, id2label = raw["num_classes"], raw["id2label"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ExportFolderError(f"{path}: 'num_classes' is {n!r}; it must be a whole number of classes (>= 1). "
                                f"The file was edited or damaged: {REEXPORT}.")
    if not isinstance(id2label, dict):
        raise ExportFolderError(f"{path}: 'id2label' is {type(id2label).__name__}, not an object mapping \"0\".. to class names. "
                                f"The file was edited or damaged: {REEXPORT}.")
    want = [str(i) for i in range(n)]
    if set(id2label) != set(want):
        raise ExportFolderError(f"{path}: 'num_classes' is {n} but 'id2label' has {len(id2label)} entries (keys {sorted(id2label)[:10]}"
                                + ("…" if len(id2label) > 10 else "") + f"); they must agree: id2label names classes \"0\"..\"{n - 1}\", "
                                f"one per score the network gives. The file was edited or damaged: {REEXPORT}.")
    classes = [id2label[k] for k in want]
    bad = [c for c in classes if not isinstance(c, str)]
    dupes = sorted({c for c in classes if classes.count(c) > 1}, key=str)
    if bad or dupes:
        raise ExportFolderError(f"{path}: 'id2label' has " + (f"class names that are not text: {bad}" if bad else f"{dupes} twice")
                                + f"; every class needs its own name. The file was edited or damaged: {REEXPORT}.")
    return classes

