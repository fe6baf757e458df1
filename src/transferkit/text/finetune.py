"""Fine-tuning a :class:`TextClassifier` (all weights, or LoRA adapters) on the shared trainer.

The text-specific glue around the model-agnostic :class:`transferkit.training.Trainer`:
tokenised datasets, dynamic padding, length-grouped batches, layer-wise learning rates over the
transformer layers, and ``peft`` LoRA adapters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import FinetuneConfig
from ..data.text import TextRecord
from ..training import Trainer, class_weights, layerwise_param_groups
from .model import TextClassifier


class TokenizedTexts(Dataset):
    """Token ids (not padded) and labels; ``lengths`` drive the length-grouped sampler."""

    def __init__(self, model: TextClassifier, records: Sequence[TextRecord]):
        self.features = model.backbone.tokenize([r.text for r in records])
        self.labels = [r.label for r in records]
        self.lengths = [len(f["input_ids"]) for f in self.features]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple[dict[str, list[int]], int]:
        return self.features[i], self.labels[i]


class LengthGroupedSampler(Sampler[int]):
    """Shuffled order in which each run of ``batch_size`` indices has similar lengths.

    As in Hugging Face's ``LengthGroupedSampler``: shuffle, cut into mega-batches of
    ``batch_size * mega`` items, sort each by length, then shuffle the batches so the order of
    lengths is random. The order is a pure function of (seed, epoch), so resume replays it.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, seed: int = 0, mega: int = 8):
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.mega = int(mega)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(self.seed * 1_000_003 + self.epoch)
        perm = rng.permutation(len(self.lengths))
        size = self.batch_size * self.mega
        order = []
        for start in range(0, len(perm), size):
            chunk = perm[start : start + size]
            order.append(chunk[np.argsort(-self.lengths[chunk], kind="stable")])
        flat = np.concatenate(order) if order else perm
        batches = [flat[i : i + self.batch_size] for i in range(0, len(flat), self.batch_size)]
        rng.shuffle(batches)
        return iter(int(i) for b in batches for i in b)


def make_collate(model: TextClassifier):
    backbone = model.backbone

    def collate(items: list[tuple[dict[str, list[int]], int]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return backbone.collate([f for f, _ in items]), torch.tensor([y for _, y in items], dtype=torch.long)

    return collate


def train_text_loader(model: TextClassifier, records: Sequence[TextRecord], *, batch_size: int, seed: int = 0) -> DataLoader:
    """Shuffled, length-grouped batches of ``(inputs dict, labels)``, padded per batch."""
    ds = TokenizedTexts(model, records)
    return DataLoader(ds, batch_size=batch_size, sampler=LengthGroupedSampler(ds.lengths, batch_size, seed=seed), collate_fn=make_collate(model))


def eval_text_loader(model: TextClassifier, records: Sequence[TextRecord], *, batch_size: int = 64) -> DataLoader:
    """Batches sorted by length (least padding); the order differs from ``records``."""
    ds = TokenizedTexts(model, records)
    order = np.argsort(ds.lengths, kind="stable").tolist()
    return DataLoader(torch.utils.data.Subset(ds, order), batch_size=batch_size, shuffle=False, collate_fn=make_collate(model))


@dataclass
class LoraSettings:
    """LoRA adapters (``peft``) on the attention projections; everything else frozen but the head."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] | None = None  # default: the backbone's (query/value for BERT)

    def record(self, targets: Sequence[str]) -> dict[str, Any]:
        return {"type": "lora", "library": "peft", "r": self.r, "alpha": self.alpha, "dropout": self.dropout,
                "target_modules": list(targets), "path": "adapter", "merged_into_weights": True}


def add_lora(model: TextClassifier, settings: LoraSettings) -> list[str]:
    """Wrap the encoder with peft LoRA adapters (in place); returns the target module names."""
    from peft import LoraConfig, get_peft_model

    from ..backbones.text import text_defaults

    targets = list(settings.target_modules or text_defaults(model.backbone.name).lora_targets)
    present = {n.rsplit(".", 1)[-1] for n, _ in model.backbone.encoder.named_modules()}
    if not set(targets) & present:  # an unregistered model: pick the usual attention names that exist
        targets = [t for t in ("query", "value", "q_lin", "v_lin", "q_proj", "v_proj", "q", "v") if t in present] or targets  # BERT, DistilBERT, ..., MPNet
    cfg = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=targets, bias="none")
    model.backbone.encoder = get_peft_model(model.backbone.encoder, cfg)
    return targets


def finetune_text_model(
    model: TextClassifier,
    train: Sequence[TextRecord],
    val: Sequence[TextRecord],
    config: FinetuneConfig,
    *,
    lora: LoraSettings | None = None,
    seed: int = 0,
    device: str = "auto",
    checkpoint_dir: str | None = None,
    resume: bool = False,
    resume_hint: str | None = None,
    progress: bool = True,
    seed_rng: bool = True,
) -> Trainer:
    """Fine-tune ``model`` in place on the shared :class:`Trainer` and return it.

    Full fine-tuning: every weight trains, the head at ``config.lr`` and each transformer layer
    towards the input at ``lr * lr_decay**k``. With ``lora``: only the adapters and the head train
    (``config.lr`` for all). Batches are length-grouped and padded per batch.
    ``checkpoint_dir`` gets a checkpoint after every epoch (and on Ctrl-C); ``resume=True``
    continues from its latest one. ``resume_hint`` is what the Ctrl-C message tells the user to run.
    ``seed_rng``: see :class:`~transferkit.training.Trainer`.

    ``config.wise_alpha`` is not applied here: LoRA adapters must be merged first (:func:`merge_lora`), then
    ``apply_wise_ft(model, start_state, alpha)`` mixes, as :func:`transferkit.text.fit_text` does. The encoder's
    ``weights_record`` gets ``fine_tuned: True`` (the embedding cache never serves the file's embeddings for it).
    """
    num_classes = len(model.classes)
    if lora is not None:
        model.backbone.requires_grad_(False)
        targets = add_lora(model, lora)  # adapters are created trainable
        model.head.requires_grad_(True)
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr, "weight_decay": config.weight_decay}]
        model.adapter = lora.record(targets)
    else:
        model.requires_grad_(True)
        pooler = getattr(model.backbone.encoder, "pooler", None)  # BERT's: neither mean nor cls pooling reads it
        if isinstance(pooler, nn.Module):  # a trainable parameter without a gradient stops DDP (accelerate launch)
            pooler.requires_grad_(False)
        groups = layerwise_param_groups(model.head, model.backbone.blocks(), lr=config.lr, decay=config.lr_decay,
                                        weight_decay=config.weight_decay, rest=model.backbone)
    train_loader = train_text_loader(model, train, batch_size=config.batch_size, seed=seed)
    val_loader = eval_text_loader(model, val, batch_size=max(64, config.batch_size))
    labels = np.array([r.label for r in train], dtype=np.int64)
    weight = class_weights(labels, num_classes) if config.balance == "weights" else None
    trainer = Trainer(model, nn.CrossEntropyLoss(weight=weight), config, param_groups=groups, seed=seed, device=device,
                      checkpoint_dir=checkpoint_dir, evaluate_initial=True, progress=progress, resume_hint=resume_hint, seed_rng=seed_rng)
    trainer.fit(train_loader, val_loader, resume=resume)
    model.backbone.weights_record = {**model.backbone.weights_record, "fine_tuned": True}
    return trainer


def merge_lora(model: TextClassifier, adapter_dir: str | None = None, *, saved_scale: float = 1.0) -> TextClassifier:
    """Save the adapters (peft's format) when ``adapter_dir`` is given, then merge them into the
    encoder's weights so the model runs, saves and loads without peft.

    ``saved_scale`` multiplies the saved adapters' update (their ``lora_B`` weights), not the merged model: with WiSE-FT
    (``alpha``) the kept encoder is ``base + alpha x update``, so an adapter saved with ``saved_scale=alpha`` applied to the
    base encoder gives the saved model's encoder, not one with twice its change."""
    from peft import PeftModel

    enc = model.backbone.encoder
    if isinstance(enc, PeftModel):
        if adapter_dir is not None:
            trained = {n: p.detach().clone() for n, p in enc.named_parameters() if "lora_B" in n} if saved_scale != 1.0 else {}
            with torch.no_grad():
                for n, p in enc.named_parameters():
                    if n in trained:
                        p.mul_(saved_scale)
                enc.save_pretrained(adapter_dir)
                for n, p in enc.named_parameters():
                    if n in trained:
                        p.copy_(trained[n])  # merged below as trained: the model's numbers do not depend on the saved copy
            if saved_scale != 1.0 and getattr(model, "adapter", None):
                model.adapter = {**model.adapter, "saved_scale": saved_scale}
        model.backbone.encoder = enc.merge_and_unload()
    return model
