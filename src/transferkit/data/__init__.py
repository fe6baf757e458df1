"""Data: image folders -> splits, robust image reading, model-specific transforms."""

from .folder import ImageRecord, ImageSplits, SkippedFile, find_cross_split_duplicates, load_image_folder, load_labelled_folder
from .images import BadImageError, open_image, to_rgb
from .transforms import make_transforms

__all__ = [
    "BadImageError",
    "ImageRecord",
    "ImageSplits",
    "SkippedFile",
    "find_cross_split_duplicates",
    "load_image_folder",
    "load_labelled_folder",
    "make_transforms",
    "open_image",
    "to_rgb",
]
