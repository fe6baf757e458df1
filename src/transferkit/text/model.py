"""A text classifier: encoder + pooling + head + labels + tokenizer, saved as one folder.

``save_pretrained(dir)`` writes ``config.json`` (format ``transferkit.text-classifier``: labels,
backbone, max_length, pooling, head, strategy, adapter, calibration temperature), ``model.safetensors`` (every weight, LoRA
merged in, so the folder is self-contained) and the tokenizer files. A LoRA model also keeps its
adapter in ``adapter/`` (peft's ``adapter_config.json`` + ``adapter_model.safetensors``), recorded
in ``config.json``. ``transferkit.load(dir)`` rebuilds it offline; no pickle anywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones.text import TextBackbone
from ..errors import ModelFolderError
from ..evaluation import predict_labels, resolve_positive
from ..heads import DenseHead
from ..model import DecisionScalars
from ..runtime.predictor import prediction_record

TEXT_FORMAT = "transferkit.text-classifier"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ADAPTER_DIR = "adapter"


class TextClassifier(DecisionScalars, nn.Module):
    """Texts -> logits over ``classes``: the unit that is saved, loaded, evaluated and predicted."""

    def __init__(self, backbone: TextBackbone, head: DenseHead, classes: Sequence[str], *, positive: str | None = None,
                 threshold: float = 0.5, strategy: str = "linear-probe", adapter: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None, temperature: float = 1.0):
        super().__init__()
        from ..model import check_scalars

        check_scalars(threshold, temperature)
        self.backbone = backbone
        self.head = head
        self.classes = list(classes)
        self.positive_index = resolve_positive(self.classes, positive)
        self.threshold = float(threshold)
        self.strategy = strategy
        self.adapter = adapter
        self.temperature = float(temperature)  # calibration (the report fits it): predict divides logits by it, forward does not
        self.extra = dict(extra or {})

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.backbone(input_ids, attention_mask, token_type_ids))

    # ---- inference -------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 64, device: str | torch.device | None = None,
                      calibrated: bool = True) -> np.ndarray:
        """Class probabilities ``(len(texts), num_classes)``; batches are grouped by length. ``device``: where to run
        (default: where the model is, e.g. after ``transferkit.load(path, device="cuda")``).

        ``calibrated``: softmax of logits / ``temperature`` (the validation-fitted calibration);
        ``False`` gives the raw model's probabilities (temperature 1, what reports start from).
        """
        from ..model import check_batch_size

        batch_size = check_batch_size(batch_size)
        temperature = self.temperature if calibrated else 1.0
        device = device if device is not None else next(self.parameters()).device
        self.eval().to(device)
        texts = list(texts)
        out = np.zeros((len(texts), len(self.classes)), np.float32)
        if not texts:
            return out
        feats = self.backbone.tokenize(texts)
        order = np.argsort([len(f["input_ids"]) for f in feats], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in self.backbone.collate([feats[i] for i in idx]).items()}
            out[idx] = (self(**batch).float() / temperature).softmax(1).cpu().numpy()
        return out

    def predict(self, texts: Sequence[str], *, batch_size: int = 64, threshold: float | None = None) -> list[dict[str, Any]]:
        """Label and class probabilities per text (a list of str); an empty text gets an ``error`` entry instead.
        ``threshold`` (binary models): decide positive when the calibrated P(positive) >= it (default: ``self.threshold``)."""
        from ..runtime.predictor import check_threshold
        from ..runtime.text import check_texts

        threshold = check_threshold(self.classes, threshold, self.threshold)
        texts = check_texts(texts)  # one str is refused, not read as a sequence of one-character texts
        good = [i for i, t in enumerate(texts) if t.strip()]
        proba = self.predict_proba([texts[i].strip() for i in good], batch_size=batch_size)
        labels = predict_labels(proba, self.positive_index, threshold) if len(good) else []
        results: list[dict[str, Any]] = [{"text": t, "error": "empty text"} for t in texts]
        for i, pr, lab in zip(good, proba, labels):
            results[i] = prediction_record("text", texts[i], self.classes, lab, pr)
        return results

    # ---- persistence -----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        from .. import __version__

        enc_cfg = self.backbone.encoder.config.to_dict()
        return {
            "format": TEXT_FORMAT,
            "transferkit_version": __version__,
            "backbone": {"name": self.backbone.name, "library": "transformers", "weights": {"fine_tuned": False, **self.backbone.weights_record}, "hf_config": enc_cfg},
            "max_length": self.backbone.max_length,
            "pooling": self.backbone.pooling,
            "head": self.head.config(),
            "num_classes": len(self.classes),
            "labels": self.classes,
            "id2label": {str(i): c for i, c in enumerate(self.classes)},
            "label2id": {c: i for i, c in enumerate(self.classes)},
            "positive_label": self.classes[self.positive_index] if self.positive_index is not None else None,
            "threshold": self.threshold,
            "temperature": self.temperature,
            "strategy": self.strategy,
            "adapter": self.adapter,
            **({"extra": self.extra} if self.extra else {}),
        }

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        from ..model import write_model_folder

        return write_model_folder(self, directory, self.config(),
                                  extra_files=lambda d: self.backbone.tokenizer.save_pretrained(str(d)))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> "TextClassifier":
        from transformers import AutoModel, AutoTokenizer

        from ..model import WEIGHTS_SHA256_KEY, check_saved_scalars, load_weights_strictly
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        directory = Path(directory).expanduser()
        if (directory / "model" / CONFIG_NAME).is_file():  # a run folder: its model/ sub-folder
            directory = directory / "model"
        cfg_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        if not cfg_path.is_file() or not weights_path.is_file():
            raise ModelFolderError(f"'{directory}' is not a transferkit text model folder: expected {CONFIG_NAME} and {WEIGHTS_NAME} "
                                   "(as written by `transferkit fit-text --out RUN`, in RUN/model/).")
        try:
            cfg = json.loads(cfg_path.read_text())
            if cfg.get("format") != TEXT_FORMAT:
                raise ModelFolderError(f"{cfg_path} has format {cfg.get('format')!r}; expected {TEXT_FORMAT!r}.")
            hf = dict(cfg["backbone"]["hf_config"])
            enc_config = CONFIG_MAPPING[hf["model_type"]].from_dict(hf)
            encoder = AutoModel.from_config(enc_config)
            tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
            record = {"fine_tuned": cfg.get("strategy", "linear-probe") != "linear-probe", **cfg["backbone"]["weights"]}
            backbone = TextBackbone(cfg["backbone"]["name"], encoder, tokenizer, record,
                                    pooling=cfg["pooling"], max_length=cfg["max_length"])
            head = DenseHead.from_config(cfg["head"])
            if head.in_features != backbone.num_features:
                raise ModelFolderError(f"{cfg_path}: the head takes {head.in_features} features, but the encoder gives "
                                       f"{backbone.num_features}; 'head' and 'backbone' must come from the same save.")
            classes = list(cfg["labels"])
            model = cls(backbone, head, classes, positive=cfg.get("positive_label"), strategy=cfg.get("strategy", "linear-probe"),
                        adapter=cfg.get("adapter"), extra=cfg.get("extra"), **check_saved_scalars(cfg, cfg_path))
        except ModelFolderError:
            raise
        except (KeyError, ValueError, TypeError, OSError, AttributeError) as exc:  # AttributeError: JSON that is not an object
            raise ModelFolderError(f"{cfg_path} is not a valid transferkit text model ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}).") from None
        load_weights_strictly(model, weights_path, cfg.get(WEIGHTS_SHA256_KEY))
        model.source_dir = directory  # evaluate_text finds the run's record of its training texts from here
        return model.to(device).eval()


def is_text_model_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` (a model folder or a run folder) holds a saved text classifier."""
    path = Path(path).expanduser()
    for cfg in (path / "model" / CONFIG_NAME, path / CONFIG_NAME):
        if cfg.is_file():
            try:
                saved = json.loads(cfg.read_text())
            except (ValueError, OSError):
                return False
            return isinstance(saved, dict) and saved.get("format") == TEXT_FORMAT
    return False
