"""Frozen-backbone features and their on-disk cache."""

from .cache import FeatureCache, default_cache_dir, feature_key
from .extract import AugmentedViewDataset, ExtractionStats, ImageRecordDataset, extract_features, extract_train_views, resolve_device, view_seed

__all__ = ["AugmentedViewDataset", "ExtractionStats", "FeatureCache", "ImageRecordDataset", "default_cache_dir", "extract_features",
           "extract_train_views", "feature_key", "resolve_device", "view_seed"]
