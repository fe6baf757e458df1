"""Shared fixtures: a tiny registered backbone and image folders written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferkit.backbones import BackboneSpec, WeightsCfg, register_backbone

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY = "tiny_effnet"


def _build_tiny():
    import timm

    return timm.create_model("test_efficientnet", pretrained=False)


register_backbone(
    BackboneSpec(
        name=TINY,
        family="efficientnet",
        library="timm",
        arch="test_efficientnet",
        build=_build_tiny,
        weights=WeightsCfg(tag="test", input_size=(3, 64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0),
        num_features=256,
        num_params=356_196,
        tags=("test",),
    )
)


def write_class_image(path: Path, cls: int, rng: np.random.Generator, size: int = 48) -> Path:
    """An image whose colour depends on its class, so even a random backbone can separate classes."""
    base = np.zeros((size, size, 3), np.float64)
    base[..., cls % 3] = 200.0
    if cls >= 3:
        base[: size // 2] = 255 - base[: size // 2]
    img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def make_image_folder(root: Path, *, classes=("cat", "dog"), per_class: int = 12, splits=("train", "test"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split in splits:
        n = per_class if split == "train" else max(4, per_class // 2)
        for ci, cls in enumerate(classes):
            for i in range(n):
                write_class_image(root / split / cls / f"{split}_{cls}_{i}.png", ci, rng)
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """train/ + test/ layout, two classes, 12 + 6 images per class."""
    return make_image_folder(tmp_path / "data")


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    """A state dict of the tiny backbone written as safetensors (stands in for pretrained weights)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(123)
    path = tmp_path / "tiny.safetensors"
    model = _build_tiny()
    with torch.no_grad():  # pretrained weights carry estimated BatchNorm statistics (placeholders mean a random init)
        model.train()(torch.rand(8, 3, 64, 64))
    save_file(model.state_dict(), str(path))
    return path


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's caches or the network."""
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "tk-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("TRANSFERKIT_OFFLINE", "1")


def requires_shared(name: str):
    return pytest.mark.skipif(not (SHARED_DATA / name).is_dir(), reason=f"real data set ../shared/data/{name} is absent")


@pytest.fixture
def torch_single_thread():
    """One intra-op thread for tiny-model tests: on a busy 2-core machine, 2 threads spin-wait
    (a 36-image tiny extraction goes from ~0.5 s to ~8 s). Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def crash_after_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int, code: int | str = 9):
    """Make the fine-tuning Trainer die right after writing its epoch-``epoch`` checkpoint, as ``kill -9`` would
    (nothing after the checkpoint runs). Returns a function that undoes the patch."""
    from transferkit.training import trainer as trainer_mod

    original = trainer_mod.Trainer._checkpoint

    def crashing(self, raw, optimizer, scheduler, state):
        path = original(self, raw, optimizer, scheduler, state)
        if state["epoch"] == epoch:
            raise SystemExit(code)
        return path

    monkeypatch.setattr(trainer_mod.Trainer, "_checkpoint", crashing)
    return lambda: monkeypatch.setattr(trainer_mod.Trainer, "_checkpoint", original)
