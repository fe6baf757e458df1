"""NCE: negative conditional entropy of the target labels given the source model's hard labels.

Tran, Nguyen, Hassner (2019), "Transferability and Hardness of Supervised Classification
Tasks", ICCV. https://arxiv.org/abs/1908.08142

``z_i = argmax theta(x_i)`` is the source (ImageNet) class the pretrained classifier assigns;
NCE ``= -H(Y | Z) = sum_{y,z} P(y, z) log P(y | z)`` from the empirical joint (at most 0;
0 means the source labels determine the target labels).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_probabilities


def nce_score(source_probabilities: np.ndarray, labels: np.ndarray) -> float:
    """NCE of target labels given the source model's class probabilities (argmax taken as the source label)."""
    p, y, _ = check_probabilities(source_probabilities, labels)
    z = p.argmax(1)
    n = len(y)
    _, y_idx = np.unique(y, return_inverse=True)
    _, z_idx = np.unique(z, return_inverse=True)
    joint = np.zeros((y_idx.max() + 1, z_idx.max() + 1))
    np.add.at(joint, (y_idx, z_idx), 1.0 / n)
    p_z = joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log((joint / p_z)[nz])).sum())
