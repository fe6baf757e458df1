"""Run an exported model with onnxruntime + numpy (+ Pillow for images, ``tokenizers`` for text): no torch on the device.

>>> from transferkit.runtime import ExportedModel
>>> model = ExportedModel("exports/plants-int8")
>>> model.predict(["leaf.jpg"])   # [{"path": ..., "label": ..., "probabilities": {...}}]
>>> ExportedModel("exports/amazon-int8").predict(["Great phone", "Broke after a week"])   # [{"text": ..., "label": ...}]
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .folder import EXPORT_CONFIG_NAME, REEXPORT, ExportConfig, ExportFolderError
from .images import ImageReadError, read_image
from .text import TextInputError, TextTokenizer, check_texts


def softmax(logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    z = logits.astype(np.float64) / (temperature or 1.0)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def as_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str | os.PathLike]:
    """The image files to predict: one path (``"leaf.jpg"``) is a list of one, not a sequence of characters."""
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    if isinstance(paths, bytes):
        return [os.fsdecode(paths)]
    try:
        items = list(paths)
    except TypeError:
        items = [paths]
    wrong = next((p for p in items if not isinstance(p, (str, os.PathLike))), None)
    if wrong is not None:
        raise TypeError(f"predict takes image file paths (one, or a list), not {type(wrong).__name__} objects: save the image "
                        "to a file first.")
    return items


def prediction_record(key: str, value: Any, classes: Sequence[str], label_index: int, proba) -> dict[str, Any]:
    """One prediction as returned by every ``predict``: ``{key: value, "label": ..., "probabilities": {class: p}}``."""
    return {key: value, "label": classes[int(label_index)], "probabilities": {c: float(v) for c, v in zip(classes, proba)}}


def decide(proba: np.ndarray, positive_index: int | None, threshold: float) -> np.ndarray:
    """Arg-max, or for a binary task: positive when P(positive) >= threshold (as in training)."""
    if positive_index is not None and proba.shape[1] == 2:
        return np.where(proba[:, positive_index] >= threshold, positive_index, 1 - positive_index)
    return proba.argmax(1)


def check_threshold(classes: Sequence[str], threshold: float | None, default: float) -> float:
    """The decision threshold to use: ``default`` (the model's) when ``threshold`` is None, else ``threshold``, which only a
    binary model takes (positive when P(positive) >= it) and which must be a probability. The semantics of
    ``transferkit evaluate --threshold`` for images; shared by the text commands and the export runtime."""
    if threshold is None:
        return float(default)
    from ..errors import DataError

    if len(classes) != 2:
        raise DataError(f"--threshold applies to binary models only (P(positive) >= threshold); this one has {len(classes)} "
                        "classes and predicts the most probable one.")
    # a number in [0, 1] (so finite): not a bool (True would pass as 1.0), a string, or NaN (P >= NaN is never true)
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 <= float(threshold) <= 1.0:
        shown = repr(threshold) if isinstance(threshold, str) else threshold
        raise DataError(f"--threshold {shown} is not a probability: pass a number between 0 and 1 (the model's own is {default}).")
    return float(threshold)


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


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, at most ``limit`` characters (an ellipsis marks a cut)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _shape(dims: Sequence[Any]) -> str:
    """An onnxruntime shape (ints, names of symbolic axes, None) as ``(batch, 3, 224, 224)``: round brackets, as the CLI
    prints messages with rich, which takes ``[batch, ...]`` for markup and drops it."""
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# onnxruntime's errors for a file that is no model at all (garbage, truncated, empty), as opposed to one this onnxruntime
# cannot run (InvalidGraph, Fail, NotImplemented: e.g. an opset newer than it knows)
_UNREADABLE = ("InvalidProtobuf", "NoModel", "InvalidArgument")


def _recorded(config: ExportConfig, section: str, key: str) -> Any:
    """``export.json``'s ``section.key`` (``export.sha256``, ``versions.onnxruntime``), or None."""
    value = config.extra.get(section)
    return value.get(key) if isinstance(value, dict) else None


def unloadable_model(directory: Path, config: ExportConfig, exc: BaseException) -> ExportFolderError:
    """Why onnxruntime could not open an export's network file, in words: damaged (onnxruntime cannot parse it, or its
    sha256 is not the one export.json recorded), or a file this onnxruntime cannot run."""
    import re

    import onnxruntime as ort

    path = directory / config.model_file
    detail = re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", _first_line(exc))
    detail = re.sub(r"Load model from .*? failed: ?", "", detail)
    recorded = _recorded(config, "export", "sha256")
    changed = None
    if isinstance(recorded, str):
        try:
            changed = _file_sha256(path) != recorded
        except OSError:
            changed = None
    if changed or (changed is None and type(exc).__name__ in _UNREADABLE):
        why = ("; its sha256 is not the one export.json recorded, so it changed after the export (truncated, overwritten or "
               "corrupted in a copy)") if changed else ""
        return ExportFolderError(f"'{directory}': its {config.model_file} is damaged: onnxruntime cannot load it ({detail}){why}. "
                                 f"Copy the folder again from where it was exported, or {REEXPORT}.")
    made_with = _recorded(config, "versions", "onnxruntime")
    return ExportFolderError(f"'{directory}': onnxruntime {ort.__version__} cannot load its {config.model_file} ({detail})"
                             + ("; the file is as exported (its sha256 matches export.json)" if changed is False else "")
                             + (f". It was exported with onnxruntime {made_with}: install that version, or {REEXPORT} here."
                                if made_with and made_with != ort.__version__ else f". {REEXPORT[0].upper()}{REEXPORT[1:]}."))


def classes_mismatch(directory: Path, config: ExportConfig, width: Any) -> ExportFolderError:
    """export.json names one number of classes, the network gives another number of scores per input."""
    shown = config.classes if len(config.classes) <= 8 else [*config.classes[:8], "…"]
    return ExportFolderError(f"'{directory}': {EXPORT_CONFIG_NAME} names {len(config.classes)} classes (num_classes, id2label: "
                             f"{shown}) but its {config.model_file} gives {width} scores per input (output "
                             f"'{config.output_name}'): the two files are from different exports, or export.json was edited. "
                             f"Copy the folder again from where it was exported, or {REEXPORT}.")


def check_graph(directory: Path, config: ExportConfig, session: Any) -> None:
    """export.json's input name(s), input size, output name and number of classes against the ONNX graph itself, when it
    loads: an edited export.json otherwise fails on the first prediction with onnxruntime's own words (``Required inputs
    (['images']) are missing``, ``Got invalid dimensions``) or labels with the wrong classes."""
    inputs = {i.name: list(i.shape) for i in session.get_inputs()}
    outputs = {o.name: list(o.shape) for o in session.get_outputs()}
    where = f"'{directory}': {EXPORT_CONFIG_NAME} disagrees with its {config.model_file}"
    fix = f"export.json was edited or comes from another export: copy the folder again from where it was exported, or {REEXPORT}."
    if config.is_text:
        if set(config.input_names) != set(inputs):
            raise ExportFolderError(f"{where}: preprocessing.input_names is {list(config.input_names)}, the graph's inputs are "
                                    f"{list(inputs)}; {fix}")
    else:
        if config.input_name not in inputs or len(inputs) != 1:
            graph = f"the graph's input is named {next(iter(inputs))!r}" if len(inputs) == 1 else f"the graph takes inputs {list(inputs)}"
            raise ExportFolderError(f"{where}: input_name is {config.input_name!r}, {graph}; {fix}")
        dims, want = inputs[config.input_name], list(config.preprocessing.input_size)
        if len(dims) != 4 or any(isinstance(g, int) and g != w for g, w in zip(dims[1:], want)):
            raise ExportFolderError(f"{where}: preprocessing.input_size is {want} (channels, height, width), the graph's input "
                                    f"{config.input_name!r} has shape {_shape(dims)}; {fix}")
    if config.output_name not in outputs:
        raise ExportFolderError(f"{where}: output_name is {config.output_name!r}, the graph's outputs are {list(outputs)}; {fix}")
    dims = outputs[config.output_name]
    if len(dims) == 2 and isinstance(dims[1], int) and dims[1] != len(config.classes):
        raise classes_mismatch(directory, config, dims[1])  # a symbolic width: checked on each prediction (ExportedModel._scores)


def open_export_session(directory: Path, config: ExportConfig, *, num_threads: int | None = None,
                        providers: Sequence[str] | None = None):
    """The onnxruntime session of an export folder, its graph checked against export.json (:func:`check_graph`); a file
    onnxruntime cannot open is an :class:`ExportFolderError` that says so, not onnxruntime's ``InvalidProtobuf``."""
    try:
        session = make_session(directory / config.model_file, num_threads=num_threads, providers=providers)
    except Exception as exc:
        if not type(exc).__module__.startswith("onnxruntime"):  # e.g. a bad providers argument: the caller's, not the file's
            raise
        raise unloadable_model(directory, config, exc) from None
    check_graph(directory, config, session)
    return session


class ExportedModel:
    """An exported model folder, ready to predict; the network runs in onnxruntime.

    Image exports predict files; text exports (``modality: text``) predict strings, tokenized with
    the folder's ``tokenizer.json``. TorchScript exports also load here (``runtime: torchscript``),
    but those need torch.
    """

    def __init__(self, directory: str | os.PathLike, *, num_threads: int | None = None, providers: Sequence[str] | None = None,
                 config: ExportConfig | None = None):
        self.directory = Path(directory).expanduser()
        self.config = config if config is not None else ExportConfig.load(self.directory)
        self.classes = self.config.classes
        self.preprocessing = self.config.preprocessing
        self.tokenizer = TextTokenizer(self.directory, self.config.preprocessing) if self.config.is_text else None
        path = self.directory / self.config.model_file
        if self.config.runtime == "onnx":
            self._session = open_export_session(self.directory, self.config, num_threads=num_threads, providers=providers)
            self._run = lambda x: self._session.run([self.config.output_name], x if isinstance(x, dict) else {self.config.input_name: x})[0]
        elif self.config.runtime == "torchscript":
            import torch  # TorchScript needs torch by definition

            if num_threads:
                torch.set_num_threads(int(num_threads))
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
                try:
                    module = torch.jit.load(str(path), map_location="cpu").eval()
                except (RuntimeError, ValueError) as exc:  # e.g. "PytorchStreamReader failed reading zip archive"
                    raise ExportFolderError(f"'{self.directory}': its {self.config.model_file} is damaged: torch cannot load it "
                                            f"({_first_line(exc)}). Copy the folder again from where it was exported, or "
                                            f"{REEXPORT}.") from None

            def run(x: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    return module(torch.from_numpy(x)).float().numpy()

            self._run = run
        else:
            raise ExportFolderError(f"{self.directory}: unknown runtime {self.config.runtime!r}; expected 'onnx' or 'torchscript'.")

    @property
    def is_text(self) -> bool:
        return self.config.is_text

    def logits(self, x: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        """Raw logits of a preprocessed batch: images ``(N, 3, H, W)`` float32, or for text the
        tokenizer's arrays ``{"input_ids": (N, L), "attention_mask": (N, L), ...}`` (see :meth:`encode`)."""
        if self.is_text:
            return self._scores(self._run(self._text_feed(x)))
        if isinstance(x, Mapping):
            raise TextInputError(f"{self.directory} is an image model: pass a float32 array (N, 3, H, W), not a dict of token arrays.")
        x = np.ascontiguousarray(x, dtype=np.float32)
        expected = tuple(self.preprocessing.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            from .preprocess import PreprocessingError

            raise PreprocessingError(f"expected a batch of shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}.")
        return self._scores(self._run(x))

    def _scores(self, out: np.ndarray) -> np.ndarray:
        """The network's output, checked: one score per class of export.json for each input. A graph whose output width
        is symbolic (or a TorchScript file) cannot be checked when it loads; this is where a mismatch shows."""
        if out.ndim != 2:
            raise ExportFolderError(f"'{self.directory}': its {self.config.model_file} gives an output of shape {list(out.shape)}, not "
                                    f"(inputs, classes): it is not a classifier transferkit exported. {REEXPORT[0].upper()}{REEXPORT[1:]}.")
        if out.shape[1] != len(self.classes):
            raise classes_mismatch(self.directory, self.config, out.shape[1])
        return out

    def _text_feed(self, x: Any) -> dict[str, np.ndarray]:
        names = self.config.input_names
        if not isinstance(x, Mapping):
            raise TextInputError(f"{self.directory} is a text model: logits() takes the tokenizer's arrays {list(names)} "
                                 "(model.encode(texts)); to classify strings use predict(texts) or predict_proba(texts).")
        missing = [n for n in names if n not in x and n != "token_type_ids"]
        if missing:
            raise TextInputError(f"missing input(s) {missing}; expected {list(names)}, got {sorted(x)}.")
        feed = {n: np.ascontiguousarray(x[n], dtype=np.int64) for n in names if n in x}
        if "token_type_ids" in names and "token_type_ids" not in feed:  # one segment: all zeros
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        shapes = {n: v.shape for n, v in feed.items()}
        if len(set(shapes.values())) != 1 or feed["input_ids"].ndim != 2:
            raise TextInputError(f"token arrays must all be (N, L) of the same shape, got {shapes}.")
        return feed

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Texts -> the network's int64 inputs (truncated to ``max_length``, padded to the longest), text exports only."""
        if self.tokenizer is None:
            raise TextInputError(f"{self.directory} is an image model: it has no tokenizer; predict image files instead.")
        return self.tokenizer(texts)

    def predict_proba(self, x: np.ndarray | Mapping[str, np.ndarray] | Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Class probabilities (temperature-scaled when the model was calibrated).

        ``x``: a preprocessed batch (see :meth:`logits`), or for a text model a list of strings
        (tokenized here; batches grouped by length, results in input order).
        """
        if self.is_text and not isinstance(x, Mapping):
            return self._text_proba(check_texts(x), batch_size)
        return softmax(self.logits(x), self.config.temperature)

    def _text_proba(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), len(self.classes)), np.float64)
        encodings = self.tokenizer.tokenize(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # similar lengths together: less padding
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = softmax(self.logits(self.tokenizer.collate([encodings[i] for i in idx])), self.config.temperature)
        return out

    def predict(self, items: str | os.PathLike | Sequence[str | os.PathLike], *, batch_size: int = 32,
                threshold: float | None = None) -> list[dict[str, Any]]:
        """Predict image files (one path or a list), or texts for a text model (a list); a bad item (unreadable file,
        empty text) gets an ``error`` entry instead of stopping the run. ``threshold``: see :func:`check_threshold`."""
        if self.is_text:
            return self.predict_texts(items, batch_size=batch_size, threshold=threshold)
        threshold = check_threshold(self.classes, threshold, self.config.threshold)
        paths = as_paths(items)
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
            labels = decide(proba, self.config.positive_index, threshold)
            for (i, _), pr, lab in zip(chunk, proba, labels):
                results[i] = prediction_record("path", str(paths[i]), self.classes, lab, pr)
        return results

    def predict_texts(self, texts: Sequence[str], *, batch_size: int = 32, threshold: float | None = None) -> list[dict[str, Any]]:
        """Label and class probabilities per text, as ``TextClassifier.predict`` gives them (empty text: an ``error`` entry).
        ``threshold`` (binary models): positive when the calibrated P(positive) >= it (default: the exported model's)."""
        if not self.is_text:
            raise TextInputError(f"{self.directory} is an image model: predict image files, not texts.")
        threshold = check_threshold(self.classes, threshold, self.config.threshold)
        texts = check_texts(texts)
        good = [i for i, t in enumerate(texts) if t.strip()]
        proba = self._text_proba([texts[i].strip() for i in good], batch_size)
        labels = decide(proba, self.config.positive_index, threshold) if good else []
        results: list[dict[str, Any]] = [{"text": t, "error": "empty text"} for t in texts]
        for i, pr, lab in zip(good, proba, labels):
            results[i] = prediction_record("text", texts[i], self.classes, lab, pr)
        return results


def predict_files(model: str | os.PathLike, paths: Sequence[str | os.PathLike], *, threshold: float | None = None) -> list[dict[str, Any]]:
    """Predict with an export folder (torch-free) or, otherwise, a transferkit model/run folder. ``threshold`` (binary
    models): the decision threshold on the calibrated P(positive) (default: the model's)."""
    from .folder import ExportFolderError, is_export_folder

    model = Path(model).expanduser()
    if is_export_folder(model):
        return ExportedModel(model).predict(paths, threshold=threshold)
    if not model.is_dir():
        raise ExportFolderError(f"'{model}' is not a folder; expected an export folder (`transferkit export`) "
                                "or a model/run folder (`transferkit fit`).")
    if not ((model / "config.json").is_file() or (model / "model" / "config.json").is_file()):
        from ..run_folder import seeds_hint

        raise ExportFolderError(f"'{model}' is neither an exported model (export.json + model.onnx, from `transferkit export`) "
                                "nor a model folder (config.json + model.safetensors, from `transferkit fit`)." + seeds_hint(model))
    from ..api import predict  # the PyTorch path: only imported when it is needed

    return predict(model, list(paths), threshold=threshold)


def predict_texts(model: str | os.PathLike, texts: Sequence[str], *, threshold: float | None = None) -> list[dict[str, Any]]:
    """Predict texts with a text export folder (torch-free) or, otherwise, a text model/run folder (PyTorch).
    ``threshold`` (binary models): the decision threshold on the calibrated P(positive) (default: the model's)."""
    from .folder import ExportFolderError, is_export_folder

    model = Path(model).expanduser()
    if is_export_folder(model):
        exported = ExportedModel(model)
        if not exported.is_text:
            raise ExportFolderError(f"'{model}' is an image export: pass image files (`transferkit predict {model} IMAGE…`), not texts.")
        return exported.predict_texts(texts, threshold=threshold)
    from ..text.model import is_text_model_folder  # the PyTorch path: only imported when it is needed

    if not is_text_model_folder(model):
        raise ExportFolderError(f"'{model}' is neither a text export (export.json + model.onnx + tokenizer.json, from `transferkit export`) "
                                "nor a text model folder (from `transferkit fit-text`).")
    from ..text import predict_text

    return predict_text(model, check_texts(texts), threshold=threshold)
