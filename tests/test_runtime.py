"""The torch-free runtime: import without torch, preprocessing identical to timm's, robust reading."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from transferkit.data import make_transforms, open_image
from transferkit.runtime import ExportConfig, ExportFolderError, Preprocessing, PreprocessingError, read_image
from transferkit.runtime.images import ImageReadError


def test_runtime_imports_without_torch():
    # the text path too: its tokenizer is the Rust `tokenizers` package, never transformers (predicting with a
    # real text export under the same block: tests/test_export_text.py)
    code = textwrap.dedent("""
        import json, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "timm", "sklearn", "safetensors", "transformers"):
                    raise ImportError(f"{name} is blocked in this test")
        sys.meta_path.insert(0, Block())
        import transferkit.runtime as rt
        import transferkit
        import tokenizers  # what TextTokenizer loads tokenizer.json with
        print(json.dumps({"names": rt.__all__, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in
                          ("torch", "torchvision", "timm", "sklearn", "safetensors", "transformers"))}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"ExportedModel", "TextTokenizer", "predict_texts"} <= set(out["names"]) and out["loaded"] == []


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("crop_pct", [0.875, 1.0, 1.15])
def test_numpy_preprocessing_reproduces_timm_transform(interpolation, crop_pct):
    cfg = {"input_size": (3, 48, 48), "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
           "interpolation": interpolation, "crop_pct": crop_pct}
    ours, timm_t = Preprocessing.from_config(cfg), make_transforms(cfg)
    rng = np.random.default_rng(0)
    for w, h in [(80, 60), (60, 80), (55, 55), (48, 48), (30, 90), (201, 47)]:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        x = ours(img)
        assert x.dtype == np.float32 and x.shape == (3, 48, 48)
        np.testing.assert_allclose(x, timm_t(img).numpy(), atol=1e-6, rtol=0)


def test_preprocessing_rejects_non_rgb_and_bad_configs():
    pre = Preprocessing.from_config({"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3})
    with pytest.raises(PreprocessingError, match="mode 'L'"):
        pre(Image.new("L", (40, 40)))
    with pytest.raises(PreprocessingError, match="interpolation"):
        Preprocessing.from_config({"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "magic"})
    with pytest.raises(PreprocessingError, match="incomplete"):
        Preprocessing.from_config({"input_size": [3, 32, 32]})


def _odd_images(tmp_path):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (30, 40, 4), dtype=np.uint8), mode="RGBA")
    files = {
        "rgba.png": rgba,
        "palette.png": rgb.convert("P"),
        "gray.png": rgb.convert("L"),
        "gray16.png": Image.fromarray((rng.integers(0, 4096, (30, 40))).astype(np.uint16)),
        "cmyk.jpg": rgb.convert("CMYK"),
    }
    for name, img in files.items():
        img.save(tmp_path / name)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    rgb.save(rotated, exif=exif)
    return [tmp_path / n for n in files] + [rotated]


def test_runtime_reader_gives_the_training_pixels(tmp_path):
    for path in _odd_images(tmp_path):
        ours, training = read_image(path), open_image(path)
        assert ours.mode == "RGB" and ours.size == training.size, path.name
        assert np.array_equal(np.asarray(ours), np.asarray(training)), path.name


def test_runtime_reader_errors_are_short_reasons(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    Image.new("RGB", (50, 50)).save(tmp_path / "cut.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "cut.jpg").read_bytes()[:200])
    cases = {"missing.png": "no such file", "empty.jpg": "empty file", "text.png": "not an image", "cut.jpg": "corrupt or truncated"}
    for name, reason in cases.items():
        with pytest.raises(ImageReadError) as info:
            read_image(tmp_path / name)
        assert reason in info.value.reason, name
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_export_folder_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ExportFolderError, match="not a folder"):
        ExportConfig.load(tmp_path / "nope")
    with pytest.raises(ExportFolderError, match="export.json is missing"):
        ExportConfig.load(tmp_path)
    (tmp_path / "export.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ExportFolderError, match="format"):
        ExportConfig.load(tmp_path)
    (tmp_path / "export.json").write_text(json.dumps({"format": "transferkit.export", "model_file": "model.onnx"}))
    with pytest.raises(ExportFolderError, match="not a valid export config"):
        ExportConfig.load(tmp_path)


def test_a_callers_threshold_is_checked_as_export_json_s_is():
    """check_threshold took any value float() accepts: "0.7" and True (as 1.0) passed, "abc" raised a bare ValueError.
    A threshold must be a number between 0 and 1, as export.json's and config.json's are."""
    from transferkit.errors import DataError
    from transferkit.runtime.predictor import check_threshold

    binary = ["neg", "pos"]
    for bad in (-0.1, 1.5, float("nan"), float("inf"), "0.7", "abc", True, [0.5]):
        with pytest.raises(DataError, match="is not a probability"):
            check_threshold(binary, bad, 0.5)
    assert [check_threshold(binary, t, 0.5) for t in (0, 1, 0.25, np.float32(0.75), np.float64(0.5))] == [0.0, 1.0, 0.25, 0.75, 0.5]
    assert check_threshold(binary, None, 0.3) == 0.3
    with pytest.raises(DataError, match="binary models only"):
        check_threshold(["a", "b", "c"], 0.5, 0.5)
