"""The exported-model folder: ``export.json`` + the network file (+ ``labels.txt``, ``parity.json``).

``export.json`` holds everything needed to run the network without transferkit's training
stack: labels, preprocessing, decision threshold, calibrated temperature, precision and the
parity measured at export time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TransferKitError
from .preprocess import Preprocessing

EXPORT_CONFIG_NAME = "export.json"
EXPORT_FORMAT = "transferkit.export"
LABELS_NAME = "labels.txt"
PARITY_NAME = "parity.json"


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
    preprocessing: Preprocessing
    positive_label: str | None = None
    threshold: float = 0.5
    temperature: float | None = None
    input_name: str = "images"
    output_name: str = "logits"
    extra: dict[str, Any] = field(default_factory=dict)  # source, quantization, parity, versions

    @property
    def positive_index(self) -> int | None:
        return self.classes.index(self.positive_label) if self.positive_label is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "model_file": self.model_file,
            "runtime": self.runtime,
            "precision": self.precision,
            "input_name": self.input_name,
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
        (directory / LABELS_NAME).write_text("".join(c + "\n" for c in self.classes))
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
            known = {"format", "model_file", "runtime", "precision", "input_name", "output_name", "num_classes", "id2label",
                     "preprocessing", "positive_label", "threshold", "temperature"}
            cfg = cls(
                model_file=str(raw["model_file"]),
                runtime=str(raw["runtime"]),
                precision=str(raw.get("precision", "fp32")),
                classes=[raw["id2label"][str(i)] for i in range(int(raw["num_classes"]))],
                preprocessing=Preprocessing.from_config(raw["preprocessing"]),
                positive_label=raw.get("positive_label"),
                threshold=float(raw.get("threshold", 0.5)),
                temperature=float(raw["temperature"]) if raw.get("temperature") is not None else None,
                input_name=str(raw.get("input_name", "images")),
                output_name=str(raw.get("output_name", "logits")),
                extra={k: v for k, v in raw.items() if k not in known},
            )
        except TransferKitError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ExportFolderError(f"{path} is not a valid export config ({type(exc).__name__}: {exc}).") from None
        if not (directory / cfg.model_file).is_file():
            raise ExportFolderError(f"'{directory}' is incomplete: {cfg.model_file} named in {EXPORT_CONFIG_NAME} is missing.")
        if cfg.positive_label is not None and cfg.positive_label not in cfg.classes:
            raise ExportFolderError(f"{path}: positive_label {cfg.positive_label!r} is not one of {cfg.classes}.")
        if cfg.temperature is not None and not cfg.temperature > 0:
            raise ExportFolderError(f"{path}: temperature must be > 0, got {cfg.temperature}.")
        return cfg
