"""TransferModel -> ONNX (fp32), with a dynamic batch axis named ``batch``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

INPUT_NAME, OUTPUT_NAME = "images", "logits"
DEFAULT_OPSET = 18
EXPORTERS = ("dynamo", "torchscript")


def export_onnx(model: nn.Module, path: str | os.PathLike, input_size: tuple[int, int, int], *, opset: int = DEFAULT_OPSET,
                exporter: str = "dynamo") -> Path:
    """Write ``model`` (eval mode, CPU) as one self-contained ONNX file; returns the path.

    ``exporter="dynamo"`` is PyTorch's ``torch.export``-based exporter (its default since 2.9);
    ``"torchscript"`` is the older tracer, ~10x faster to run, kept for quick exports and tests.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu")
    example = torch.zeros(2, *input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's deprecation notice, exporter chatter
        if exporter == "dynamo":
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        opset_version=opset, dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                                        external_data=False, verbose=False)
            program.save(str(path), external_data=False)
        else:
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              opset_version=opset, dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                              do_constant_folding=True)
    import onnx

    proto = onnx.load(str(path))
    strip_debug_info(proto)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def strip_debug_info(proto) -> None:
    """Drop per-node doc strings and metadata (the exporter's Python stack traces): not needed to run,
    ~2-6 % of a small model's file."""
    for node in proto.graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    for value in list(proto.graph.value_info) + list(proto.graph.input) + list(proto.graph.output):
        del value.metadata_props[:]
