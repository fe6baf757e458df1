"""Configuration objects. One pydantic model per concern; each serves Python and the CLI.

Everything a run needs to be reproduced is in these objects, and they are written to the
run folder's ``config.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Config):
    """How a data folder becomes train/val/test splits."""

    root: Path = Field(description="Image folder: class sub-folders, or train/ test/ [val/] layout.")
    val_fraction: float = Field(0.15, gt=0, lt=1, description="Share of train carved out for validation when there is no val/.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share held out for test when the folder has no train/test split.")
    max_pixels: int = Field(89_478_485, gt=0, description="Images with more pixels are skipped (decompression-bomb guard).")
    seed: int = Field(0, description="Seed of the stratified splits.")


class HeadConfig(_Config):
    """The new classifier head put on the frozen base."""

    hidden_dim: int | None = Field(None, gt=0, description="One hidden layer of this width; None = a single Dense layer.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the output layer.")


class HeadTrainConfig(_Config):
    """Training of a head on cached features."""

    epochs: int = Field(200, gt=0, description="Upper bound on epochs; early stopping usually ends sooner.")
    batch_size: int = Field(64, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(20, gt=0, description="Epochs without a better validation loss before stopping.")
    class_weighted: bool = Field(True, description="Weight the cross-entropy by inverse class frequency.")
    seed: int = 0


class FitConfig(_Config):
    """Everything `transferkit fit` needs: written to RUN/config.json."""

    data: DataConfig
    backbone: str = "mobilenet_v2"
    weights: str | None = Field("auto", description="'auto' (resolve offline first), 'none' (random init) or a file path.")
    head: HeadConfig = HeadConfig()
    train: HeadTrainConfig = HeadTrainConfig()
    positive: str | None = Field(None, description="Positive class for sensitivity/specificity ('auto' = the minority... see docs).")
    batch_size: int = Field(32, gt=0, description="Batch size of feature extraction.")
    num_workers: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cache_dir: Path | None = None
    seed: int = 0

    @field_validator("weights")
    @classmethod
    def _normalise_weights(cls, v: str | None) -> str | None:
        if v is None or v.lower() == "none":
            return "none"
        return v
