"""Classifier heads."""

from .dense import DenseHead

__all__ = ["DenseHead"]
