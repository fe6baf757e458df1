"""Training loops: heads on cached features, and the fine-tuning engine on Accelerate."""

from .augment import make_train_transform
from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from .finetune import finetune_image_model, make_image_loaders
from .head_selection import HeadChoice, choose_head
from .head_trainer import EpochRecord, HeadTrainer, class_weights, views_as_augmented
from .sampling import EpochSampler, balanced_sample_weights
from .schedule import layerwise_param_groups, warmup_cosine, warmup_decay
from .seed import seed_everything
from .trainer import FinetuneEpoch, Trainer, TrainingInterrupted, make_accelerator, set_train_mode
from .unfreeze import UnfreezeSpecError, parse_unfreeze, unfreeze_blocks
from .weight_interpolation import apply_wise_ft, interpolate_weights

__all__ = [
    "CheckpointError", "EpochRecord", "EpochSampler", "FinetuneEpoch", "HeadChoice", "HeadTrainer", "Trainer", "TrainingInterrupted",
    "UnfreezeSpecError", "apply_wise_ft", "balanced_sample_weights", "choose_head", "class_weights", "finetune_image_model", "interpolate_weights", "latest_checkpoint",
    "layerwise_param_groups", "load_checkpoint", "make_accelerator", "make_image_loaders", "make_train_transform",
    "parse_unfreeze", "save_checkpoint", "seed_everything", "set_train_mode", "unfreeze_blocks", "views_as_augmented", "warmup_cosine",
    "warmup_decay",
]
