"""Run exported models with onnxruntime, numpy and Pillow (images) or ``tokenizers`` (text) only
(no torch, no transformers): edge devices.

Importing this package never imports torch; ``tests/test_runtime.py`` proves it in a
subprocess where torch cannot be imported.
"""

from .folder import EXPORT_CONFIG_NAME, ExportConfig, ExportFolderError, is_export_folder
from .images import ImageReadError, list_images, read_image
from .predictor import ExportedModel, decide, make_session, predict_files, predict_texts, softmax
from .preprocess import Preprocessing, PreprocessingError, preprocess_image
from .text import TextInputError, TextPreprocessing, TextTokenizer

__all__ = [
    "EXPORT_CONFIG_NAME", "ExportConfig", "ExportFolderError", "ExportedModel", "ImageReadError", "Preprocessing",
    "PreprocessingError", "TextInputError", "TextPreprocessing", "TextTokenizer", "decide", "is_export_folder", "list_images",
    "make_session", "predict_files", "predict_texts", "preprocess_image", "read_image", "softmax",
]
