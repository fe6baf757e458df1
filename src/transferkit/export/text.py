"""A saved text classifier -> ONNX (fp32, or int8 by dynamic quantization) + its tokenizer, checked against PyTorch.

The export folder holds ``model.onnx`` (token ids in, logits out: encoder, pooling and head in one
graph, dynamic batch and sequence axes), ``tokenizer.json`` (the fast tokenizer the model uses),
``export.json`` (labels, ``max_length``, padding, input names, threshold, positive label,
temperature when calibrated, parity, quantization), ``labels.txt`` and ``parity.json``.
:class:`transferkit.runtime.ExportedModel` runs it with onnxruntime + ``tokenizers`` + numpy.

Parity is measured on a sample of texts (yours with ``parity_data``, plus built-in texts that
exercise truncation, accents, emoji and other scripts), as for images:

* ``tokenization``: the ``tokenizers`` ids of the runtime equal the ``transformers`` ids, text by text;
* ``network``: the exported network vs PyTorch on the same token-id batches;
* ``pipeline``: texts -> runtime tokenizer -> exported network, vs texts -> ``transformers``
  tokenizer -> PyTorch. This is what a device runs.

fp32 must agree on every top-1 with max |Δlogit| <= 1e-4; int8 (onnxruntime dynamic quantization:
int8 weights, activation ranges per call, no calibration data) on >= 95 % of top-1s. Otherwise the
folder gets ``parity.json`` but no ``export.json`` and :class:`ParityError` is raised.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import DataError
from ..runtime import ExportConfig, ExportedModel
from ..runtime.folder import PARITY_NAME
from ..runtime.text import TEXT_INPUT_NAMES, TOKENIZER_NAME, TextPreprocessing
from .onnx import DEFAULT_OPSET, OUTPUT_NAME, export_text_onnx
from .parity import ParityError, compare_logits, runtime_decision
from .quantize import fp32_onnx_to_quantize, quantize_dynamic_int8

if TYPE_CHECKING:
    from .exporter import ExportResult

# Always part of the parity sample: truncation (the long one), case, accents, emoji, other scripts, numbers, odd spacing.
SAMPLE_TEXTS = (
    "Great phone, the battery lasts for days!",
    "Broke after a week. Returned it.",
    "not bad",
    "I would NOT recommend this to anyone... terrible customer service :(",
    "Café crème, naïve résumé, Zürich: accents everywhere.",
    "Works fine 👍🏽 but the case cracked 💔",
    "这款手机很好用 / とても良い / очень хорошо / 매우 좋아요",
    "Price: $19.99 (was $29.99), 2x faster, 100% worth it - 5/5",
    "   extra   spaces\tand a tab   ",
    "don't won't can't it's",
    "https://example.com/review?id=42&ok=true",
    " ".join(["the sound quality is excellent and the battery is good but the screen scratches easily"] * 20),
)


def _parity_texts(parity_data: str | os.PathLike | None, num_parity: int, seed: int, text_col: str | None) -> tuple[list[str], str]:
    """A seeded sample of ``num_parity`` texts of ``parity_data`` (labelled or not) + :data:`SAMPLE_TEXTS`."""
    if parity_data is None:
        return list(SAMPLE_TEXTS), "built-in sample texts"
    from ..data.text import read_text_table, read_texts

    try:
        texts = read_text_table(parity_data, text_col=text_col).texts  # a labelled file: its texts, not the label column
    except DataError:
        texts = read_texts(parity_data, text_col=text_col)
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise DataError(f"no texts in '{parity_data}' for the parity check; pass a file with one text per line or a labelled .csv/.tsv/.txt.")
    rng = np.random.default_rng(seed)
    picked = [texts[i] for i in sorted(rng.permutation(len(texts))[:num_parity])]
    return picked + list(SAMPLE_TEXTS), f"{len(picked)} texts of {parity_data} (seed {seed}) + built-in sample texts"


def text_preprocessing(model) -> TextPreprocessing:
    """What the runtime needs to tokenize like the model's ``transformers`` tokenizer."""
    tok = model.backbone.tokenizer
    if tok.pad_token_id is None:
        raise DataError(f"the tokenizer of '{model.backbone.name}' has no padding token; a batch of texts cannot be padded. "
                        "Set tokenizer.pad_token before saving the model.")
    produced = model.backbone.tokenize(["a"])[0]
    return TextPreprocessing(
        max_length=int(model.backbone.max_length),
        input_names=tuple(n for n in TEXT_INPUT_NAMES if n in produced),
        tokenizer_file=TOKENIZER_NAME,
        pad_id=int(tok.pad_token_id),
        pad_token=str(tok.pad_token),
        pad_type_id=int(getattr(tok, "pad_token_type_id", 0) or 0),
        padding_side=str(getattr(tok, "padding_side", "right")),
        truncation_side=str(getattr(tok, "truncation_side", "right")),
    )


def save_tokenizer(model, path: Path) -> Path:
    """The model's fast tokenizer as one ``tokenizer.json`` (truncation and padding cleared: the runtime sets them)."""
    backend = getattr(model.backbone.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise DataError(f"the tokenizer of '{model.backbone.name}' ({type(model.backbone.tokenizer).__name__}) is not a fast "
                        "(Rust `tokenizers`) tokenizer, so it cannot be saved as tokenizer.json for the torch-free runtime. "
                        "Save the model with a fast tokenizer (AutoTokenizer.from_pretrained(..., use_fast=True)).")
    from tokenizers import Tokenizer

    clean = Tokenizer.from_str(backend.to_str())
    clean.no_truncation()
    clean.no_padding()
    clean.save(str(path))
    return path


@torch.inference_mode()
def _reference(model, texts: list[str], input_names: Sequence[str], batch_size: int) -> tuple[np.ndarray, list[dict[str, np.ndarray]], list[dict]]:
    """PyTorch logits on ``transformers`` token batches (in order), the batches as numpy, the per-text ids."""
    feats = model.backbone.tokenize(texts)
    logits, batches = [], []
    for i in range(0, len(feats), batch_size):
        batch = model.backbone.collate(feats[i : i + batch_size])
        logits.append(model(**batch).float().numpy())
        batches.append({n: batch[n].numpy().astype(np.int64) for n in input_names})
    return np.concatenate(logits), batches, feats


def _tokenization_parity(feats: list[dict], exported: ExportedModel, texts: list[str]) -> dict[str, Any]:
    """Text by text: are the runtime's ids, masks and segment ids those of ``transformers``?"""
    encodings = exported.tokenizer.tokenize(texts)
    fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
    bad = [i for i, (f, e) in enumerate(zip(feats, encodings))
           if any(list(f[n]) != list(getattr(e, fields[n])) for n in exported.config.input_names)]
    return {"num_texts": len(texts), "num_identical": len(texts) - len(bad), "passed": not bad,
            "mismatches": [{"text": texts[i][:120], "transformers": list(feats[i]["input_ids"])[:40],
                            "tokenizers": encodings[i].ids[:40]} for i in bad[:5]]}


def export_text_model(
    model,
    out: str | os.PathLike,
    *,
    quantize: str | None = None,
    parity_data: str | os.PathLike | None = None,
    num_parity: int = 32,
    seed: int = 0,
    exporter: str = "dynamo",
    opset: int = DEFAULT_OPSET,
    per_channel: bool = False,
    exclude_head: bool = False,
    nodes_to_exclude: tuple[str, ...] = (),
    atol: float | None = None,
    min_agreement: float | None = None,
    onnx_fp32: str | os.PathLike | None = None,
    overwrite: bool = False,
    text_col: str | None = None,
    batch_size: int = 16,
) -> "ExportResult":
    """Export a text model folder (or :class:`~transferkit.text.TextClassifier`) to ONNX and check parity.

    >>> export_text_model("runs/amazon-lp", "exports/amazon-int8", quantize="int8", parity_data="reviews/amazon_cells_labelled.txt")

    Usually reached through :func:`transferkit.export.export_model`, which dispatches text models here.
    ``parity_data``: a text file (labelled or one text per line) sampled for the parity check.
    ``onnx_fp32``: an fp32 ONNX file already exported from this model, quantized instead of exporting again.
    Raises :class:`ParityError` when parity breaks.
    """
    from ..text.model import TextClassifier
    from ..backbones import file_sha256
    from .exporter import ExportResult, model_calibration, parity_tolerances, prepare_out

    t0 = time.perf_counter()
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    model_dir = None if isinstance(model, TextClassifier) else Path(model)
    tm = model if isinstance(model, TextClassifier) else TextClassifier.from_pretrained(model_dir)
    if model_dir is not None and (model_dir / "model" / "config.json").is_file():
        model_dir = model_dir / "model"  # a run folder: its model/ holds the config
    tm = tm.eval().to("cpu")
    out = prepare_out(Path(out), overwrite)
    pre = text_preprocessing(tm)
    texts, texts_source = _parity_texts(parity_data, num_parity, seed, text_col)
    notes = [] if parity_data is not None else ["parity measured on built-in sample texts (no --parity-data given): pass "
                                                "--parity-data FILE to check on your own texts too."]

    # ---- export: network, then the tokenizer beside it ---------------------------------------
    model_file = "model.onnx"
    quant_record: dict[str, Any] | None = None
    if quantize is None:
        export_text_onnx(tm, out / model_file, pre.input_names, opset=opset, exporter=exporter)
    else:
        with fp32_onnx_to_quantize(out, onnx_fp32, lambda path: export_text_onnx(tm, path, pre.input_names, opset=opset,
                                                                                  exporter=exporter)) as fp32:
            quant_record = quantize_dynamic_int8(fp32, out / model_file, per_channel=per_channel, nodes_to_exclude=nodes_to_exclude,
                                                 exclude_head=exclude_head)
            quant_record["fp32_size_bytes"] = fp32.stat().st_size
    save_tokenizer(tm, out / TOKENIZER_NAME)

    calib_info = model_calibration(model_dir, tm)
    precision = quantize or "fp32"
    config = ExportConfig(
        model_file=model_file,
        runtime="onnx",
        precision=precision,
        classes=list(tm.classes),
        preprocessing=pre,
        positive_label=calib_info["positive_label"],
        threshold=calib_info["threshold"],
        temperature=calib_info["temperature"],
        input_name="input_ids",
        output_name=OUTPUT_NAME,
        modality="text",
    )

    # ---- parity ------------------------------------------------------------------------------
    exported = ExportedModel(out, config=config)
    reference, batches, feats = _reference(tm, texts, pre.input_names, batch_size)
    runtime_logits = np.concatenate([exported.logits(exported.encode(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)])
    atol, min_agreement = parity_tolerances(quantize, atol, min_agreement)
    decision = runtime_decision(config)  # agreement of the decisions predict-text will make (threshold, temperature)
    reports = [
        compare_logits(reference, np.concatenate([exported.logits(b) for b in batches]), stage="network", atol=atol, min_agreement=min_agreement,
                       unit="texts", decision=decision),
        compare_logits(reference, runtime_logits, stage="pipeline", atol=atol, min_agreement=min_agreement, unit="texts", decision=decision),
    ]
    tokenization = _tokenization_parity(feats, exported, texts)
    parity_json = {
        "passed": all(r.passed for r in reports) and tokenization["passed"],
        "reference": "PyTorch fp32 TextClassifier, transformers tokenizer",
        "precision": precision,
        "reports": [r.to_json() for r in reports],
        "tokenization": tokenization,
        "texts": texts_source,
        "num_texts": len(texts),
        "seed": seed,
    }
    (out / PARITY_NAME).write_text(json.dumps(parity_json, indent=2, ensure_ascii=False))
    if not parity_json["passed"]:
        failed = [r.summary() for r in reports if not r.passed]
        if not tokenization["passed"]:
            failed.append(f"tokenization: {tokenization['num_texts'] - tokenization['num_identical']} of {tokenization['num_texts']} texts "
                          "get other token ids from tokenizer.json than from the transformers tokenizer")
        raise ParityError(f"the exported {precision} text model does not match PyTorch: {'; '.join(failed)}. Numbers in {out / PARITY_NAME}; "
                          "the folder has no export.json, so it cannot be loaded."
                          + (" For int8, try --exclude-head (keeps the classifier in fp32)." if quantize else ""))

    import onnxruntime
    import tokenizers
    import transformers

    size = (out / model_file).stat().st_size
    config.extra = {
        "source": {"model_dir": str(model_dir.resolve()) if model_dir else None, "backbone": tm.backbone.name,
                   "weights": tm.backbone.weights_record, "strategy": tm.strategy, "pooling": tm.backbone.pooling},
        "export": {"format": "onnx", "exporter": exporter, "opset": opset, "file_size_bytes": size, "sha256": file_sha256(out / model_file),
                   "dynamic_axes": {"inputs": ["batch", "sequence"], "logits": ["batch"]}},
        "quantization": quant_record,
        "parity": parity_json,
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "tokenizers": tokenizers.__version__,
                     "transformers": transformers.__version__},
    }
    config.save(out)
    return ExportResult(out, config, reports, None, size, time.perf_counter() - t0, notes)
