"""Text in, token ids out, with the Rust ``tokenizers`` package only (no torch, no transformers).

An exported text model carries its tokenizer as ``tokenizer.json`` (the fast tokenizer the model
was trained with) and, in ``export.json``, how to call it: ``max_length`` (longer texts are
truncated), the padding token and side, and which arrays the network takes (``input_ids``,
``attention_mask`` and, for BERT-style models, ``token_type_ids``). A batch is padded to its own
longest text, as in training; the export parity check proves the ids equal those of
``transformers``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TransferKitError

TOKENIZER_NAME = "tokenizer.json"
TEXT_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
_SIDES = ("right", "left")


class TextInputError(TransferKitError, ValueError):
    """Text the runtime cannot classify (not a list of strings), or a bad text config."""


@dataclass(frozen=True)
class TextPreprocessing:
    """How texts become network inputs: the tokenizer file, truncation length, padding, input names."""

    max_length: int
    input_names: tuple[str, ...] = ("input_ids", "attention_mask")
    tokenizer_file: str = TOKENIZER_NAME
    pad_id: int = 0
    pad_token: str = "[PAD]"
    pad_type_id: int = 0
    padding_side: str = "right"
    truncation_side: str = "right"

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "TextPreprocessing":
        try:
            pre = cls(
                max_length=int(cfg["max_length"]),
                input_names=tuple(str(n) for n in cfg["input_names"]),
                tokenizer_file=str(cfg.get("tokenizer_file", TOKENIZER_NAME)),
                pad_id=int(cfg.get("pad_id", 0)),
                pad_token=str(cfg.get("pad_token", "[PAD]")),
                pad_type_id=int(cfg.get("pad_type_id", 0)),
                padding_side=str(cfg.get("padding_side", "right")),
                truncation_side=str(cfg.get("truncation_side", "right")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TextInputError(f"text preprocessing config {cfg!r} is incomplete ({type(exc).__name__}: {exc}); "
                                 "expected max_length, input_names, tokenizer_file, pad_id, pad_token.") from None
        if pre.max_length < 2:
            raise TextInputError(f"max_length must be >= 2 (room for the special tokens), got {pre.max_length}.")
        unknown = [n for n in pre.input_names if n not in TEXT_INPUT_NAMES]
        if unknown or "input_ids" not in pre.input_names or "attention_mask" not in pre.input_names:
            raise TextInputError(f"input_names {list(pre.input_names)} must include input_ids and attention_mask, "
                                 f"and may add token_type_ids (got unknown {unknown}).")
        if pre.padding_side not in _SIDES or pre.truncation_side not in _SIDES:
            raise TextInputError(f"padding_side / truncation_side must be 'right' or 'left', got {pre.padding_side!r} / {pre.truncation_side!r}.")
        return pre

    def to_config(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "input_names": list(self.input_names), "tokenizer_file": self.tokenizer_file,
                "pad_id": self.pad_id, "pad_token": self.pad_token, "pad_type_id": self.pad_type_id,
                "padding_side": self.padding_side, "truncation_side": self.truncation_side}


def check_texts(texts: Any) -> list[str]:
    """A list of strings, or a :class:`TextInputError` that says what was passed instead."""
    if isinstance(texts, (str, bytes)):
        raise TextInputError(f"expected a list of texts, got one {type(texts).__name__} ({str(texts)[:40]!r}...); "
                             "wrap it in a list: predict([text]).")
    try:
        items = list(texts)
    except TypeError:
        raise TextInputError(f"expected a list of texts, got {type(texts).__name__}.") from None
    bad = [(i, type(t).__name__) for i, t in enumerate(items) if not isinstance(t, str)]
    if bad:
        i, kind = bad[0]
        hint = " (a file path? this is a text model: pass the texts themselves)" if isinstance(items[i], os.PathLike) else ""
        raise TextInputError(f"expected texts (str); item {i} is a {kind}{hint}.")
    return items


class TextTokenizer:
    """``tokenizer.json`` + :class:`TextPreprocessing`: texts -> int64 arrays ``(N, L)`` per input name.

    >>> tok = TextTokenizer("exports/amazon-int8", pre)
    >>> batch = tok(["great phone", "broke after a week"])   # {"input_ids": ..., "attention_mask": ...}
    """

    def __init__(self, directory: str | os.PathLike, preprocessing: TextPreprocessing):
        from tokenizers import Tokenizer

        self.preprocessing = preprocessing
        path = Path(directory) / preprocessing.tokenizer_file
        if not path.is_file():
            raise TextInputError(f"'{Path(directory)}' has no {preprocessing.tokenizer_file}: a text export needs its tokenizer "
                                 "(re-export with `transferkit export MODEL --out DIR`).")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust side raises plain Exception on a malformed file
            raise TextInputError(f"{path} is not a readable tokenizers file ({str(exc).splitlines()[0][:200]}).") from None
        self.tokenizer.no_padding()  # padding is per batch, in collate()
        self.tokenizer.enable_truncation(preprocessing.max_length, strategy="longest_first", direction=preprocessing.truncation_side)

    def tokenize(self, texts: Sequence[str]) -> list[Any]:
        """One ``tokenizers.Encoding`` per text (special tokens added, truncated to ``max_length``, not padded)."""
        return self.tokenizer.encode_batch(check_texts(texts))

    def collate(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        """Pad to the batch's longest (``Encoding.pad``, in place): ``{name: int64 (N, L)}`` per network input."""
        pre = self.preprocessing
        length = max((len(e.ids) for e in encodings), default=0)
        for e in encodings:
            e.pad(length, direction=pre.padding_side, pad_id=pre.pad_id, pad_type_id=pre.pad_type_id, pad_token=pre.pad_token)
        fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        return {name: np.array([getattr(e, fields[name]) for e in encodings], dtype=np.int64).reshape(len(encodings), length)
                for name in pre.input_names}

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.collate(self.tokenize(texts))
