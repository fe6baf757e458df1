"""Run an exported model with onnxruntime + numpy + Pillow: no torch on the device.

>>> from transferkit.runtime import ExportedModel
>>> model = ExportedModel("exports/plants-int8")
>>> model.predict(["leaf.jpg"])   # [{"path": ..., "label": ..., "probabilities": {...}}]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .folder import ExportConfig
from .images import ImageReadError, read_image


def softmax(logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    z = logits.astype(np.float64) / (temperature or 1.0)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def decide(proba: np.ndarray, positive_index: int | None, threshold: float) -> np.ndarray:
    """Arg-max, or for a binary task: positive when P(positive) >= threshold (as in training)."""
    if positive_index is not None and proba.shape[1] == 2:
        return np.where(proba[:, positive_index] >= threshold, positive_index, 1 - positive_index)
    return proba.argmax(1)


def make_session(path: str | Path, *, num_threads: int | None = None, providers: Sequence[str] | None = None):
    """An onnxruntime session with full graph optimisation (CUDA first when it is available)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        opts.intra_op_num_threads = int(num_threads)
    available = ort.get_available_providers()
    providers = list(providers) if providers else [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


class ExportedModel:
    """An exported model folder, ready to predict; the network runs in onnxruntime.

    TorchScript exports also load here (``runtime: torchscript``), but those need torch.
    """

    def __init__(self, directory: str | os.PathLike, *, num_threads: int | None = None, providers: Sequence[str] | None = None,
                 config: ExportConfig | None = None):
        self.directory = Path(directory)
        self.config = config if config is not None else ExportConfig.load(self.directory)
        self.classes = self.config.classes
        self.preprocessing = self.config.preprocessing
        path = self.directory / self.config.model_file
        if self.config.runtime == "onnx":
            self._session = make_session(path, num_threads=num_threads, providers=providers)
            self._run = lambda x: self._session.run([self.config.output_name], {self.config.input_name: x})[0]
        elif self.config.runtime == "torchscript":
            import torch  # TorchScript needs torch by definition

            if num_threads:
                torch.set_num_threads(int(num_threads))
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
                module = torch.jit.load(str(path), map_location="cpu").eval()

            def run(x: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    return module(torch.from_numpy(x)).float().numpy()

            self._run = run
        else:
            from .folder import ExportFolderError

            raise ExportFolderError(f"{self.directory}: unknown runtime {self.config.runtime!r}; expected 'onnx' or 'torchscript'.")

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw logits of a preprocessed batch ``(N, 3, H, W)`` float32."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        expected = tuple(self.preprocessing.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            from .preprocess import PreprocessingError

            raise PreprocessingError(f"expected a batch of shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}.")
        return self._run(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (temperature-scaled when the model was calibrated)."""
        return softmax(self.logits(x), self.config.temperature)

    def predict(self, paths: Sequence[str | os.PathLike], *, batch_size: int = 32) -> list[dict[str, Any]]:
        """Predict image files; a bad file gets an ``error`` entry instead of stopping the run."""
        results: list[dict[str, Any]] = [{} for _ in paths]
        good: list[tuple[int, np.ndarray]] = []
        for i, p in enumerate(paths):
            try:
                good.append((i, self.preprocessing(read_image(p))))
            except ImageReadError as exc:
                results[i] = {"path": str(p), "error": exc.reason}
        for start in range(0, len(good), batch_size):
            chunk = good[start : start + batch_size]
            proba = self.predict_proba(np.stack([x for _, x in chunk]))
            labels = decide(proba, self.config.positive_index, self.config.threshold)
            for (i, _), pr, lab in zip(chunk, proba, labels):
                results[i] = {
                    "path": str(paths[i]),
                    "label": self.classes[int(lab)],
                    "probabilities": {c: float(v) for c, v in zip(self.classes, pr)},
                }
        return results


def predict_files(model: str | os.PathLike, paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """Predict with an export folder (torch-free) or, otherwise, a transferkit model/run folder."""
    from .folder import ExportFolderError, is_export_folder

    model = Path(model)
    if is_export_folder(model):
        return ExportedModel(model).predict(paths)
    if not model.is_dir():
        raise ExportFolderError(f"'{model}' is not a folder; expected an export folder (`transferkit export`) "
                                "or a model/run folder (`transferkit fit`).")
    if not ((model / "config.json").is_file() or (model / "model" / "config.json").is_file()):
        raise ExportFolderError(f"'{model}' is neither an exported model (export.json + model.onnx, from `transferkit export`) "
                                "nor a model folder (config.json + model.safetensors, from `transferkit fit`).")
    from ..api import predict  # the PyTorch path: only imported when it is needed

    return predict(model, list(paths))
