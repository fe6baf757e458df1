"""Transferability evidence from frozen features (and the source classifier's outputs).

Each score reads features (or ImageNet probabilities) of the *training* images and the
target labels; higher is better for all of them.
"""

from .hscore import hscore_shrinkage
from .knn import CVAccuracy, knn_accuracy, wilson_interval
from .leep import leep_score
from .linear_probe import linear_probe_accuracy
from .logme import LogME, evidence, logme_score
from .nce import nce_score

__all__ = ["CVAccuracy", "LogME", "evidence", "hscore_shrinkage", "knn_accuracy", "leep_score", "linear_probe_accuracy",
           "logme_score", "nce_score", "wilson_interval"]
