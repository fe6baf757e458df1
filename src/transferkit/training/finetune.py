"""Stage two of LP-FT for images: unfreeze a :class:`TransferModel` and fine-tune it.

The image-specific glue around the model-agnostic :class:`.trainer.Trainer`: decoded image
datasets, train-only augmentation, ``--unfreeze``, layer-wise learning rates and class balance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..config import AugmentConfig, AutoRule, FinetuneConfig
from ..data import ImageSplits, make_transforms
from ..errors import ConfigError
from .augment import make_train_transform
from .head_trainer import class_weights
from .image_data import DecodedImageDataset
from .sampling import EpochSampler, balanced_sample_weights
from .schedule import layerwise_param_groups
from .trainer import Trainer
from .unfreeze import unfreeze_blocks


@dataclass
class ImageFinetuneData:
    """Decoded train/val datasets and their loaders (train augmented, val not)."""

    train: DecodedImageDataset
    val: DecodedImageDataset
    train_loader: DataLoader
    val_loader: DataLoader


def make_image_loaders(splits: ImageSplits, data_cfg: dict[str, Any], config: FinetuneConfig, augment: AugmentConfig, *,
                       seed: int = 0, progress: bool = True) -> ImageFinetuneData:
    train = DecodedImageDataset(splits.train, make_train_transform(data_cfg, augment), data_cfg, seed=seed, progress=progress, description="decoding train images")
    val = DecodedImageDataset(splits.val, make_transforms(data_cfg), data_cfg, seed=seed, progress=progress, description="decoding val images")
    weights = balanced_sample_weights(train.labels, len(splits.classes)) if config.balance == "sampler" else None
    sampler = EpochSampler(len(train), seed=seed, weights=weights)
    drop_last = len(train) >= 2 * config.batch_size  # no tiny last batch for BatchNorm
    train_loader = DataLoader(train, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers, drop_last=drop_last)
    val_loader = DataLoader(val, batch_size=max(config.batch_size, 64), shuffle=False, num_workers=config.num_workers)
    return ImageFinetuneData(train, val, train_loader, val_loader)


def eval_loader(records, data_cfg: dict[str, Any], *, batch_size: int = 64, progress: bool = False, description: str = "decoding images") -> DataLoader:
    ds = DecodedImageDataset(records, make_transforms(data_cfg), data_cfg, progress=progress, description=description)
    return DataLoader(ds, batch_size=batch_size, shuffle=False)


def finetune_image_model(
    model: nn.Module,
    splits: ImageSplits,
    config: FinetuneConfig | None = None,
    augment: AugmentConfig | None = None,
    *,
    seed: int = 0,
    device: str = "auto",
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    accelerator: Any = None,
    resume_hint: str | None = None,
    seed_rng: bool = True,
    start_state: dict[str, torch.Tensor] | None = None,
) -> Trainer:
    """Fine-tune ``model`` (a :class:`TransferModel`: ``model.backbone`` + ``model.head``) in place.

    Blocks come from ``model.backbone.blocks()``; ``config.unfreeze`` picks how many train, the
    head gets ``config.lr`` and each block towards the input ``lr * lr_decay**k``. Returns the
    fitted :class:`Trainer` (``trainer.model_`` is ``model`` with its best weights).

    ``config.wise_alpha < 1`` (WiSE-FT, the default 0.5) then mixes those weights with the ones the call started from
    (``start_state``, by default a copy taken at the call), so the returned model is ``(1 - alpha) x start + alpha x
    fine-tuned``; the trainer's ``best_val_loss_`` stays the fine-tuned weights' own. The backbone's
    ``weights_record`` gets ``fine_tuned: True``: the feature cache never serves the weights file's features for it.
    ``seed_rng``: see :class:`Trainer`.

    A random-init backbone (``--weights none``) trains from scratch: see :func:`prepare_from_scratch` and
    :func:`from_scratch_config` (BatchNorm statistics estimated first and then updated, a fresh head, no WiSE-FT mix).

    ``config`` and ``augment`` may also be dicts of their fields (validated into :class:`FinetuneConfig` /
    :class:`AugmentConfig`). The model's head must have one output per class of ``splits``.
    """
    config, augment = _check_finetune_args(model, splits, config, augment)
    if config.batch_size < 1:
        raise ValueError("batch_size must be >= 1.")
    config, from_scratch = from_scratch_config(model, config)
    if from_scratch is not None:
        prepare_from_scratch(model, splits.train, batch_size=config.batch_size, device=device, accelerator=accelerator, progress=progress)
    if config.wise_alpha < 1.0 and start_state is None:
        start_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    data = make_image_loaders(splits, model.backbone.data_cfg, config, augment, seed=seed, progress=progress)
    blocks = model.backbone.blocks()
    trainable = unfreeze_blocks(model.backbone, blocks, config.unfreeze)
    model.head.requires_grad_(True)
    rest = model.backbone if len(trainable) == len(blocks) else None
    groups = layerwise_param_groups(model.head, trainable, lr=config.lr, decay=config.lr_decay, weight_decay=config.weight_decay, rest=rest,
                                   first_index=len(blocks) - len(trainable))
    weight = class_weights(np.asarray(data.train.labels), len(splits.classes)) if config.balance == "weights" else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    trainer = Trainer(model, loss_fn, config, param_groups=groups, seed=seed, checkpoint_dir=checkpoint_dir, device=device,
                      evaluate_initial=True, progress=progress, accelerator=accelerator, resume_hint=resume_hint, seed_rng=seed_rng)
    trainer.fit(data.train_loader, data.val_loader, resume=resume)
    if config.wise_alpha < 1.0:  # WiSE-FT: the kept model lies between the start and the fine-tuned weights
        from .weight_interpolation import apply_wise_ft

        apply_wise_ft(trainer.model_, start_state, config.wise_alpha)
    backbone = getattr(trainer.model_, "backbone", None)
    if backbone is not None and hasattr(backbone, "weights_record"):  # its weights are no longer the file's
        backbone.weights_record = {**backbone.weights_record, "fine_tuned": True}
    return trainer


def _check_finetune_args(model: Any, splits: Any, config: Any, augment: Any) -> tuple[FinetuneConfig, AugmentConfig]:
    """:func:`finetune_image_model`'s arguments checked before any work: a model with ``backbone`` and ``head``, image
    splits whose classes the head has one output each for, the configs (dicts validated into them)."""
    from ..errors import DataError

    if not (isinstance(getattr(model, "head", None), nn.Module) and callable(getattr(getattr(model, "backbone", None), "blocks", None))):
        raise ConfigError(f"finetune_image_model takes a TransferModel (model.backbone + model.head), e.g. "
                          f"TransferModel(load_backbone(name), DenseHead(backbone.num_features, len(splits.classes)), splits.classes) "
                          f"or transferkit.load(run).model; got {type(model).__name__}.")
    if not all(hasattr(splits, a) for a in ("train", "val", "classes")):
        raise DataError(f"splits must be ImageSplits (transferkit.data.load_image_folder(root)); got {type(splits).__name__}.")
    outputs = getattr(model.head, "num_classes", None)
    if outputs is not None and outputs != len(splits.classes):
        names = f" ({list(model.classes)})" if hasattr(model, "classes") else ""
        raise ConfigError(f"the model's head has {outputs} outputs{names} but the splits have {len(splits.classes)} classes "
                          f"({list(splits.classes)}): fine-tune a model built for these classes, e.g. with a new head "
                          "DenseHead(backbone.num_features, len(splits.classes)) (transferkit.fit does this).")
    if hasattr(model, "classes") and list(model.classes) != list(splits.classes):
        # same count, other names or order: output k would be trained on class k of the splits and keep the model's k-th name
        raise ConfigError(f"the model's classes {list(model.classes)} are not the splits' {list(splits.classes)} (same order): its "
                          "outputs would be trained on other classes than their names say. Build the model with splits.classes "
                          "(TransferModel(backbone, head, splits.classes)), or load folders whose class names match the model's.")
    out = []
    for name, value, cls in (("config", config, FinetuneConfig), ("augment", augment, AugmentConfig)):
        if value is None:
            value = cls()
        elif isinstance(value, dict):
            value = cls.model_validate(value)  # pydantic's ValidationError (a ValueError) names a wrong field
        elif not isinstance(value, cls):
            raise ConfigError(f"{name} must be a {cls.__name__} (or a dict of its fields, e.g. {{'epochs': 3}}); got "
                              f"{type(value).__name__}.")
        out.append(value)
    return out[0], out[1]


def placeholder_batchnorm(module: nn.Module) -> bool:
    """Whether every BatchNorm layer of ``module`` still holds the statistics it was built with (mean 0, variance 1):
    they were never estimated on data, as in any random initialisation (``--weights none``, or such weights saved to a
    file). Pretrained weights carry estimated statistics. False when there is no BatchNorm layer."""
    layers = [m for m in module.modules()
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None and m.running_var is not None]
    return bool(layers) and all(bool(torch.all(m.running_mean == 0)) and bool(torch.all(m.running_var == 1)) for m in layers)


def trains_from_scratch(model: nn.Module) -> bool:
    """Whether ``model``'s backbone is a random initialisation not trained yet: ``--weights none``, or weights whose
    BatchNorm statistics were never estimated (:func:`placeholder_batchnorm`; e.g. a random init saved to a file)."""
    backbone = getattr(model, "backbone", None)
    record = getattr(backbone, "weights_record", None) or {}
    if record.get("fine_tuned"):
        return False
    return record.get("source") == "none" or (backbone is not None and placeholder_batchnorm(backbone))


def from_scratch_config(model: nn.Module, config: FinetuneConfig) -> tuple[FinetuneConfig, dict[str, Any] | None]:
    """The fine-tuning settings for ``model``: ``config`` itself, unless its backbone trains from scratch.

    Two defaults exist to protect pretrained weights, and a random-init backbone has none to protect:

    - ``freeze_bn`` keeps ImageNet's BatchNorm statistics. A random-init network's statistics are placeholders that
      :func:`prepare_from_scratch` estimates once; frozen there, they would stop describing the layers as soon as the
      weights move. They are updated during training instead, as in any training from scratch.
    - ``wise_alpha < 1`` mixes the fine-tuned weights with the starting ones (WiSE-FT). Starting weights that are
      random noise would only pull the trained network back towards noise, so the mix is 1 (the trained weights).

    Returns the settings used and a record of what changed (``None`` when the backbone is pretrained), for
    ``metrics.json``.
    """
    if not trains_from_scratch(model):
        return config, None
    changed = {k: {"requested": getattr(config, k), "used": v} for k, v in (("freeze_bn", False), ("wise_alpha", 1.0))
               if getattr(config, k) != v}
    record = {"reason": "random-init backbone (weights 'none', or BatchNorm statistics never estimated): trained from scratch",
              "batchnorm": "statistics estimated on the training images before fine-tuning, then updated while training",
              "head": "re-initialised, without standardisation (stage one's was fitted to placeholder features)",
              "changed": changed}
    return config.model_copy(update={"freeze_bn": False, "wise_alpha": 1.0}), record


def describe_from_scratch(record: dict[str, Any]) -> str:
    """One line on how a random-init backbone was fine-tuned, from ``metrics.json`` ``training.from_scratch``."""
    changed = record.get("changed") or {}
    lifted = "; ".join(f"{k} {v['requested']} -> {v['used']}" for k, v in changed.items())
    return (f"random-init backbone trained from scratch: BatchNorm statistics estimated on the training images first, then "
            f"updated while training; a fresh head; no WiSE-FT mix" + (f" (changed from the settings asked for: {lifted})" if lifted else ""))


@torch.no_grad()
def prepare_from_scratch(model: nn.Module, records, *, batch_size: int = 32, device: str = "auto", accelerator: Any = None,
                         progress: bool = False) -> None:
    """Make a random-init :class:`TransferModel` the usual starting point for training from scratch, in place.

    A random-init network's BatchNorm layers hold placeholder statistics (mean 0, variance 1). In eval mode, with those,
    the signal of a deep network such as mobilenet_v2 shrinks layer by layer: its pooled features are about 1e-9 with a
    spread of 1e-10. The head of stage one was standardised on exactly those features, so it multiplies every feature
    by about 1e10, and the first step of fine-tuning changes the features by far more than their spread: the loss
    started at about 1e4-1e6 and training ended predicting one class (pneumonia: 37.6 % test accuracy, balanced 0.50).

    So, before fine-tuning, the BatchNorm statistics are estimated on the training images (unaugmented), with
    :func:`torch.optim.swa_utils.update_bn` (a cumulative average over one pass), and the head starts afresh: its layers
    re-initialised and no standardisation (mean 0, spread 1), as in any training from scratch. Stage one's head was
    fitted to the placeholder features. Keeping it, restandardised on the new features, was compared on validation
    (mobilenet_v2, seed 0; bench/RESULTS.md, fifteenth session): better on pneumonia (best validation loss 0.370 vs
    0.426), far worse on plants (2.98, worse than a uniform guess at 1.61, vs 1.58), so the head starts afresh.
    """
    from torch.optim.swa_utils import update_bn

    if accelerator is not None:
        target = accelerator.device
    else:
        from ..features.extract import resolve_device

        target = resolve_device(device)
    loader = eval_loader(records, model.backbone.data_cfg, batch_size=batch_size, progress=progress,
                         description="decoding train images (BatchNorm statistics)")
    was_training, home = model.training, next(model.parameters()).device
    model.to(target)
    update_bn(((x.to(target), y) for x, y in loader), model.backbone)
    model.to(home)
    model.train(was_training)
    head = model.head
    head.feature_mean.zero_()
    head.feature_std.fill_(1.0)
    for layer in head.modules():
        if layer is not head and hasattr(layer, "reset_parameters"):
            layer.reset_parameters()


def predict_proba(trainer: Trainer, loader: DataLoader) -> np.ndarray:
    logits = torch.from_numpy(trainer.predict_logits(loader))
    return logits.float().softmax(1).numpy()


def parameter_checksum(model: nn.Module) -> float:
    """A float fingerprint of every parameter and buffer (ranks of one run must agree)."""
    with torch.no_grad():
        return float(sum(t.double().sum().item() for t in model.state_dict().values() if t.is_floating_point()))


__all__ = ["ImageFinetuneData", "auto_choice_evidence", "describe_from_scratch", "eval_loader", "finetune_image_model", "from_scratch_config", "make_image_loaders",
           "parameter_checksum", "placeholder_batchnorm", "predict_proba", "prepare_from_scratch", "trains_from_scratch",
           "validation_loss"]


def validation_loss(y_val: np.ndarray, proba: np.ndarray, *, y_train: np.ndarray, num_classes: int, config: FinetuneConfig) -> float:
    """The loss the trainer stops on (class-weighted cross-entropy under ``balance="weights"``), from probabilities."""
    from ..evaluation.bootstrap import weighted_nll

    weight = class_weights(np.asarray(y_train), num_classes).numpy() if config.balance == "weights" else None
    nll, w = weighted_nll(y_val, proba, weight)
    return float((w * nll).sum() / w.sum())


def auto_choice_evidence(y_val: np.ndarray, lp_proba: np.ndarray, ft_proba: np.ndarray, *, num_classes: int, y_train: np.ndarray,
                         config: FinetuneConfig, lp_val_loss: float, ft_val_loss: float,
                         rule: AutoRule = "finetune-unless-worse", seed: int = 0) -> dict[str, Any]:
    """``strategy="auto"``'s decision between the probe (stage one) and the fine-tuned model, with its evidence.

    The evidence is a paired bootstrap 95 % interval of fine-tuned minus probe validation loss on the same validation
    images (class-weighted as in training). ``rule`` decides:

    - ``"finetune-unless-worse"`` (default): keep the fine-tuned model unless the interval lies wholly above 0, i.e.
      unless validation shows it worse. Fine-tuning from a fitted head is the expected winner on small data (LP-FT,
      Kumar et al. 2022), and auto exists to stop a fine-tuned model that is *worse* than its probe from shipping; a
      split too small to tell them apart is not evidence of that.
    - ``"lower-val-loss"``: the lower point estimate (the trainer's losses), however small the gap.

    ``decisive`` says whether the interval excludes 0; when it does not, the choice rests on the rule, not the data.
    """
    from ..evaluation.bootstrap import paired_loss_difference

    weight = class_weights(np.asarray(y_train), num_classes).numpy() if config.balance == "weights" else None
    diff = paired_loss_difference(y_val, lp_proba, ft_proba, class_weight=weight, seed=seed)
    if rule == "finetune-unless-worse":
        chosen = "linear-probe" if diff.low > 0 else "finetune"
    elif rule == "lower-val-loss":
        chosen = "finetune" if ft_val_loss < lp_val_loss else "linear-probe"
    else:
        raise ConfigError(f"auto_rule must be 'finetune-unless-worse' or 'lower-val-loss'; got {rule!r}.")
    return {"chosen": chosen, "rule": rule, "val_loss_linear_probe": lp_val_loss, "val_loss_finetune": ft_val_loss,
            "difference": diff.estimate, "difference_ci95": [diff.low, diff.high], "num_val": int(len(y_val)),
            "decisive": bool(diff.low > 0 or diff.high < 0)}


def describe_auto_choice(evidence: dict[str, Any]) -> str:
    """One line on ``strategy="auto"``'s choice, from :func:`auto_choice_evidence` (``metrics.json`` ``training.auto``)."""
    low, high = evidence["difference_ci95"]
    rule = evidence.get("rule", "lower-val-loss")  # run folders written before the rule was recorded used the lower loss
    if evidence["decisive"]:
        verdict = "decisive"
    elif rule == "finetune-unless-worse":
        verdict = ("the interval includes 0: this validation split cannot show fine-tuning is worse, so the fine-tuned "
                   "model is kept (rule finetune-unless-worse)")
    else:
        verdict = "the interval includes 0: this validation split cannot tell them apart, so the choice is close to a coin flip"
    return (f"kept {evidence['chosen']}: validation loss fine-tuned {evidence['val_loss_finetune']:.3g} vs linear probe "
            f"{evidence['val_loss_linear_probe']:.3g}; paired bootstrap 95 % interval of the difference [{low:+.3g}, {high:+.3g}] "
            f"on {evidence['num_val']} images ({verdict})")
