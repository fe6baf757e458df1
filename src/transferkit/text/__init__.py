"""Text transfer learning: BERT-family encoders, linear probe / fine-tuning / LoRA, K-fold CV.

Layer 1: :func:`fit_text`, :func:`evaluate_text`, :func:`predict_text` (and ``transferkit.load``
for saved text models). Layer 2: :func:`embed_texts`, :class:`TextClassifier`,
:func:`finetune_text_model`, :class:`LengthGroupedSampler`.
"""

from .features import embed_texts, text_feature_key
from .finetune import LengthGroupedSampler, LoraSettings, finetune_text_model, merge_lora
from .fit import STRATEGIES, TextFitConfig, TextFitResult, cross_validate_text, evaluate_text, fit_text, predict_text, text_finetune_defaults
from .model import TEXT_FORMAT, TextClassifier, is_text_model_folder

__all__ = [
    "STRATEGIES", "TEXT_FORMAT", "LengthGroupedSampler", "LoraSettings", "TextClassifier", "TextFitConfig", "TextFitResult",
    "cross_validate_text", "embed_texts", "evaluate_text", "finetune_text_model", "fit_text", "is_text_model_folder", "merge_lora",
    "predict_text", "text_feature_key", "text_finetune_defaults",
]
