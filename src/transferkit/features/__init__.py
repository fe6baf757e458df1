"""Frozen-backbone features and their on-disk cache."""

from .cache import FeatureCache, default_cache_dir, feature_key
from .extract import ExtractionStats, ImageRecordDataset, extract_features, resolve_device

__all__ = ["ExtractionStats", "FeatureCache", "ImageRecordDataset", "default_cache_dir", "extract_features", "feature_key", "resolve_device"]
