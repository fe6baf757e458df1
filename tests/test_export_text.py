"""Text models exported to ONNX (fp32, dynamic int8) with their tokenizer; torch-free predict; CLI; benchmark."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from test_text_model import NEG, POS, save_tiny_bert, sentiment_rows
from transferkit.cli.app import app
from transferkit.export import ParityError, export_model
from transferkit.runtime import ExportedModel, ExportFolderError, TextInputError, is_export_folder

MAX_LENGTH = 16  # short, so the long parity texts are truncated
TEXTS = ["good phone", "the battery was awful", "great great great", "it broke and was returned", "the case is very nice",
         "poor sound, worst phone " * 6, "Excellent!! Happy with it 👍", "not very good"]
runner = CliRunner()


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> tuple[Path, Path]:
    """A saved tiny TextClassifier (2-layer BERT, hidden 32; head fitted by ridge regression) and a labelled CSV."""
    from transferkit.backbones.text import load_text_backbone
    from transferkit.heads import DenseHead
    from transferkit.text import TextClassifier

    root = tmp_path_factory.mktemp("text-export")
    backbone = load_text_backbone(str(save_tiny_bert(root / "tiny-bert")), max_length=MAX_LENGTH)
    rows = sentiment_rows(20)
    data = root / "reviews.csv"
    with open(data, "w", newline="") as f:
        csv.writer(f).writerows([("review", "sentiment"), *rows])
    torch.manual_seed(0)
    model = TextClassifier(backbone, DenseHead(backbone.num_features, 2), ["neg", "pos"], positive="pos").eval()
    with torch.no_grad():  # separate the classes on the random encoder's features, so labels are confident and meaningful
        texts = [t for t, _ in rows] + [" ".join(POS), " ".join(NEG)]
        batch = backbone.collate(backbone.tokenize(texts))
        feats = backbone(**batch)
        y = torch.tensor([lab == "pos" for _, lab in rows] + [True, False]).long()
        a = torch.cat([feats, torch.ones(len(feats), 1)], 1)
        target = torch.nn.functional.one_hot(y, 2).float() * 8 - 4
        sol = torch.linalg.solve(a.T @ a + 0.1 * torch.eye(a.shape[1]), a.T @ target)  # ridge: moderate weights, logits ~ ±4
        linear = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)][-1]
        linear.weight.copy_(sol[:-1].T)
        linear.bias.copy_(sol[-1])
    model.temperature = 1.5  # as if calibrated: exported with the model, applied by the runtime as by TextClassifier.predict
    return model.save_pretrained(root / "model"), data


@pytest.fixture(scope="module")
def exports(text_model, tmp_path_factory) -> dict[str, Path]:
    model_dir, data = text_model
    root = tmp_path_factory.mktemp("text-exports")
    fp32 = export_model(model_dir, root / "fp32", parity_data=data, exporter="torchscript").directory
    int8 = export_model(model_dir, root / "int8", quantize="int8", parity_data=data, onnx_fp32=fp32 / "model.onnx").directory
    return {"fp32": fp32, "int8": int8}


def test_export_folder_holds_network_tokenizer_and_config(exports):
    for precision, folder in exports.items():
        assert is_export_folder(folder)
        names = {p.name for p in folder.iterdir()}
        assert {"model.onnx", "tokenizer.json", "export.json", "parity.json", "labels.txt"} <= names
        cfg = json.loads((folder / "export.json").read_text())
        assert cfg["modality"] == "text" and cfg["precision"] == precision and cfg["runtime"] == "onnx"
        assert cfg["id2label"] == {"0": "neg", "1": "pos"} and cfg["positive_label"] == "pos" and cfg["threshold"] == 0.5
        assert cfg["temperature"] == 1.5
        assert cfg["preprocessing"]["max_length"] == MAX_LENGTH and cfg["preprocessing"]["pad_token"] == "[PAD]"
        assert cfg["input_names"] == ["input_ids", "attention_mask", "token_type_ids"]  # BERT's tokenizer gives segment ids
        assert cfg["parity"]["passed"] and cfg["parity"]["tokenization"]["num_identical"] == cfg["parity"]["num_texts"]
    import onnx

    graph = onnx.load(str(exports["fp32"] / "model.onnx")).graph
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {n: ["batch", "sequence"] for n in ("input_ids", "attention_mask", "token_type_ids")}
    int8 = json.loads((exports["int8"] / "export.json").read_text())
    assert int8["quantization"]["method"] == "dynamic" and int8["quantization"]["weights"] == "int8"
    assert (exports["int8"] / "model.onnx").stat().st_size < (exports["fp32"] / "model.onnx").stat().st_size


def test_parity_reports_fp32_exact_and_int8_by_agreement(exports):
    fp32 = json.loads((exports["fp32"] / "parity.json").read_text())
    assert [r["stage"] for r in fp32["reports"]] == ["network", "pipeline"]
    for r in fp32["reports"]:
        assert r["passed"] and r["max_abs_logit_diff"] <= 1e-4 and r["top1_agreement"] == 1.0 and r["unit"] == "texts"
    assert fp32["num_texts"] > 32  # the sampled file texts + the built-in ones (truncation, accents, emoji, scripts)
    int8 = json.loads((exports["int8"] / "parity.json").read_text())
    assert all(r["passed"] and r["top1_agreement"] >= 0.95 and r["atol"] is None for r in int8["reports"])


def test_exported_model_predicts_like_pytorch(text_model, exports):
    from transferkit.model import load

    model_dir, _ = text_model
    torch_results = load(model_dir).predict(TEXTS)
    for precision, folder in exports.items():
        model = ExportedModel(folder)
        assert model.is_text and model.classes == ["neg", "pos"]
        results = model.predict(TEXTS)
        assert [r["label"] for r in results] == [r["label"] for r in torch_results], precision
        assert [r["text"] for r in results] == TEXTS
        if precision == "fp32":
            got = np.array([[r["probabilities"][c] for c in ("neg", "pos")] for r in results])
            want = np.array([[r["probabilities"][c] for c in ("neg", "pos")] for r in torch_results])
            np.testing.assert_allclose(got, want, atol=1e-5)
    # batching (grouped by length) and padding do not change a text's result
    model = ExportedModel(exports["fp32"])
    np.testing.assert_allclose(model.predict_proba(TEXTS, batch_size=3), model.predict_proba(TEXTS), atol=1e-6)
    batch = model.encode(TEXTS[:2])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"} and batch["input_ids"].dtype == np.int64
    assert model.encode([TEXTS[5]])["input_ids"].shape == (1, MAX_LENGTH)  # truncated to max_length


def test_bad_input_gets_clear_errors(exports, tmp_path):
    model = ExportedModel(exports["fp32"])
    results = model.predict(["good phone", "", "   "])
    assert results[0]["label"] in ("neg", "pos") and results[1] == {"text": "", "error": "empty text"} and "error" in results[2]
    assert model.predict([]) == []
    with pytest.raises(TextInputError, match="wrap it in a list"):
        model.predict("good phone")
    with pytest.raises(TextInputError, match="this is a text model"):
        model.predict([Path("review.txt")])
    with pytest.raises(TextInputError, match="tokenizer's arrays"):
        model.logits(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(ExportFolderError, match="export.json is missing"):
        ExportedModel(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("export.json", "model.onnx"):
        (broken / name).write_bytes((exports["fp32"] / name).read_bytes())
    with pytest.raises(ExportFolderError, match="tokenizer.json"):
        ExportedModel(broken)


def test_failed_parity_leaves_no_loadable_export(text_model, tmp_path):
    model_dir, _ = text_model
    with pytest.raises(ParityError, match="does not match PyTorch"):
        export_model(model_dir, tmp_path / "e", exporter="torchscript", atol=1e-12)  # no export is that exact
    assert (tmp_path / "e" / "parity.json").is_file() and not is_export_folder(tmp_path / "e")
    with pytest.raises(ValueError, match="ONNX only"):
        export_model(model_dir, tmp_path / "ts", format="torchscript")


def test_runtime_predicts_text_without_torch_or_transformers(exports, tmp_path):
    (tmp_path / "texts.txt").write_text("good phone\nthe battery was awful\n")
    code = textwrap.dedent(f"""
        import json, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchvision", "timm", "sklearn", "safetensors", "transformers"):
                    raise ImportError(f"{{name}} is blocked in this test")
        sys.meta_path.insert(0, Block())
        from transferkit.runtime import ExportedModel
        results = ExportedModel({str(exports['int8'])!r}).predict(["good phone", "the battery was awful"])
        from typer.testing import CliRunner  # the CLI's --file reader is torch-free too
        from transferkit.cli.app import app
        cli = CliRunner().invoke(app, ["predict", {str(exports['int8'])!r}, "--file", {str(tmp_path / 'texts.txt')!r}, "--json"])
        assert cli.exit_code == 0, cli.output
        assert [r["label"] for r in json.loads(cli.stdout)] == [r["label"] for r in results]
        print(json.dumps({{"labels": [r["label"] for r in results],
                          "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert all(label in ("neg", "pos") for label in out["labels"]) and out["loaded"] == []


def test_cli_predict_and_export_on_a_text_model(text_model, exports, tmp_path):
    from transferkit.model import load

    model_dir, data = text_model
    want = [r["label"] for r in load(model_dir).predict(TEXTS[:3])]
    res = runner.invoke(app, ["predict", str(exports["fp32"]), *TEXTS[:3], "--json"])
    assert res.exit_code == 0, res.output
    assert [r["label"] for r in json.loads(res.stdout)] == want
    # the same input handling as predict-text: --file and stdin
    (tmp_path / "texts.txt").write_text("\n".join(TEXTS[:3]) + "\n")
    res = runner.invoke(app, ["predict", str(exports["int8"]), "--file", str(tmp_path / "texts.txt"), "--json"])
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 3, res.output
    res = runner.invoke(app, ["predict", str(exports["fp32"]), "-", "--json"], input="\n".join(TEXTS[:3]) + "\n")
    assert res.exit_code == 0 and [r["label"] for r in json.loads(res.stdout)] == want, res.output
    res = runner.invoke(app, ["predict-text", str(exports["fp32"]), TEXTS[0]])
    assert res.exit_code == 0 and want[0] in res.output, res.output
    # bad input: an empty text is a per-text error (exit 1); a missing folder one clean error line
    res = runner.invoke(app, ["predict", str(exports["fp32"]), "good phone", "", "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)[1]["error"] == "empty text" and "Traceback" not in res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "nope"), "good phone"])
    assert res.exit_code == 1 and "is not a folder" in " ".join(res.output.split()) and "Traceback" not in res.output
    # export from the CLI: the panel reports tokenizer parity and how to predict
    res = runner.invoke(app, ["export", str(model_dir), "--out", str(tmp_path / "e"), "--parity-data", str(data), "--num-parity", "8",
                              "--exporter", "torchscript", "--quiet"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "texts identical" in text and "top-1 agreement 100.0%" in text and "tokenizer.json" in text


@pytest.mark.slow
def test_benchmark_text_export_against_pytorch(text_model, exports, tmp_path, monkeypatch):
    from transferkit.export import benchmark

    real_probe = benchmark._probe
    # a fresh process that imports torch + transformers takes 5-25 s on a loaded test machine: the PyTorch probe
    # is left to bench/export_text.py; the ONNX probes (torch-free processes) run for real
    monkeypatch.setattr(benchmark, "_probe", lambda kind, *a: {"error": "skipped in tests"} if kind == "pytorch" else real_probe(kind, *a))
    _, data = text_model
    # an export folder is compared with the PyTorch model it names (a model folder would be exported to fp32 + int8 first)
    r = benchmark.benchmark_models(exports["int8"], data, work_dir=tmp_path, batch_size=4, rounds=1, calls_per_round=2, progress=False)
    v = r["variants"]
    assert list(v) == ["pytorch fp32", "onnx int8"] and r["modality"] == "text" and r["num_test_texts"] == 40
    assert r["tokenization_identical_fraction"] == 1.0 and r["latency"]["batch1_text_tokens"] > 2
    assert v["pytorch fp32"]["test_accuracy"] > 0.9 and v["onnx int8"]["top1_agreement_with_pytorch"] >= 0.95
    assert v["pytorch fp32"]["probe_error"] == "skipped in tests"
    row = v["onnx int8"]
    assert row["latency_b1_num_calls"] == 2 and 0 < row["latency_b1_p50_ms"] <= row["latency_b1_p95_ms"], row.get("probe_error")
    assert row["throughput_b4_texts_s"] > 0 and row["peak_rss_mib"] > 0 and row["torch_imported"] is False


def _text_run(model_dir: Path, data: Path, dest: Path, *, num_train: int, num_val: int, record: bool = True,
              shout: bool = False) -> Path:
    """A fit-text run folder around the tiny text model whose RUN/splits.json says it trained on the first ``num_train``
    and validated on the next ``num_val`` rows of ``data`` (as fit-text records them: the normalised text's hash).
    ``shout``: the record holds upper-cased copies with '!!', which count as the same texts."""
    import shutil

    from transferkit.data.text import normalized_text_sha256, read_text_table

    shutil.copytree(model_dir, dest / "model")
    (dest / "config.json").write_text(json.dumps({"fit_text": {"data": str(data)}}))
    if record:
        rows = read_text_table(data, classes=["neg", "pos"]).records
        entry = [{"path": r.where, "sha256": normalized_text_sha256(r.text.upper() + "!!" if shout else r.text)} for r in rows]
        splits = {"train": entry[:num_train], "val": entry[num_train : num_train + num_val], "test": entry[num_train + num_val :]}
        (dest / "splits.json").write_text(json.dumps({"modality": "text", "root": str(data), "splits": splits}))
    return dest


def _bench_text(run: Path, work: Path, **kw):
    from transferkit.export import benchmark

    return benchmark.benchmark_models(run, Path(kw.pop("data")), work_dir=work, batch_size=4, rounds=1, calls_per_round=1,
                                      exporter="torchscript", progress=False, **kw)


def test_benchmark_text_accuracy_leaves_out_the_texts_the_run_trained_on(text_model, tmp_path, monkeypatch):
    """benchmark RUN FILE on a text run measured accuracy on every row of FILE, the run's training texts among them,
    while evaluate-text RUN FILE leaves them out: the two reported different accuracies for the same model and file."""
    from transferkit.export import benchmark
    from transferkit.text import evaluate_text

    monkeypatch.setattr(benchmark, "_probe", lambda *a, **k: {"error": "not timed in this test"})  # accuracy only
    model_dir, data = text_model
    run = _text_run(model_dir, data, tmp_path / "run", num_train=20, num_val=6, shout=True)  # near-copies count too
    r = _bench_text(run, tmp_path / "b", data=data)
    assert r["excluded_training_texts"] == 26 and r["num_test_texts"] == r["num_test_samples"] == 40 - 26
    assert "training_record" not in r
    metrics = evaluate_text(run, data)
    assert metrics["num_samples"] == 14 and metrics["excluded_training_texts"] == 26
    assert r["variants"]["pytorch fp32"]["test_accuracy"] == pytest.approx(metrics["accuracy"])

    every = _bench_text(run, tmp_path / "c", data=data, include_training_texts=True)
    assert every["excluded_training_texts"] == 0 and every["num_test_texts"] == 40
    assert _bench_text(run, tmp_path / "d", data=data, include_training_images=True)["num_test_texts"] == 40  # the CLI's one flag


def test_benchmark_text_cli_says_what_it_left_out_and_when_it_cannot(text_model, tmp_path, monkeypatch):
    from transferkit.export import benchmark

    model_dir, data = text_model
    run = _text_run(model_dir, data, tmp_path / "run", num_train=0, num_val=0, record=False)  # a run without splits.json
    monkeypatch.setattr(benchmark, "_probe", lambda *a, **k: {"error": "not timed in this test"})
    r = _bench_text(run, tmp_path / "b", data=data)
    assert r["excluded_training_texts"] == 0 and "has no splits.json" in r["training_record"] and "texts" in r["training_record"]
    assert r["num_test_texts"] == 40

    calls = []
    monkeypatch.setattr(benchmark, "benchmark_models",
                        lambda *a, **k: calls.append(k) or {**r, "training_record": None, "excluded_training_texts": 26, "num_test_samples": 14})
    res = runner.invoke(app, ["benchmark", str(run), str(data), "--batch-size", "4"], env={"COLUMNS": "200"})
    out = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "accuracy left out 26 text(s) this run trained on" in out and "measured on the other 14" in out
    assert calls[-1]["include_training_texts"] is False
    for flag in ("--include-training-texts", "--include-training-images"):
        assert runner.invoke(app, ["benchmark", str(run), str(data), "--batch-size", "4", flag]).exit_code == 0
        assert calls[-1]["include_training_texts"] is True and calls[-1]["include_training_images"] is True


def test_benchmark_says_how_many_rows_it_skipped_as_evaluate_does(text_model, tmp_path, monkeypatch):
    # the title said "30 test texts" and nothing more: 2 rows with labels the model does not know were in benchmark.json only
    from transferkit.export import benchmark

    model_dir, data = text_model
    run = _text_run(model_dir, data, tmp_path / "run", num_train=0, num_val=0, record=False)
    extra = tmp_path / "with_unknown.csv"
    extra.write_text(data.read_text() + "so-so phone,neutral\nit is a phone,2\n")
    monkeypatch.setattr(benchmark, "_probe", lambda *a, **k: {"error": "not timed in this test"})
    r = _bench_text(run, tmp_path / "b", data=extra)
    assert r["num_skipped"] == 2 and sum(r["skipped_by_reason"].values()) == 2 and r["num_test_samples"] == 40
    monkeypatch.setattr(benchmark, "benchmark_models", lambda *a, **k: r)
    res = runner.invoke(app, ["benchmark", str(run), str(extra), "--batch-size", "4"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "skipped 2 row(s) of" in " ".join(res.output.split()) and "accuracy is on the other 40" in " ".join(res.output.split())


def test_benchmark_text_on_training_texts_only_is_a_clear_error_before_exporting(text_model, tmp_path, monkeypatch):
    from transferkit.export.benchmark import benchmark_models
    from transferkit.errors import DataError

    model_dir, data = text_model
    run = _text_run(model_dir, data, tmp_path / "run", num_train=34, num_val=6)
    called = []
    monkeypatch.setattr("transferkit.export.export_model", lambda *a, **k: called.append(a))
    with pytest.raises(DataError, match="every text .* was used to train this run.*--include-training-texts"):
        benchmark_models(run, data, work_dir=tmp_path / "b", progress=False)
    assert called == []
    res = runner.invoke(app, ["benchmark", str(run), str(data), "-q"])
    assert res.exit_code == 1 and "include-training-texts" in res.output and "Traceback" not in res.output


def test_binary_export_with_an_edited_threshold_does_not_load(exports, tmp_path):
    """A binary export whose export.json says threshold -1 labelled every text positive (P = 0.0005 was >= -1); it is a
    load-time error naming the field and the value, also from the CLI."""
    from test_export import tampered_copy

    assert {r["label"] for r in ExportedModel(exports["fp32"]).predict(TEXTS)} == {"neg", "pos"}
    for bad in (-1, 2, "0.7"):
        folder = tampered_copy(exports["fp32"], tmp_path / f"t{bad}", threshold=bad)
        with pytest.raises(ExportFolderError, match=f"'threshold' is {bad!r}; it must be a number between 0 and 1"):
            ExportedModel(folder)
        res = runner.invoke(app, ["predict", str(folder), "good phone"])
        assert res.exit_code == 1 and "Traceback" not in res.output and res.output.count("error:") == 1, res.output
        assert "'threshold' is" in " ".join(res.output.split())


def test_text_export_json_must_match_the_graph(exports, tmp_path):
    """A text export whose export.json lists other network inputs than the graph's, or more classes than its scores,
    failed on the first prediction with onnxruntime's words (or an IndexError); both are load-time errors now."""
    from test_export import tampered_copy

    cfg = json.loads((exports["fp32"] / "export.json").read_text())
    names = cfg["preprocessing"]["input_names"]
    other = [n for n in names if n != "token_type_ids"] if "token_type_ids" in names else [*names, "token_type_ids"]
    folder = tampered_copy(exports["int8"], tmp_path / "inputs", preprocessing__input_names=other)
    with pytest.raises(ExportFolderError, match=r"preprocessing.input_names is \[.*\], the graph's inputs are \[.*\]") as info:
        ExportedModel(folder)
    assert "export.json disagrees with its model.onnx" in str(info.value)
    folder = tampered_copy(exports["int8"], tmp_path / "classes", num_classes=3, id2label={"0": "neg", "1": "pos", "2": "meh"})
    with pytest.raises(ExportFolderError, match=r"export.json names 3 classes .* but its model.onnx gives 2 scores per input"):
        ExportedModel(folder)
    res = runner.invoke(app, ["predict", str(folder), "good phone"])
    assert res.exit_code == 1 and "Traceback" not in res.output and res.output.count("error:") == 1, res.output
