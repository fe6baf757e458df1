"""Training loops: heads on cached features (the fine-tuning engine builds on this)."""

from .head_trainer import EpochRecord, HeadTrainer, class_weights
from .seed import seed_everything

__all__ = ["EpochRecord", "HeadTrainer", "class_weights", "seed_everything"]
