"""TransferModel -> TorchScript (traced), loadable with ``torch.jit.load`` and no transferkit."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn


def export_torchscript(model: nn.Module, path: str | os.PathLike, input_size: tuple[int, int, int]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu")
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice
        traced = torch.jit.trace(model, torch.zeros(1, *input_size))
        traced = torch.jit.freeze(traced)
    traced.save(str(path))
    return path
