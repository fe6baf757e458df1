"""The one call: a saved model folder -> an export folder (network file + labels + preprocessing),
with the parity check that makes the export trustworthy. Text model folders are handed to
:func:`transferkit.export.text.export_text_model` (ONNX + tokenizer, parity on texts).

Parity is measured twice on the same sample of image files:

* ``network``: the exported network vs PyTorch on the *same* input tensor;
* ``pipeline``: files -> numpy/Pillow preprocessing -> exported network, vs files -> timm
  transform -> PyTorch. This is what a device actually runs.

When a report fails its tolerance the folder gets ``parity.json`` (so the numbers can be read)
but no ``export.json``, so nothing can load the broken export, and :class:`ParityError` is raised.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backbones import file_sha256
from ..errors import DataError
from ..model import CONFIG_NAME, TransferModel, load
from ..progress import track
from ..runtime import ExportConfig, ExportedModel, ImageReadError, Preprocessing, list_images, read_image
from ..runtime.folder import EXPORT_CONFIG_NAME, PARITY_NAME
from .onnx import DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAME, export_onnx
from .parity import ParityError, ParityReport, compare_logits, runtime_decision
from .quantize import fp32_onnx_to_quantize, quantize_static_int8
from .torchscript import export_torchscript

FORMATS = ("onnx", "torchscript")
QUANTIZATIONS = (None, "int8")
FP32_TOLERANCE = 1e-4  # max |Δlogit| allowed for fp32 exports
INT8_MIN_AGREEMENT = 0.95  # top-1 agreement required of int8 exports (logit differences are reported)


@dataclass
class ExportResult:
    """Where the export went, what it is, and the parity measured at export time."""

    directory: Path
    config: ExportConfig
    parity: list[ParityReport]
    preprocessing_max_abs_diff: float | None
    file_size_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.parity)


def model_calibration(model_dir: Path | None, model: TransferModel) -> dict[str, Any]:
    """Temperature and threshold stored with the model (by calibration), when present."""
    cfg: dict[str, Any] = {}
    if model_dir is not None:
        path = model_dir / CONFIG_NAME if (model_dir / CONFIG_NAME).is_file() else model_dir / "model" / CONFIG_NAME
        if path.is_file():
            cfg = json.loads(path.read_text())
    extra = cfg.get("extra") or model.extra or {}
    calib = cfg.get("calibration") if isinstance(cfg.get("calibration"), dict) else {}
    temperature = cfg.get("temperature", calib.get("temperature", extra.get("temperature", getattr(model, "temperature", None))))
    return {
        "temperature": float(temperature) if temperature is not None else None,
        "threshold": float(cfg.get("threshold", model.threshold)),
        "positive_label": cfg.get("positive_label", model.classes[model.positive_index] if model.positive_index is not None else None),
    }


def sample_files(folder: str | os.PathLike, n: int, *, seed: int, exclude: set[Path] = frozenset(), prefer_train: bool = False) -> list[Path]:
    """A seeded random sample of image files under ``folder`` (its train split folder when asked and present: ``train/``
    or another name ``fit`` reads as one, e.g. ``Training/``)."""
    from ..data.folder import _find_split_dir  # the data loader's split names: what fit trained on is what calibrates

    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"image folder '{folder}' does not exist.")
    root = (_find_split_dir(folder, "train") if prefer_train and folder.is_dir() else None) or folder
    files = [f for f in list_images([root]) if f not in exclude]
    rng = np.random.default_rng(seed)
    return [files[i] for i in sorted(rng.permutation(len(files))[:n])]


def _hold_back_for_parity(calib_files: list[Path], parity_source, num_parity: int, seed: int,
                          notes: list[str]) -> tuple[list[Path], list[Path]]:
    """Calibration took every image the parity check could use (a folder of ``num_calibration`` images or fewer, used for
    both), which left parity only random noise. Hand up to ``num_parity`` of those images, at most half, to parity
    instead (seeded): parity still never reuses a calibration image, and now checks real ones."""
    pool = set(list_images([Path(parity_source)]))
    shared = [f for f in calib_files if f in pool]
    k = min(num_parity, len(shared) // 2)
    if k == 0:
        return calib_files, []
    rng = np.random.default_rng(seed + 1)
    held = {shared[i] for i in rng.permutation(len(shared))[:k]}
    kept = [f for f in calib_files if f not in held]
    notes.append(f"calibration and the parity check drew from the same {len(shared)} images under '{parity_source}': {k} of them "
                 f"were held back from calibration for the parity check, which calibrates on the other {len(kept)}; parity "
                 "data of other images (export --parity-data) calibrates on them all.")
    return kept, sorted(held)


def _read_all(files: list[Path], description: str, progress: bool) -> tuple[list[Path], list]:
    good, images = [], []
    with track(description, len(files), unit="img", enabled=progress) as advance:
        for f in files:
            try:
                images.append(read_image(f))
                good.append(f)
            except ImageReadError:
                pass  # counted below by the caller (len(files) - len(good))
            advance()
    return good, images


def _synthetic_images(n: int, seed: int):
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = [(int(rng.integers(160, 480)), int(rng.integers(160, 480))) for _ in range(n)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


@torch.inference_mode()
def _torch_logits(model: TransferModel, x: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    return np.concatenate([model(x[i : i + batch_size]).float().numpy() for i in range(0, len(x), batch_size)])


def parity_tolerances(quantize: str | None, atol: float | None, min_agreement: float | None) -> tuple[float | None, float]:
    """The parity check's max |Δlogit| and top-1 agreement: those given, else for fp32 ``FP32_TOLERANCE``
    and every top-1, for int8 ``INT8_MIN_AGREEMENT`` of the top-1s and no bound on the logits (reported only)."""
    if atol is None and quantize is None:
        atol = FP32_TOLERANCE
    if min_agreement is None:
        min_agreement = INT8_MIN_AGREEMENT if quantize else 1.0
    return atol, min_agreement


def prepare_out(out: Path, overwrite: bool) -> Path:
    """An empty (or, with ``overwrite``, emptied of a previous export) output folder."""
    from ..run_folder import check_writable_folder

    out = check_writable_folder(out, "--out")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DataError(f"output folder '{out}' is not empty; choose another --out or pass --overwrite.")
        for name in (EXPORT_CONFIG_NAME, PARITY_NAME, "model.onnx", "model.pt", "labels.txt", "tokenizer.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _is_text_model(model) -> bool:
    from ..text.model import TextClassifier, is_text_model_folder

    return isinstance(model, TextClassifier) or (not isinstance(model, TransferModel) and is_text_model_folder(model))


def export_model(
    model: str | os.PathLike | TransferModel,
    out: str | os.PathLike,
    *,
    format: str = "onnx",
    quantize: str | None = None,
    calibration: str | os.PathLike | None = None,
    parity_data: str | os.PathLike | None = None,
    num_calibration: int = 100,
    num_parity: int = 32,
    seed: int = 0,
    exporter: str = "dynamo",
    opset: int = DEFAULT_OPSET,
    per_channel: bool = True,
    calibrate_method: str = "percentile",
    exclude_head: bool = False,
    nodes_to_exclude: tuple[str, ...] = (),
    atol: float | None = None,
    min_agreement: float | None = None,
    onnx_fp32: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    text_col: str | None = None,
) -> ExportResult:
    """Export a saved model (folder or :class:`TransferModel`) and check parity against PyTorch.

    >>> export_model("runs/plants", "exports/plants-int8", quantize="int8", calibration="data/plants")
    >>> export_model("runs/amazon-lp", "exports/amazon-int8", quantize="int8", parity_data="reviews/amazon_cells_labelled.txt")

    Text models (a ``fit-text`` run/model folder or a ``TextClassifier``) export to ONNX with their
    tokenizer; their int8 is dynamic quantization (no calibration), ``parity_data`` a text file
    (``text_col`` names its column) — see :mod:`transferkit.export.text`.

    ``calibration``: image folder for int8 calibration (its ``train/`` or ``Training/`` when present);
    ``parity_data``: image folder for the parity sample (default: other images of the calibration
    folder; random images when neither is given). Parity never checks a calibration image: when calibration would
    take every image parity could use (one folder of ``num_calibration`` images or fewer for both), up to
    ``num_parity`` of them, at most half, are held back for parity (said in ``notes``). ``onnx_fp32``: an fp32
    ONNX file already exported from this model, quantized instead of exporting again (parity is still checked against PyTorch).
    Raises :class:`ParityError` when parity breaks.
    """
    t0 = time.perf_counter()
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if quantize and format != "onnx":
        raise ValueError("int8 quantization is done with onnxruntime: use format='onnx' with quantize='int8'.")
    if _is_text_model(model):
        if format != "onnx":
            raise ValueError(f"text models export to ONNX only (format='onnx'), got {format!r}.")
        from .text import export_text_model

        result = export_text_model(model, out, quantize=quantize, parity_data=parity_data, num_parity=num_parity, seed=seed,
                                   exporter=exporter, opset=opset, per_channel=per_channel, exclude_head=exclude_head,
                                   nodes_to_exclude=nodes_to_exclude, atol=atol, min_agreement=min_agreement, onnx_fp32=onnx_fp32,
                                   overwrite=overwrite, text_col=text_col)
        if calibration is not None:
            result.notes.append("text int8 is dynamic quantization (activation ranges computed per call): --calibration is not used.")
        return result
    if quantize and calibration is None:
        raise DataError("int8 static quantization needs calibration images: pass calibration=FOLDER (CLI: --calibration DATA), "
                        "e.g. the training images.")
    model_dir = None if isinstance(model, TransferModel) else Path(model)
    tm = model if isinstance(model, TransferModel) else load(model_dir)
    tm = tm.eval().to("cpu")
    out = prepare_out(Path(out), overwrite)
    pre = Preprocessing.from_config(tm.data_cfg)
    input_size = tuple(pre.input_size)
    notes: list[str] = []

    # ---- the sample images: calibration and parity never share a file ----------------------
    calib_files: list[Path] = []
    if calibration is not None and quantize:  # only int8 calibrates: an fp32 export takes the folder for parity alone
        calib_files = sample_files(calibration, num_calibration, seed=seed, prefer_train=True)
        if not calib_files:
            raise DataError(f"no image files under '{calibration}' for calibration.")
    if calibration is not None and not quantize:
        notes.append("fp32 export: nothing is calibrated; --calibration images were used only for the parity check"
                     if parity_data is None else "fp32 export: nothing is calibrated, so --calibration was not used.")
    parity_source = parity_data if parity_data is not None else calibration
    parity_files = sample_files(parity_source, num_parity, seed=seed + 1, exclude=set(calib_files)) if parity_source else []
    if calib_files and parity_source is not None and not parity_files:
        calib_files, parity_files = _hold_back_for_parity(calib_files, parity_source, num_parity, seed, notes)
    parity_files, parity_images = _read_all(parity_files, "parity images", progress)
    noise_why = None
    if not parity_images:
        parity_images = _synthetic_images(num_parity, seed)
        if parity_source is None:
            noise_why = "no image folder given"
        elif not parity_files and set(calib_files) & set(list_images([Path(parity_source)])):  # one image: nothing to split
            noise_why = f"the only image under '{parity_source}' went to int8 calibration, and parity never reuses it"
        else:
            noise_why = f"no readable image files under '{parity_source}'"
        notes.append(f"parity measured on {num_parity} random-noise images ({noise_why}): pass --parity-data DATA to check on "
                     "real images.")

    # ---- export ------------------------------------------------------------------------------
    model_file = "model.pt" if format == "torchscript" else "model.onnx"
    quant_record: dict[str, Any] | None = None
    if format == "torchscript":
        export_torchscript(tm, out / model_file, input_size)
    elif quantize is None:
        export_onnx(tm, out / model_file, input_size, opset=opset, exporter=exporter)
    else:
        with fp32_onnx_to_quantize(out, onnx_fp32, lambda path: export_onnx(tm, path, input_size, opset=opset, exporter=exporter)) as fp32:
            calib_files, calib_images = _read_all(calib_files, "calibration images", progress)
            if not calib_images:
                raise DataError(f"none of the calibration images under '{calibration}' could be read.")
            calib = pre.batch(calib_images)
            quant_record = quantize_static_int8(fp32, out / model_file, calib, input_name=INPUT_NAME, per_channel=per_channel,
                                                calibrate_method=calibrate_method, exclude_head=exclude_head,
                                                nodes_to_exclude=nodes_to_exclude)
            quant_record["fp32_size_bytes"] = fp32.stat().st_size

    calib_info = model_calibration(model_dir, tm)
    precision = quantize or "fp32"
    config = ExportConfig(
        model_file=model_file,
        runtime="torchscript" if format == "torchscript" else "onnx",
        precision=precision,
        classes=list(tm.classes),
        preprocessing=pre,
        positive_label=calib_info["positive_label"],
        threshold=calib_info["threshold"],
        temperature=calib_info["temperature"],
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
    )

    # ---- parity ------------------------------------------------------------------------------
    from ..data import make_transforms

    transform = make_transforms(tm.data_cfg)
    x_torch = torch.stack([transform(im) for im in parity_images])
    x_numpy = pre.batch(parity_images)
    reference = _torch_logits(tm, x_torch)
    exported = ExportedModel(out, config=config)
    atol, min_agreement = parity_tolerances(quantize, atol, min_agreement)
    decision = runtime_decision(config)  # agreement of the decisions predict will make (threshold, temperature)
    reports = [
        compare_logits(reference, exported.logits(x_torch.numpy()), stage="network", atol=atol, min_agreement=min_agreement,
                       decision=decision),
        compare_logits(reference, exported.logits(x_numpy), stage="pipeline", atol=atol, min_agreement=min_agreement, decision=decision),
    ]
    pre_diff = float(np.abs(x_torch.numpy() - x_numpy).max())
    parity_json = {
        "passed": all(r.passed for r in reports),
        "reference": "PyTorch fp32 TransferModel, timm eval transform",
        "precision": precision,
        "reports": [r.to_json() for r in reports],
        "preprocessing_max_abs_diff": pre_diff,
        "images": [str(f) for f in parity_files] or "random noise",
        "seed": seed,
    }
    (out / PARITY_NAME).write_text(json.dumps(parity_json, indent=2))
    if not parity_json["passed"]:
        failed = "; ".join(r.summary() for r in reports if not r.passed)
        noise = [n for n in notes if "random-noise" in n]  # parity on noise says little about real images: say so here too
        raise ParityError(f"the exported {precision} model does not match PyTorch: {failed}. Numbers in {out / PARITY_NAME}; "
                          "the folder has no export.json, so it cannot be loaded."
                          + (" Note: " + noise[0] if noise else "")
                          + (" For int8, try --exclude-head, another --calibrate-method, or more --num-calibration images."
                             if quantize else ""), random_noise=noise_why)

    import onnxruntime

    size = (out / model_file).stat().st_size
    config.extra = {
        "source": {
            "model_dir": str(model_dir.resolve()) if model_dir else None,
            "backbone": tm.backbone.name,
            "weights": tm.backbone.weights_record,
        },
        "export": {"format": format, "exporter": exporter if format == "onnx" else "torch.jit.trace", "opset": opset if format == "onnx" else None,
                   "file_size_bytes": size, "sha256": file_sha256(out / model_file)},
        "quantization": quant_record,
        "calibration_images": [str(f) for f in calib_files] if quant_record else None,
        "parity": parity_json,
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
    }
    config.save(out)
    return ExportResult(out, config, reports, pre_diff, size, time.perf_counter() - t0, notes)

