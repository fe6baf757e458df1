"""Export to ONNX (fp32, int8) and TorchScript with parity checks; predict on the export."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import TINY, make_image_folder
from transferkit.backbones import load_backbone
from transferkit.cli.app import app
from transferkit.errors import DataError
from transferkit.export import ParityError, export_model
from transferkit.export import exporter as exporter_module
from transferkit.heads import DenseHead
from transferkit.model import TransferModel, load
from transferkit.runtime import ExportedModel, is_export_folder, softmax

CLASSES = ("cat", "dog", "fox")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    """A saved tiny TransferModel (random backbone + head fitted to colour-coded classes) and its data."""
    root = tmp_path_factory.mktemp("export")
    data = make_image_folder(root / "data", classes=CLASSES, per_class=10)
    torch.manual_seed(0)
    backbone = load_backbone(TINY, weights="none")
    head = DenseHead(backbone.num_features, len(CLASSES))
    model = TransferModel(backbone, head, list(CLASSES)).eval()
    # fit the head by least squares on the backbone's features, so predictions are confident and meaningful
    from transferkit.data import make_transforms, open_image

    files = sorted((data / "train").rglob("*.png"))
    t = make_transforms(model.data_cfg)
    with torch.no_grad():
        feats = backbone(torch.stack([t(open_image(f)) for f in files]))
        y = torch.tensor([CLASSES.index(f.parent.name) for f in files])
        target = torch.nn.functional.one_hot(y, len(CLASSES)).float() * 8 - 4
        a = torch.cat([feats, torch.ones(len(feats), 1)], 1)
        sol = torch.linalg.lstsq(a, target, driver="gelsd").solution
        linear = [m for m in head.modules() if isinstance(m, torch.nn.Linear)][-1]
        linear.weight.copy_(sol[:-1].T)
        linear.bias.copy_(sol[-1])
    return model.save_pretrained(root / "model"), data


@pytest.fixture(scope="module")
def fp32_export(tiny_model, tmp_path_factory) -> Path:
    model_dir, data = tiny_model
    out = tmp_path_factory.mktemp("exports") / "fp32"
    export_model(model_dir, out, parity_data=data, exporter="torchscript", progress=False)
    return out


def test_fp32_onnx_export_writes_folder_and_passes_parity(tiny_model, fp32_export):
    model_dir, data = tiny_model
    cfg = json.loads((fp32_export / "export.json").read_text())
    assert cfg["runtime"] == "onnx" and cfg["precision"] == "fp32" and (fp32_export / "model.onnx").is_file()
    assert (fp32_export / "labels.txt").read_text().split() == list(CLASSES)
    assert cfg["preprocessing"]["input_size"] == [3, 64, 64] and cfg["preprocessing"]["interpolation"]
    parity = json.loads((fp32_export / "parity.json").read_text())
    assert parity["passed"] and {r["stage"] for r in parity["reports"]} == {"network", "pipeline"}
    for r in parity["reports"]:
        assert r["max_abs_logit_diff"] <= 1e-4 and r["top1_agreement"] == 1.0 and r["num_samples"] == 32
    assert parity["preprocessing_max_abs_diff"] <= 1e-6
    # the exported model predicts what the PyTorch model predicts, file by file
    files = sorted((data / "test").rglob("*.png"))
    ours, theirs = ExportedModel(fp32_export).predict(files), load(model_dir).predict(files)
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    diff = max(abs(a["probabilities"][c] - b["probabilities"][c]) for a, b in zip(ours, theirs) for c in CLASSES)
    assert diff < 1e-5
    assert sum(r["label"] == Path(r["path"]).parent.name for r in ours) >= len(files) - 2


def test_quantization_prints_nothing_to_stdout(fp32_export, tmp_path, capsys):
    # onnxruntime's percentile calibrator printed "Collecting tensor data and making histogram ..." to stdout:
    # `benchmark --json` was then no JSON, and -q did not silence it
    import json

    import numpy as np

    from transferkit.export.quantize import quantize_static_int8

    cfg = json.loads((fp32_export / "export.json").read_text())
    calibration = np.random.default_rng(0).normal(size=(8, *cfg["preprocessing"]["input_size"])).astype(np.float32)
    capsys.readouterr()
    quantize_static_int8(fp32_export / "model.onnx", tmp_path / "int8.onnx", calibration, calibrate_method="percentile")
    assert (tmp_path / "int8.onnx").is_file() and capsys.readouterr().out == ""


def test_int8_export_is_smaller_and_agrees(tiny_model, fp32_export, tmp_path):
    model_dir, data = tiny_model
    result = export_model(model_dir, tmp_path / "int8", quantize="int8", calibration=data, num_calibration=20,
                          exporter="torchscript", calibrate_method="minmax", min_agreement=0.8, progress=False)
    q = result.config.extra["quantization"]
    assert q["method"] == "static" and q["per_channel"] and q["num_calibration_images"] == 20
    assert result.file_size_bytes < q["fp32_size_bytes"]
    calib = set(result.config.extra["calibration_images"])
    assert all("/train/" in p for p in calib)  # a train/ + test/ root calibrates on train/ only
    assert not calib & set(result.config.extra["parity"]["images"])  # parity images are never calibration images
    files = sorted((data / "test").rglob("*.png"))
    int8 = [r["label"] for r in ExportedModel(tmp_path / "int8").predict(files)]
    fp32 = [r["label"] for r in ExportedModel(fp32_export).predict(files)]
    assert np.mean(np.array(int8) == np.array(fp32)) >= 0.8


def test_broken_export_fails_loudly_and_leaves_no_loadable_folder(tiny_model, tmp_path, monkeypatch):
    model_dir, data = tiny_model
    real_export = exporter_module.export_onnx

    def export_a_different_model(model, path, input_size, **kwargs):
        wrong = load(model_dir)
        with torch.no_grad():
            [m for m in wrong.head.modules() if isinstance(m, torch.nn.Linear)][-1].bias[0] += 1e-2
        return real_export(wrong, path, input_size, **kwargs)

    monkeypatch.setattr(exporter_module, "export_onnx", export_a_different_model)
    with pytest.raises(ParityError, match="does not match PyTorch"):
        export_model(model_dir, tmp_path / "bad", parity_data=data, exporter="torchscript", progress=False)
    assert not is_export_folder(tmp_path / "bad")
    parity = json.loads((tmp_path / "bad" / "parity.json").read_text())
    assert not parity["passed"] and parity["reports"][0]["max_abs_logit_diff"] > 1e-3


def test_temperature_and_threshold_travel_with_the_export(tiny_model, tmp_path):
    model_dir, data = tiny_model
    calibrated = tmp_path / "calibrated"
    calibrated.mkdir()
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["temperature"] = 2.5
    (calibrated / "config.json").write_text(json.dumps(cfg))
    (calibrated / "model.safetensors").symlink_to(model_dir / "model.safetensors")
    export_model(calibrated, tmp_path / "exp", parity_data=data, num_parity=8, exporter="torchscript", progress=False)
    model = ExportedModel(tmp_path / "exp")
    assert model.config.temperature == 2.5
    x = model.preprocessing.batch([__import__("transferkit.runtime", fromlist=["read_image"]).read_image(f)
                                   for f in sorted((data / "test").rglob("*.png"))[:4]])
    np.testing.assert_allclose(model.predict_proba(x), softmax(model.logits(x) / 2.5), rtol=1e-6)


def test_torchscript_export_runs(tiny_model, fp32_export, tmp_path):
    model_dir, data = tiny_model
    result = export_model(model_dir, tmp_path / "ts", format="torchscript", parity_data=data, num_parity=8, progress=False)
    assert result.passed and result.config.runtime == "torchscript" and (tmp_path / "ts" / "model.pt").is_file()
    files = sorted((data / "test").rglob("*.png"))[:6]
    assert [r["label"] for r in ExportedModel(tmp_path / "ts").predict(files)] == [r["label"] for r in ExportedModel(fp32_export).predict(files)]


def test_export_argument_errors(tiny_model, tmp_path):
    model_dir, data = tiny_model
    with pytest.raises(DataError, match="calibration"):
        export_model(model_dir, tmp_path / "x", quantize="int8")
    with pytest.raises(ValueError, match="format"):
        export_model(model_dir, tmp_path / "x", format="tflite")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        export_model(model_dir, tmp_path / "full")


def test_predict_on_export_runs_without_torch(fp32_export, tiny_model):
    """The runtime predicts in a process where torch (and timm, torchvision, scikit-learn) cannot be imported."""
    _, data = tiny_model
    files = [str(f) for f in sorted((data / "test").rglob("*.png"))[:3]]
    code = textwrap.dedent(f"""
        import json, sys
        for name in ("torch", "torchvision", "timm", "sklearn"):
            sys.modules[name] = None  # any import of these now raises ImportError
        from transferkit.runtime import ExportedModel
        out = ExportedModel({str(fp32_export)!r}).predict({files!r})
        assert all(m is None for m in (sys.modules.get(n) for n in ("torch", "timm", "sklearn")))
        print(json.dumps([r["label"] for r in out]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    expected = [r["label"] for r in ExportedModel(fp32_export).predict(files)]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected


runner = CliRunner()


def test_cli_predict_on_export_and_bad_input(fp32_export, tiny_model, tmp_path):
    _, data = tiny_model
    good = sorted((data / "test" / "dog").glob("*.png"))[0]
    res = runner.invoke(app, ["predict", str(fp32_export), str(good), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)[0]["label"] in CLASSES

    # odd image modes are converted, as in training: a 16-bit grayscale and a CMYK file both predict
    from PIL import Image

    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(tmp_path / "gray16.png")
    Image.open(good).convert("CMYK").save(tmp_path / "cmyk.jpg")
    res = runner.invoke(app, ["predict", str(fp32_export), str(tmp_path / "gray16.png"), str(tmp_path / "cmyk.jpg"), "--json"])
    assert res.exit_code == 0, res.output
    assert all(r["label"] in CLASSES for r in json.loads(res.stdout))

    # a missing file and a non-image file: a per-file error and exit 1, no traceback
    (tmp_path / "notes.png").write_text("not an image")
    res = runner.invoke(app, ["predict", str(fp32_export), str(tmp_path / "missing.png"), str(tmp_path / "notes.png"), "--json"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    errors = [r["error"] for r in json.loads(res.stdout)]
    assert errors == ["no such file", "not an image Pillow can read"]

    # a folder that is neither an export nor a model folder
    res = runner.invoke(app, ["predict", str(tmp_path), str(good)])
    # the message is wrapped at the terminal width, which the temporary path's length moves: compare words
    assert res.exit_code == 1 and "neither an exported model" in " ".join(res.output.split()) and "Traceback" not in res.output
    # an export folder with its network file deleted
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "export.json").write_text((fp32_export / "export.json").read_text())
    res = runner.invoke(app, ["predict", str(broken), str(good)])
    assert res.exit_code == 1 and "model.onnx" in res.output and "missing" in res.output


def test_cli_export_reports_parity(tiny_model, tmp_path):
    model_dir, data = tiny_model
    res = runner.invoke(app, ["export", str(model_dir), "--out", str(tmp_path / "e"), "--parity-data", str(data),
                              "--num-parity", "8", "--exporter", "torchscript", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "top-1 agreement 100.0%" in res.output and "pipeline" in res.output
    res = runner.invoke(app, ["export", str(model_dir), "--out", str(tmp_path / "f"), "--quantize", "int8"])
    assert res.exit_code == 1 and "calibration" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_benchmark_compares_three_variants_in_one_run(tiny_model, tmp_path):
    from transferkit.export.benchmark import benchmark_models

    model_dir, data = tiny_model
    r = benchmark_models(model_dir, data, work_dir=tmp_path, batch_size=4, rounds=2, calls_per_round=2,
                         exporter="torchscript", export_options={"min_agreement": 0.5, "calibrate_method": "minmax"}, progress=False)
    v = r["variants"]
    assert list(v) == ["pytorch fp32", "onnx fp32", "onnx int8"] and r["num_test_images"] == 15
    assert v["onnx fp32"]["top1_agreement_with_pytorch"] == 1.0 and v["onnx fp32"]["max_abs_logit_diff_vs_pytorch"] <= 1e-4
    assert v["onnx int8"]["size_ratio_vs_onnx_fp32"] < 1.0
    for name in ("onnx fp32", "onnx int8"):
        row = v[name]
        assert row["latency_b1_num_calls"] == 4 and 0 < row["latency_b1_p50_ms"] <= row["latency_b1_p95_ms"]
        assert row["throughput_b4_img_s"] > 0 and 0 <= row["test_accuracy"] <= 1
    # the exported variants were measured in fresh processes that never imported torch (the PyTorch probe cannot
    # rebuild the test-only tiny backbone, which is registered by conftest, so it reports an error instead)
    for name in ("onnx fp32", "onnx int8"):
        assert v[name]["peak_rss_mib"] > 0 and v[name]["torch_imported"] is False
    assert "tiny_effnet" in v["pytorch fp32"]["probe_error"]


def test_benchmark_measures_the_other_variants_when_int8_fails_parity(tiny_model, tmp_path, monkeypatch):
    # it used to end with no numbers at all, naming a temporary parity.json it had deleted and options it does not take
    from typer.testing import CliRunner

    from transferkit.cli.app import app
    from transferkit.export.benchmark import benchmark_models

    model_dir, data = tiny_model
    r = benchmark_models(model_dir, data, batch_size=4, rounds=1, calls_per_round=2, exporter="torchscript",
                         export_options={"atol": 1e-12, "min_agreement": 1.0, "calibrate_method": "minmax"}, progress=False)
    assert list(r["variants"]) == ["pytorch fp32", "onnx fp32"]
    why = r["left_out"]["onnx int8"]
    assert "does not match PyTorch" in why and "It is left out" in why and "Numbers in" not in why
    import transferkit.export.benchmark as bench_mod

    monkeypatch.setattr(bench_mod, "benchmark_models", lambda *a, **k: r)
    res = CliRunner().invoke(app, ["benchmark", str(model_dir), str(data), "--batch-size", "4"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "onnx int8 not measured:" in res.output and "It is left out" in " ".join(res.output.split())


def test_fp32_export_checks_parity_on_the_calibration_folders_real_images(tiny_model, tmp_path):
    """fp32 calibrates nothing: with a folder smaller than --num-calibration, every image used to be set aside for a
    calibration that never ran, and parity fell back to random noise while saying that no folder was given."""
    model_dir, data = tiny_model
    result = export_model(model_dir, tmp_path / "fp32", calibration=data, exporter="torchscript", progress=False)
    parity = json.loads((tmp_path / "fp32" / "parity.json").read_text())
    assert isinstance(parity["images"], list) and len(parity["images"]) == 32
    assert all(Path(p).is_relative_to(data) for p in parity["images"])
    assert any("used only for the parity check" in n for n in result.notes)
    assert not any("random-noise" in n for n in result.notes)


def test_benchmark_checks_the_classes_before_exporting_and_leaves_no_temporary_folder(tiny_model, tmp_path, monkeypatch):
    import tempfile

    from transferkit.export.benchmark import benchmark_models

    model_dir, _ = tiny_model
    other = make_image_folder(tmp_path / "other", classes=("owl", "bat"), per_class=4)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    called = []
    monkeypatch.setattr("transferkit.export.export_model", lambda *a, **k: called.append(a))
    with pytest.raises(DataError, match="not classes of this model|not a class"):
        benchmark_models(model_dir, other, progress=False)
    assert called == [] and list((tmp_path / "tmp").iterdir()) == []


def test_benchmark_checks_parity_on_the_test_images_and_makes_its_out_folder(tiny_model, fp32_export, tmp_path):
    """With 100 or fewer train images every one went to int8 calibration, so parity fell back to random noise (and failed
    on it); an export folder benchmarked with a new --out folder failed to write its inputs there."""
    from transferkit.export.benchmark import benchmark_models

    model_dir, data = tiny_model
    benchmark_models(model_dir, data, work_dir=tmp_path / "b", batch_size=2, rounds=1, calls_per_round=1, exporter="torchscript",
                     export_options={"min_agreement": 0.5, "calibrate_method": "minmax"}, progress=False)
    for variant in ("onnx-fp32", "onnx-int8"):
        images = json.loads((tmp_path / "b" / variant / "parity.json").read_text())["images"]
        assert isinstance(images, list) and images and all(Path(p).is_relative_to(data / "test") for p in images), variant
    r = benchmark_models(fp32_export, data, work_dir=tmp_path / "new" / "folder", batch_size=2, rounds=1, calls_per_round=1, progress=False)
    assert list(r["variants"]) == ["pytorch fp32", "onnx fp32"]


def _capitalised_splits(root: Path) -> Path:
    """A Training/ + Testing/ root (as fit reads it) with the tiny model's classes."""
    data = make_image_folder(root, classes=CLASSES, per_class=4)
    (data / "train").rename(data / "Training")
    (data / "test").rename(data / "Testing")
    return data


def test_int8_calibrates_on_a_Training_folder_only(tiny_model, tmp_path):
    """fit reads Training/ + Testing/ as its splits, but calibration looked for train/ only and sampled Testing/ too."""
    model_dir, _ = tiny_model
    data = _capitalised_splits(tmp_path / "caps")
    result = export_model(model_dir, tmp_path / "int8", quantize="int8", calibration=data, num_calibration=100,
                          exporter="torchscript", calibrate_method="minmax", min_agreement=0.0, progress=False)
    calib = result.config.extra["calibration_images"]
    assert len(calib) == 12 and all(Path(p).is_relative_to(data / "Training") for p in calib)


def test_benchmark_finds_Training_and_Testing_folders(tiny_model, tmp_path, monkeypatch):
    """benchmark failed with "has no train/ folder" on a Training/ + Testing/ root that fit and evaluate accept."""
    from transferkit.export.benchmark import benchmark_models

    model_dir, _ = tiny_model
    data = _capitalised_splits(tmp_path / "caps")
    calls = []

    class Stop(Exception):
        pass

    def record(*args, **kwargs):
        calls.append(kwargs)
        raise Stop

    monkeypatch.setattr("transferkit.export.export_model", record)
    with pytest.raises(Stop):
        benchmark_models(model_dir, data, work_dir=tmp_path / "b", progress=False)
    assert calls[0]["calibration"] == data / "Training" and calls[0]["parity_data"] == data / "Testing"


def _run_folder(model_dir: Path, data: Path, dest: Path, *, num_train: int, num_val: int, record: bool = True) -> Path:
    """A run folder around the tiny model whose RUN/splits.json says it trained on the first ``num_train`` and validated
    on the next ``num_val`` images of ``data``'s test/ (as a fit on a folder holding them would record)."""
    import shutil

    from transferkit.data import load_labelled_folder

    shutil.copytree(model_dir, dest / "model")
    (dest / "config.json").write_text(json.dumps({"fit": {"data": str(data)}}))
    if record:
        records, _ = load_labelled_folder(data, list(CLASSES), progress=False)
        entry = [{"path": str(r.path), "sha256": r.sha256} for r in records]
        splits = {"train": entry[:num_train], "val": entry[num_train : num_train + num_val], "test": entry[num_train + num_val :]}
        (dest / "splits.json").write_text(json.dumps({"root": str(data), "splits": splits}))
    return dest


def test_benchmark_accuracy_leaves_out_the_images_the_run_trained_on(tiny_model, tmp_path, monkeypatch):
    """benchmark RUN DATA measured accuracy on every image of DATA, the run's training images among them, while
    evaluate RUN DATA leaves them out: the two reported different accuracies for the same model and data."""
    import transferkit as tk
    import transferkit.export.benchmark as bench_mod

    monkeypatch.setattr(bench_mod, "_probe", lambda *a, **k: {"error": "not timed in this test"})  # accuracy only
    model_dir, data = tiny_model
    run = _run_folder(model_dir, data, tmp_path / "run", num_train=4, num_val=2)
    r = bench_mod.benchmark_models(run, data, work_dir=tmp_path / "b", batch_size=4, rounds=1, calls_per_round=1,
                                   exporter="torchscript", export_options={"min_agreement": 0.0, "calibrate_method": "minmax"},
                                   progress=False)
    assert r["excluded_training_images"] == 6 and r["num_test_images"] == 15 - 6 and "training_record" not in r
    metrics = tk.evaluate(run, data, progress=False)
    assert metrics["num_samples"] == 9
    assert r["variants"]["pytorch fp32"]["test_accuracy"] == pytest.approx(metrics["accuracy"])

    every = bench_mod.benchmark_models(run, data, work_dir=tmp_path / "c", batch_size=4, rounds=1, calls_per_round=1,
                                       exporter="torchscript", include_training_images=True,
                                       export_options={"min_agreement": 0.0, "calibrate_method": "minmax"}, progress=False)
    assert every["excluded_training_images"] == 0 and every["num_test_images"] == 15


def test_benchmark_says_when_it_cannot_leave_out_training_images(tiny_model, tmp_path, monkeypatch):
    import transferkit.export.benchmark as bench_mod

    model_dir, data = tiny_model
    run = _run_folder(model_dir, data, tmp_path / "run", num_train=0, num_val=0, record=False)  # a run without splits.json
    monkeypatch.setattr(bench_mod, "_probe", lambda *a, **k: {"error": "not timed in this test"})
    r = bench_mod.benchmark_models(run, data, work_dir=tmp_path / "b", batch_size=4, rounds=1, calls_per_round=1,
                                   exporter="torchscript", export_options={"min_agreement": 0.0, "calibrate_method": "minmax"},
                                   progress=False)
    assert r["excluded_training_images"] == 0 and "has no splits.json" in r["training_record"]
    assert "optimistic" in r["training_record"]

    from transferkit.cli.app import app

    monkeypatch.setattr(bench_mod, "benchmark_models", lambda *a, **k: {**r, "excluded_training_images": 6, "num_test_samples": 9})
    res = CliRunner().invoke(app, ["benchmark", str(run), str(data), "--batch-size", "4"], env={"COLUMNS": "200"})
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "has no splits.json" in out
    assert "accuracy left out 6 image(s) this run trained on" in out and "measured on the other 9" in out


def test_benchmark_on_training_images_only_is_a_clear_error_before_exporting(tiny_model, tmp_path, monkeypatch):
    from transferkit.export.benchmark import benchmark_models

    model_dir, data = tiny_model
    run = _run_folder(model_dir, data, tmp_path / "run", num_train=12, num_val=3)
    called = []
    monkeypatch.setattr("transferkit.export.export_model", lambda *a, **k: called.append(a))
    with pytest.raises(DataError, match="was used to train this run.*--include-training-images"):
        benchmark_models(run, data, work_dir=tmp_path / "b", progress=False)
    assert called == []
    res = CliRunner().invoke(app, ["benchmark", str(run), str(data), "-q"])
    assert res.exit_code == 1 and "include-training-images" in res.output and "Traceback" not in res.output


def test_int8_parity_checks_real_images_held_back_from_a_small_calibration_folder(tiny_model, tmp_path):
    """A folder of --num-calibration images or fewer, used for both (no test/ split): every image went to calibration
    and parity fell back to random noise. Now some are held back for parity, which still never sees a calibration image."""
    model_dir, data = tiny_model
    folder = data / "test"  # 15 class-folder images, fewer than the default 100 calibration images
    result = export_model(model_dir, tmp_path / "int8", quantize="int8", calibration=folder, exporter="torchscript",
                          calibrate_method="minmax", min_agreement=0.0, progress=False)
    parity = result.config.extra["parity"]["images"]
    calib = result.config.extra["calibration_images"]
    assert isinstance(parity, list) and len(parity) == 7 and len(calib) == 8
    assert not set(parity) & set(calib) and len(set(parity) | set(calib)) == 15
    assert any("held back from calibration for the parity check" in n for n in result.notes)
    assert not any("random-noise" in n for n in result.notes)


def test_benchmark_says_when_int8_parity_ran_on_random_noise(tiny_model, tmp_path, monkeypatch):
    """With nothing left to split (one image, calibrating), parity runs on random noise; an int8 export left out for
    failing it said so under `export`, but benchmark's left_out cut the note off."""
    import transferkit.export.benchmark as bench_mod
    from conftest import write_class_image

    model_dir, _ = tiny_model
    one = tmp_path / "one"
    write_class_image(one / "cat" / "a.png", 0, np.random.default_rng(0))
    monkeypatch.setattr(bench_mod, "_probe", lambda *a, **k: {"error": "not timed in this test"})
    r = bench_mod.benchmark_models(model_dir, one, calibration=one, work_dir=tmp_path / "b", batch_size=1, rounds=1,
                                   calls_per_round=1, exporter="torchscript", progress=False,
                                   export_options={"atol": 1e-12, "min_agreement": 1.0, "calibrate_method": "minmax"})
    why = r["left_out"]["onnx int8"]
    assert "It is left out" in why and "The parity images were random noise" in why and "went to int8 calibration" in why


def test_benchmark_of_a_class_folder_checks_int8_parity_on_real_images(tiny_model, tmp_path, monkeypatch):
    import transferkit.export.benchmark as bench_mod

    model_dir, data = tiny_model
    folder = data / "test"  # class folders, no train/ or test/: the user passes it as --calibration too
    monkeypatch.setattr(bench_mod, "_probe", lambda *a, **k: {"error": "not timed in this test"})
    r = bench_mod.benchmark_models(model_dir, folder, calibration=folder, work_dir=tmp_path / "b", batch_size=4, rounds=1,
                                   calls_per_round=1, exporter="torchscript", progress=False,
                                   export_options={"min_agreement": 0.0, "calibrate_method": "minmax"})
    images = json.loads((tmp_path / "b" / "onnx-int8" / "parity.json").read_text())["images"]
    assert isinstance(images, list) and len(images) == 7
    assert any("held back" in n for n in r["export_notes"]["onnx int8"])

    from transferkit.cli.app import app

    monkeypatch.setattr(bench_mod, "benchmark_models", lambda *a, **k: r)
    res = CliRunner().invoke(app, ["benchmark", str(model_dir), str(folder), "--batch-size", "4"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "note (onnx int8 export):" in res.output and "held back" in " ".join(res.output.split())


def test_parity_agreement_uses_the_decisions_predict_makes_not_an_arg_max():
    """int8 logits collapsed to [0, 0] agreed 100 % by arg-max (a tie goes to class 0, as did the reference), while the
    exported runtime, deciding P(positive) >= 0.5, labelled every such image the positive class."""
    from types import SimpleNamespace

    from transferkit.export.parity import compare_logits, runtime_decision

    reference = np.array([[2.0, -1.0]] * 5 + [[-1.0, 2.0]] * 4)
    collapsed = np.array([[0.0, 0.0]] * 5 + [[-1.0, 2.0]] * 4)
    by_argmax = compare_logits(reference, collapsed, stage="network", atol=None, min_agreement=0.95)
    assert by_argmax.top1_agreement == 1.0 and by_argmax.passed  # what the gate used to say
    config = SimpleNamespace(temperature=1.3, positive_index=1, threshold=0.5)
    report = compare_logits(reference, collapsed, stage="network", atol=None, min_agreement=0.95, decision=runtime_decision(config))
    assert report.top1_agreement == pytest.approx(4 / 9) and not report.passed
    # a threshold other than 0.5 moves decisions too: the gate follows it
    shifted = SimpleNamespace(temperature=None, positive_index=1, threshold=0.9)
    near = np.array([[0.0, 2.0]] * 9)  # P(positive) 0.88: negative at threshold 0.9
    assert compare_logits(reference[5:], near[5:], stage="s", atol=None, min_agreement=0.95,
                          decision=runtime_decision(shifted)).top1_agreement == 0.0


def tampered_copy(source: Path, dest: Path, /, **edits) -> Path:
    """A copy of the export folder ``source`` with fields of its export.json replaced (``preprocessing__input_size=...``
    for a nested one; a value of ``...`` deletes the field)."""
    import shutil

    shutil.copytree(source, dest)
    cfg = json.loads((dest / "export.json").read_text())
    for key, value in edits.items():
        *parents, leaf = key.split("__")
        target = cfg
        for p in parents:
            target = target[p]
        if value is ...:
            del target[leaf]
        else:
            target[leaf] = value
    (dest / "export.json").write_text(json.dumps(cfg))
    return dest


def test_export_json_threshold_temperature_and_classes_are_checked_when_it_loads(fp32_export, tiny_model, tmp_path):
    """export.json's threshold and num_classes were trusted: a threshold of -1 labelled every image positive, num_classes 2
    on a 3-class network failed in predict with `IndexError: list index out of range`. Now they are load-time errors that
    name the field and the value, as a model folder's config.json's are (transferkit.model.check_saved_scalars)."""
    from transferkit.runtime import ExportFolderError

    cases = [
        ({"threshold": -1}, "'threshold' is -1; it must be a number between 0 and 1"),
        ({"threshold": 1.5}, "'threshold' is 1.5; it must be a number between 0 and 1"),
        ({"threshold": float("nan")}, "'threshold' is nan; it must be a number between 0 and 1"),
        ({"threshold": "0.5"}, "'threshold' is '0.5'; it must be a number between 0 and 1"),
        ({"threshold": True}, "'threshold' is True; it must be a number between 0 and 1"),
        ({"temperature": float("inf")}, "'temperature' is inf; it must be a finite number above 0"),
        ({"temperature": 0}, "'temperature' is 0; it must be a finite number above 0"),
        ({"num_classes": 2}, "'num_classes' is 2 but 'id2label' has 3 entries"),
        ({"num_classes": 2.5}, "'num_classes' is 2.5; it must be a whole number"),
        ({"id2label": {"0": "cat", "1": "dog", "2": "cat"}}, r"'id2label' has \['cat'\] twice"),
    ]
    for i, (edits, message) in enumerate(cases):
        folder = tampered_copy(fp32_export, tmp_path / f"case{i}", **edits)
        with pytest.raises(ExportFolderError, match=message) as info:
            ExportedModel(folder)
        assert "export.json" in str(info.value) and "transferkit export" in str(info.value), edits
    # the untouched export still loads, and threshold 0 and 1 are thresholds
    for t in (0, 1):
        assert ExportedModel(tampered_copy(fp32_export, tmp_path / f"t{t}", threshold=t)).config.threshold == t


def _with_symbolic_output_width(model_file: Path) -> None:
    """Rewrite an exported graph so that its output width is unknown until it runs (a Compress that keeps every score):
    onnxruntime then reports the output shape as [batch, classes]."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(model_file))
    out = proto.graph.output[0]
    for node in proto.graph.node:
        node.output[:] = ["scores_raw" if o == out.name else o for o in node.output]
    proto.graph.initializer.append(numpy_helper.from_array(np.ones(len(CLASSES), bool), "keep_all"))
    proto.graph.node.append(helper.make_node("Compress", ["scores_raw", "keep_all"], [out.name], axis=1))
    width = out.type.tensor_type.shape.dim[1]
    width.Clear()
    width.dim_param = "classes"
    onnx.save(proto, str(model_file))


def test_export_json_classes_must_match_the_networks_outputs(fp32_export, tiny_model, tmp_path):
    """num_classes 2 (id2label to match) on a 3-class network failed in predict with `IndexError: list index out of range`
    and predict_proba gave 3 columns for 2 labels. The graph's output width is checked when the folder loads, or, when
    the graph leaves it symbolic, on the first prediction; the CLI says so in one error line."""
    from transferkit.runtime import ExportFolderError, read_image

    _, data = tiny_model
    files = sorted((data / "test").rglob("*.png"))[:3]
    for n in (2, 4):
        folder = tampered_copy(fp32_export, tmp_path / f"classes{n}", num_classes=n,
                               id2label={str(i): c for i, c in enumerate([*CLASSES, "emu"][:n])})
        with pytest.raises(ExportFolderError, match=f"export.json names {n} classes .* but its model.onnx gives 3 scores per input"):
            ExportedModel(folder)
    res = runner.invoke(app, ["predict", str(tmp_path / "classes2"), str(files[0])])
    assert res.exit_code == 1 and "Traceback" not in res.output and res.output.count("error:") == 1, res.output
    assert "names 2 classes" in " ".join(res.output.split())
    # a symbolic output width: unknown at load time, so the first prediction checks it
    symbolic = tampered_copy(fp32_export, tmp_path / "symbolic")
    _with_symbolic_output_width(symbolic / "model.onnx")
    assert [r["label"] for r in ExportedModel(symbolic).predict(files)] == [r["label"] for r in ExportedModel(fp32_export).predict(files)]
    two = tampered_copy(symbolic, tmp_path / "symbolic2", num_classes=2, id2label={"0": "cat", "1": "dog"})
    model = ExportedModel(two)  # loads: the graph does not say how many scores it gives
    with pytest.raises(ExportFolderError, match="export.json names 2 classes .* but its model.onnx gives 3 scores per input"):
        model.predict(files)
    with pytest.raises(ExportFolderError, match="gives 3 scores per input"):
        model.predict_proba(model.preprocessing.batch([read_image(files[0])]))


def test_export_json_input_and_output_must_match_the_graph(fp32_export, tiny_model, tmp_path):
    """An edited input_size, input_name or output_name failed on the first prediction with onnxruntime's words
    (`InvalidArgument: Got invalid dimensions for input: images`, `Required inputs (['images']) are missing`); export.json
    is compared with the graph's input and output when the folder loads, in predict and in benchmark alike."""
    from transferkit.export.benchmark import benchmark_models
    from transferkit.runtime import ExportFolderError

    _, data = tiny_model
    cases = {
        "size": ({"preprocessing__input_size": [3, 32, 32]},
                 r"preprocessing.input_size is \[3, 32, 32\] \(channels, height, width\), the graph's input 'images' has shape "
                 r"\(batch, 3, 64, 64\)"),
        "name": ({"input_name": "pixels"}, "input_name is 'pixels', the graph's input is named 'images'"),
        "output": ({"output_name": "scores"}, r"output_name is 'scores', the graph's outputs are \['logits'\]"),
    }
    good = sorted((data / "test").rglob("*.png"))[0]
    for name, (edits, message) in cases.items():
        folder = tampered_copy(fp32_export, tmp_path / name, **edits)
        with pytest.raises(ExportFolderError, match=message) as info:
            ExportedModel(folder)
        assert "export.json disagrees with its model.onnx" in str(info.value) and "transferkit export" in str(info.value)
        res = runner.invoke(app, ["predict", str(folder), str(good)])
        assert res.exit_code == 1 and "Traceback" not in res.output and res.output.count("error:") == 1, res.output
    with pytest.raises(ExportFolderError, match="input_name is 'pixels'"):
        benchmark_models(tmp_path / "name", data, work_dir=tmp_path / "bench", rounds=1, calls_per_round=1, progress=False)
    res = runner.invoke(app, ["benchmark", str(tmp_path / "size"), str(data), "--out", str(tmp_path / "bench2"), "--quiet"])
    assert res.exit_code == 1 and "Traceback" not in res.output and res.output.count("error:") == 1, res.output
    assert "preprocessing.input_size is [3, 32, 32] (channels, height, width), the graph's input 'images' has shape (batch, 3, 64, 64)" \
        in " ".join(res.output.split())  # all of it: rich, which prints it, takes [batch, ...] for markup


def test_a_damaged_model_file_is_a_clear_error(fp32_export, tiny_model, tmp_path):
    """A garbage, truncated or empty model.onnx raised onnxruntime's `InvalidProtobuf: [ONNXRuntimeError] : 7 ...
    Protobuf parsing failed`; it is an ExportFolderError that says the file is damaged and to copy or export it again,
    and that it changed since the export when export.json's sha256 says so."""
    from transferkit.runtime import ExportFolderError

    _, data = tiny_model
    whole = (fp32_export / "model.onnx").read_bytes()
    for name, content in {"garbage": b"this is not an onnx file", "truncated": whole[: len(whole) // 3], "empty": b""}.items():
        folder = tampered_copy(fp32_export, tmp_path / name)
        (folder / "model.onnx").write_bytes(content)
        with pytest.raises(ExportFolderError, match="its model.onnx is damaged: onnxruntime cannot load it") as info:
            ExportedModel(folder)
        message = str(info.value)
        assert "sha256 is not the one export.json recorded" in message and "transferkit export" in message, message
        assert "[ONNXRuntimeError]" not in message
    # an export.json without the recorded sha256 (an older export): still "damaged", from onnxruntime's own verdict
    older = tampered_copy(tmp_path / "garbage", tmp_path / "older", export=...)
    with pytest.raises(ExportFolderError, match="its model.onnx is damaged") as info:
        ExportedModel(older)
    assert "sha256" not in str(info.value)
    res = runner.invoke(app, ["predict", str(tmp_path / "truncated"), str(sorted((data / "test").rglob("*.png"))[0])])
    assert res.exit_code == 1 and "Traceback" not in res.output and res.output.count("error:") == 1, res.output
    assert "model.onnx is damaged" in " ".join(res.output.split())
    # a well-formed file onnxruntime cannot run (here an operator it does not know) is not called damaged
    import onnx

    unknown_op = tampered_copy(fp32_export, tmp_path / "unknown-op", export=...)
    proto = onnx.load(str(unknown_op / "model.onnx"))
    proto.graph.node[0].op_type = "NoSuchOperator"
    onnx.save(proto, str(unknown_op / "model.onnx"))
    with pytest.raises(ExportFolderError, match=r"onnxruntime \S+ cannot load its model.onnx \(.*NoSuchOperator") as info:
        ExportedModel(unknown_op)
    assert "is damaged" not in str(info.value) and "transferkit export" in str(info.value)
    # a TorchScript export whose file torch cannot read
    with pytest.raises(ExportFolderError, match="its model.onnx is damaged: torch cannot load it"):
        ExportedModel(tampered_copy(fp32_export, tmp_path / "ts", runtime="torchscript"))
