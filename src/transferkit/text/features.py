"""Frozen text-encoder embeddings, through the feature cache shared with images.

The cache key of a text feature space is (model name, weights sha256, max_length, pooling,
tokenizer); inside it each vector is found by the sha256 of its text. So the linear probe, every
CV fold, the fine-tuning's LP stage and model ranking reuse vectors already computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..backbones.text import TextBackbone
from ..data.text import text_sha256
from ..features import ExtractionStats, FeatureCache, feature_key, resolve_device
from ..features.cache import cacheable_sha256
from ..progress import track


def text_feature_key(backbone: TextBackbone) -> str | None:
    sha = cacheable_sha256(backbone.weights_record)
    if not sha:
        return None  # random-init and fine-tuned encoders are never cached
    cfg = {"modality": "text", **backbone.text_cfg, "tokenizer": type(backbone.tokenizer).__name__}
    return feature_key(backbone.name, sha, cfg)


@torch.inference_mode()
def embed_texts(
    backbone: TextBackbone,
    texts: Sequence[str],
    *,
    cache: FeatureCache | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    progress: bool = True,
    description: str = "embeddings",
    stats: ExtractionStats | None = None,
) -> np.ndarray:
    """Pooled embeddings ``(len(texts), backbone.num_features)`` in input order.

    Cached vectors are reused; missing ones are computed in length-sorted batches (little
    padding), in eval mode, under autocast on CUDA, then stored.
    """
    stats = stats if stats is not None else ExtractionStats()
    hashes = [text_sha256(t) for t in texts]
    key = text_feature_key(backbone) if cache is not None else None
    have = cache.get(key, hashes, width=backbone.num_features) if key else {}
    missing = {h: t for h, t in zip(hashes, texts) if h not in have}
    stats.num_total += len(texts)
    stats.num_cached += sum(1 for h in hashes if h in have)
    if missing:
        dev = resolve_device(device)
        backbone.eval().to(dev)
        items = list(missing.items())
        feats = backbone.tokenize([t for _, t in items])
        order = np.argsort([len(f["input_ids"]) for f in feats], kind="stable")
        computed = np.zeros((len(items), backbone.num_features), np.float32)
        with track(f"{description} ({backbone.name})", len(items), unit="text", enabled=progress) as advance:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = {k: v.to(dev) for k, v in backbone.collate([feats[i] for i in idx]).items()}
                with torch.autocast(dev.type, dtype=torch.float16, enabled=dev.type == "cuda"):
                    computed[idx] = backbone(**batch).float().cpu().numpy()
                advance(len(idx))
        stats.num_computed += len(items)
        new = {h: v for (h, _), v in zip(items, computed)}
        if key:
            meta = {"backbone": backbone.name, "weights": backbone.weights_record, "text": backbone.text_cfg}
            cache.put(key, list(new), computed, meta=meta)
        have = {**have, **new}
    if not hashes:
        return np.zeros((0, backbone.num_features), np.float32)
    if not hashes:
        return np.zeros((0, backbone.num_features), np.float32)
    return np.stack([have[h] for h in hashes]).astype(np.float32)
