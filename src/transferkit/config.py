"""Configuration objects. One pydantic model per concern; each serves Python and the CLI.

Everything a run needs to be reproduced is in these objects, and they are written to the
run folder's ``config.json``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Image features that `fit` and `rank` use unless told otherwise: the backbone's pooled last stage plus the two stages
# before it (`Backbone.feature_stages`). Adopted in the seventh session by a rule written down before its last
# measurements ran (group CV inside train + val, test never read: bench/multilayer_features_cv.py, bench/RESULTS.md).
DEFAULT_FEATURE_STAGES = 3
MAX_FEATURE_STAGES = 8

# `train_views="auto"`: the head's CV compares the images alone with the images plus this many augmented copies each (the
# number the eighth session measured: bench/train_views_cv.py, bench/RESULTS.md).
AUTO_TRAIN_VIEWS = 4
MAX_TRAIN_VIEWS = 32

# How `strategy="auto"` chooses between the probe and the fine-tuned model (training.finetune.auto_choice_evidence).
AutoRule = Literal["finetune-unless-worse", "lower-val-loss"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Config):
    """How a data folder becomes train/val/test splits."""

    root: Path = Field(description="Image folder: class sub-folders, or train/ test/ [val/] layout.")
    val_fraction: float = Field(0.15, gt=0, lt=1, description="Share of train carved out for validation when there is no val/.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share held out for test when the folder has no train/test split.")
    max_pixels: int = Field(89_478_485, gt=0, description="Images with more pixels are skipped (decompression-bomb guard).")
    seed: int = Field(0, description="Seed of the stratified splits.")
    groups: str | None = Field(
        None,
        description="Regular expression searched in each file name; its first group (else the whole match) is the subject "
        "(patient, leaf). Carved splits keep each subject on one side; unmatched files are their own subject.",
    )
    groups_file: Path | None = Field(
        None, description="Instead of groups: a CSV table of file -> subject (columns 'file' and 'subject'; files relative to "
        "root or bare names), for subjects that live in metadata rather than in file names.")


class HeadConfig(_Config):
    """The new classifier head put on the frozen base.

    ``hidden_dim="auto"`` (the default) chooses, per data set, between a single Dense layer and one
    hidden layer of 256 by K-fold cross-validation inside train + val (``training.choose_head``):
    5-fold CV inside the training data prefers the hidden layer on the pneumonia X-rays and the single
    layer on the plant leaves (bench/head_defaults.py). Dropout 0.3 was chosen the same way.
    """

    hidden_dim: int | Literal["auto"] | None = Field(
        "auto", description="Width of one hidden layer; 0 or None = a single Dense layer; 'auto' = chosen among `candidates` by CV.")
    candidates: tuple[int, ...] = Field((0, 256), min_length=1, description="hidden_dim='auto' chooses among these widths (0 = a single Dense layer).")
    cv_folds: int = Field(5, ge=2, description="hidden_dim='auto': folds of the cross-validation (fewer when a class is smaller).")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout before the output layer.")

    @field_validator("hidden_dim", mode="before")
    @classmethod
    def _zero_means_none(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        if isinstance(v, str):
            try:
                v = int(v.strip())
            except ValueError:
                raise ValueError(f"hidden_dim must be a width (0 = a single Dense layer) or 'auto'; got {v!r}") from None
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            raise ValueError("hidden_dim must be >= 0, None or 'auto'")
        return v or None

    @field_validator("candidates")
    @classmethod
    def _non_negative(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 0 for w in v):
            raise ValueError("candidate widths must be >= 0 (0 = a single Dense layer)")
        return v


class HeadTrainConfig(_Config):
    """Training of a head on cached features."""

    epochs: int = Field(200, gt=0, description="Upper bound on epochs; early stopping usually ends sooner.")
    batch_size: int = Field(64, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    patience: int = Field(20, gt=0, description="Epochs without a better validation loss before stopping.")
    class_weighted: bool = Field(True, description="Weight the cross-entropy by inverse class frequency.")
    linear_solver: Literal["lbfgs", "adamw"] = Field(
        "lbfgs", description="A single Dense layer (hidden_dim 0): scikit-learn's L2 logistic regression solved to convergence "
        "(lbfgs, L2 strength from linear_C by validation loss), or AdamW with early stopping like the hidden-layer head.")
    linear_C: tuple[float, ...] = Field((0.003, 0.01, 0.03, 0.1, 0.3, 1.0), min_length=1,
                                        description="lbfgs: inverse L2 strengths tried on standardised features.")
    linear_max_iter: int = Field(2000, gt=0, description="lbfgs: iteration limit.")
    linear_refit: bool = Field(
        True, description="lbfgs single layer: choose C by K-fold CV log loss on train + val (folds as the head's width CV, "
        "grouped with --groups) and refit on all of them, as scikit-learn's LogisticRegressionCV does; validation numbers are "
        "then out-of-fold. Turned off where validation must stay unseen (the first stage of fine-tuning, text).")
    seed: int = 0

    @field_validator("linear_C")
    @classmethod
    def _positive_C(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(c <= 0 for c in v):
            raise ValueError("every linear_C value must be > 0 (inverse L2 strength)")
        return v


class AugmentConfig(_Config):
    """Train-only image augmentation (torchvision.transforms.v2); val/test never see it."""

    enabled: bool = Field(True, description="Augment training images (off: the eval transform is used for training too).")
    crop_scale_min: float = Field(0.7, gt=0, le=1, description="RandomResizedCrop keeps this share of the area at least.")
    hflip: float = Field(0.5, ge=0, le=1, description="Probability of a horizontal flip.")
    rotation: float = Field(10.0, ge=0, le=180, description="Random rotation range in degrees (+/-).")
    color_jitter: float = Field(0.2, ge=0, le=1, description="Brightness/contrast/saturation jitter strength (0 = off).")


class FinetuneConfig(_Config):
    """Stage two of LP-FT: unfreeze the base and train everything at a low learning rate."""

    epochs: int = Field(6, gt=0, description="Upper bound on fine-tuning epochs; early stopping may end sooner.")
    batch_size: int = Field(32, gt=0, description="Global batch size (split across processes under `accelerate launch`).")
    lr: float = Field(1e-4, gt=0, description="Learning rate of the head (AdamW); the k-th unfrozen block from the end gets lr * lr_decay**k. 1e-4 chosen on validation loss (bench/RESULTS.md).")
    lr_decay: float = Field(0.8, gt=0, le=1, description="Layer-wise LR decay: each block towards the input gets lr * decay^k.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not applied to norm layers and biases).")
    warmup_fraction: float = Field(0.1, ge=0, lt=1, description="Share of the optimizer steps spent in linear warm-up before the decay.")
    schedule: Literal["cosine", "linear"] = Field("cosine", description="Decay after warm-up: half cosine (images, timm/fastai) or linear to 0 (the BERT recipe; text default).")
    grad_clip: float | None = Field(1.0, gt=0, description="Clip the global gradient norm to this value (None = no clipping).")
    unfreeze: str = Field("all", description="'all' or 'last:N' backbone blocks, counted from the output end (see Backbone.blocks()).")
    freeze_bn: bool = Field(True, description="Keep every BatchNorm layer in eval mode (running statistics frozen), as the Keras fine-tuning guide advises; False updates the statistics of unfrozen blocks (frozen blocks always stay in eval mode).")
    balance: Literal["none", "weights", "sampler"] = Field("weights", description="Class imbalance: weighted loss, balanced sampler, or nothing.")
    patience: int = Field(3, gt=0, description="Epochs without a better validation loss before stopping.")
    num_workers: int = Field(0, ge=0, description="DataLoader workers (0 keeps augmentation RNG, hence resume, exactly reproducible).")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = Field("auto", description="'auto' = fp16 on CUDA, off on CPU.")
    wise_alpha: float = Field(0.5, ge=0, le=1, description="WiSE-FT (Wortsman et al. 2022): the kept model's weights are (1 - alpha) x the "
                              "weights fine-tuning started from (stage one) + alpha x the fine-tuned ones; 1 = plain fine-tuning. 0.5 for images "
                              "since the tenth session, chosen on validation loss (bench/RESULTS.md); text (full and LoRA) since the eleventh "
                              "session (text_finetune_defaults). Applied by fit, fit_text and finetune_image_model; finetune_text_model leaves "
                              "it to its caller (LoRA adapters are merged first).")

    @field_validator("unfreeze")
    @classmethod
    def _unfreeze_spec(cls, v: str) -> str:
        spec = v.strip().lower()
        if spec != "all" and re.fullmatch(r"last:[1-9][0-9]*", spec) is None:
            raise ValueError(f"--unfreeze takes 'all' or 'last:N' with N >= 1 (the N blocks nearest the output); got {v!r}")
        return spec


class FitConfig(_Config):
    """Everything `transferkit fit` needs: written to RUN/config.json."""

    data: DataConfig
    backbone: str = "mobilenet_v2"
    weights: str | None = Field("auto", description="'auto' (resolve offline first), 'none' (random init) or a file path.")
    head: HeadConfig = HeadConfig()
    train: HeadTrainConfig = HeadTrainConfig()
    positive: str | None = Field(None, description="Positive class of a binary task, for sensitivity and specificity (default: the second "
                                                   "class in sorted order, as scikit-learn); checked against the classes before any work.")
    batch_size: int = Field(32, gt=0, description="Batch size of feature extraction.")
    num_workers: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cache_dir: Path | None = None
    seed: int = 0
    strategy: Literal["linear-probe", "finetune", "auto"] = Field(
        "linear-probe", description="linear-probe (frozen base), finetune (LP then unfreeze) or auto (the fine-tuned model unless validation shows it worse than the probe; see auto_rule)."
    )
    auto_rule: AutoRule = Field(
        "finetune-unless-worse", description="How strategy='auto' decides: 'finetune-unless-worse' keeps the fine-tuned model unless a "
        "paired bootstrap 95 % interval shows its validation loss higher than the probe's; 'lower-val-loss' keeps the lower point estimate.")
    finetune: FinetuneConfig = FinetuneConfig()
    augment: AugmentConfig = AugmentConfig()
    tta: Literal["none", "flips"] = Field(
        "none", description="Test-time views: 'flips' averages the features of each image, its two mirror images and its transpose. "
                            "Every forward pass outside training (feature extraction, evaluation, predict, export) then costs 4x.")
    train_views: int | Literal["auto"] = Field(
        0, description="Frozen-base head: also train on the features of this many augmented copies of each training image "
        f"(the `augment` settings; computed once and cached). 0 = the images alone; 'auto' = {AUTO_TRAIN_VIEWS} copies if the head's "
        "cross-validation inside train + val scores them higher than the images alone (HeadTrainer choose_copies), else none.")
    feature_stages: int = Field(
        DEFAULT_FEATURE_STAGES, ge=1, le=MAX_FEATURE_STAGES, description="Pool the outputs of the backbone's last K stages and concatenate them (1 = the last stage only; default 3). "
                                   "Mid-level features help targets far from ImageNet; same compute, wider features.")

    @field_validator("train_views", mode="before")
    @classmethod
    def _check_train_views(cls, v):
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ValueError(f"train_views must be a number of copies (0-{MAX_TRAIN_VIEWS}) or 'auto'; got {v!r}") from None
        if not (0 <= n <= MAX_TRAIN_VIEWS) or n != float(v):
            raise ValueError(f"train_views must be a number of copies (0-{MAX_TRAIN_VIEWS}) or 'auto'; got {v!r}")
        return n

    @property
    def train_view_copies(self) -> int:
        """How many augmented copies per image to compute: ``train_views``, or ``AUTO_TRAIN_VIEWS`` under 'auto'."""
        return AUTO_TRAIN_VIEWS if self.train_views == "auto" else self.train_views

    @field_validator("weights")
    @classmethod
    def _normalise_weights(cls, v: str | None) -> str | None:
        if v is None or v.lower() == "none":
            return "none"
        return v
