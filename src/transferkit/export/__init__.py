"""Export: a saved model -> ONNX (fp32 or int8) or TorchScript, checked against PyTorch.

Layer 1: :func:`export_model` (image models; text models are dispatched to :func:`export_text_model`:
ONNX + ``tokenizer.json``, int8 by dynamic quantization). Underneath: :func:`export_onnx`,
:func:`export_text_onnx`, :func:`export_torchscript`, :func:`quantize_static_int8` /
:func:`quantize_dynamic_int8` (onnxruntime's tools) and :func:`compare_logits` (parity). Running an
export needs only :mod:`transferkit.runtime`.
"""

from .exporter import ExportResult, export_model, model_calibration, sample_files
from .onnx import export_onnx, export_text_onnx
from .parity import ParityError, ParityReport, compare_logits
from .quantize import head_node_names, quantize_dynamic_int8, quantize_static_int8
from .text import export_text_model
from .torchscript import export_torchscript

__all__ = [
    "ExportResult", "ParityError", "ParityReport", "compare_logits", "export_model", "export_onnx", "export_text_model",
    "export_text_onnx", "export_torchscript", "head_node_names", "model_calibration", "quantize_dynamic_int8", "quantize_static_int8", "sample_files",
]
