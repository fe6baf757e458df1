"""Token attributions of text classifiers: Integrated Gradients over the word embeddings (captum).

For each text, :class:`captum.attr.LayerIntegratedGradients` integrates the gradient of the
target class's logit along the straight line from a baseline to the text, in the space of the
encoder's word-embedding layer (``encoder.get_input_embeddings()``). The baseline keeps the
special tokens ([CLS], [SEP]) and replaces every other token by [PAD], as in captum's BERT
tutorial. A token's attribution is the sum over embedding dimensions; attributions add up to
``logit(text) - logit(baseline)`` (up to the reported convergence ``delta``). Word pieces are
summed into the words of the original text (a fast tokenizer's offsets), so the report can
colour the text exactly as it was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

POSITIVE_RGB = (46, 158, 85)  # supports the explained class
NEGATIVE_RGB = (214, 39, 40)  # speaks against it


@dataclass
class TextAttribution:
    """One text split into consecutive ``segments`` ``(piece, score)``: ``score`` is the word's
    attribution divided by the text's largest absolute one (in [-1, 1]), ``None`` for what is not a
    token (spaces) or was cut off by ``max_length``; ``scale`` is that largest absolute attribution."""

    text: str
    target: int
    segments: list[tuple[str, float | None]]
    scale: float
    delta: float
    truncated: bool

    def words(self) -> list[tuple[str, float]]:
        """(word, normalised attribution) of the attributed words, in text order."""
        return [(t, s) for t, s in self.segments if s is not None]

    def to_dict(self) -> dict:
        return {"target": self.target, "scale": self.scale, "delta": self.delta, "truncated": self.truncated,
                "words": [[w, round(s, 4)] for w, s in self.words()]}


def segment_color(score: float | None) -> str | None:
    """CSS background of a word: green for positive attributions, red for negative, alpha by size."""
    if score is None:
        return None
    r, g, b = POSITIVE_RGB if score >= 0 else NEGATIVE_RGB
    return f"rgba({r}, {g}, {b}, {min(abs(score), 1.0) * 0.8:.2f})"


def _word_segments(text: str, enc, token_scores: np.ndarray, special_ids: set[int], tokenizer) -> tuple[list[tuple[str, float | None]], list[float]]:
    """Sum token scores into words and cut ``text`` into attributed words and the text between them."""
    ids = enc["input_ids"][0].tolist()
    if "offset_mapping" not in enc:  # slow tokenizer: no character offsets; show the word pieces themselves
        return _piece_segments(tokenizer.convert_ids_to_tokens(ids), ids, token_scores, special_ids)
    offsets = enc["offset_mapping"][0].tolist()
    word_ids = enc.word_ids(0)
    words: dict[object, list] = {}
    for t, (start, end) in enumerate(offsets):
        if ids[t] in special_ids or end <= start:
            continue
        key = word_ids[t] if word_ids[t] is not None else ("token", t)
        w = words.setdefault(key, [start, end, 0.0])
        w[0], w[1], w[2] = min(w[0], start), max(w[1], end), w[2] + float(token_scores[t])
    spans = sorted(words.values())
    segments: list[tuple[str, float | None]] = []
    pos = 0
    for start, end, score in spans:
        start = max(start, pos)  # pieces of one word never overlap another word; this guards odd offsets
        if start >= end:
            continue
        if start > pos:
            segments.append((text[pos:start], None))
        segments.append((text[start:end], score))
        pos = end
    if pos < len(text):
        segments.append((text[pos:], None))
    return segments, [s for _, _, s in spans]


def _piece_segments(tokens: list[str], ids: list[int], token_scores: np.ndarray, special_ids: set[int]):
    """WordPiece fallback: ``##`` pieces joined to their word, words separated by spaces."""
    pieces: list[list] = []
    for t, (tok, tid) in enumerate(zip(tokens, ids)):
        if tid in special_ids:
            continue
        if tok.startswith("##") and pieces:
            pieces[-1][0] += tok[2:]
            pieces[-1][1] += float(token_scores[t])
        else:
            pieces.append([tok, float(token_scores[t])])
    segments: list[tuple[str, float | None]] = []
    for k, (tok, score) in enumerate(pieces):
        if k:
            segments.append((" ", None))
        segments.append((tok, score))
    return segments, [s for _, s in pieces]


def token_attributions(model, texts: Sequence[str], targets: Sequence[int], *, n_steps: int = 32,
                       internal_batch_size: int = 32) -> list[TextAttribution]:
    """Integrated-Gradients attributions of ``targets[i]``'s logit to the words of ``texts[i]``.

    ``model``: a :class:`~transferkit.text.TextClassifier` (any encoder with ``get_input_embeddings``).
    ``n_steps``: points on the integration path (the ``delta`` of each result says how well they sufficed).
    """
    from captum.attr import LayerIntegratedGradients

    backbone = model.backbone
    tokenizer = backbone.tokenizer
    model = model.eval()
    device = next(model.parameters()).device
    special_ids = set(tokenizer.all_special_ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.unk_token_id or 0)
    is_fast = bool(getattr(tokenizer, "is_fast", False))

    def forward(input_ids, attention_mask, token_type_ids=None):
        return model(input_ids, attention_mask, token_type_ids)

    lig = LayerIntegratedGradients(forward, backbone.encoder.get_input_embeddings())
    out = []
    for text, target in zip(texts, targets):
        enc = tokenizer(text, truncation=True, max_length=backbone.max_length, return_tensors="pt", return_offsets_mapping=is_fast)
        input_ids = enc["input_ids"].to(device)
        mask = enc["attention_mask"].to(device)
        token_type_ids = enc["token_type_ids"].to(device) if "token_type_ids" in enc else None
        is_special = torch.tensor([[i in special_ids for i in enc["input_ids"][0].tolist()]], device=device)
        baseline = torch.where(is_special, input_ids, torch.full_like(input_ids, pad_id))
        with torch.enable_grad():
            attr, delta = lig.attribute(inputs=input_ids, baselines=baseline, additional_forward_args=(mask, token_type_ids),
                                        target=int(target), n_steps=n_steps, internal_batch_size=internal_batch_size,
                                        return_convergence_delta=True)
        token_scores = attr.sum(-1)[0].detach().float().cpu().numpy()
        segments, word_scores = _word_segments(text, enc, token_scores, special_ids, tokenizer)
        scale = float(max((abs(s) for s in word_scores), default=0.0))
        norm = [(piece, (score / scale if scale > 0 else 0.0) if score is not None else None) for piece, score in segments]
        truncated = len(tokenizer(text, truncation=False)["input_ids"]) > backbone.max_length
        out.append(TextAttribution(text, int(target), norm, scale, float(delta.abs().max()), truncated))
    return out
