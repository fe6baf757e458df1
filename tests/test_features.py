"""Feature extraction and the on-disk feature cache."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conftest import TINY, _build_tiny, write_class_image
from transferkit.backbones import load_backbone
from transferkit.data import load_image_folder
from transferkit.features import ExtractionStats, FeatureCache, default_cache_dir, extract_features, feature_key

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture
def records(image_folder):
    splits = load_image_folder(image_folder, progress=False)
    return splits.train + splits.val + splits.test


@pytest.fixture
def backbone(tiny_weights):
    return load_backbone(TINY, weights=str(tiny_weights))


def _extract(backbone, records, cache):
    stats = ExtractionStats()
    feats = extract_features(backbone, records, cache=cache, batch_size=8, progress=False, stats=stats)
    return feats, stats


def _shards(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("shard-*.safetensors"))


def test_second_extraction_is_served_from_the_cache(backbone, records, tmp_path):
    cache_dir = tmp_path / "cache"
    first, s1 = _extract(backbone, records, FeatureCache(cache_dir))
    assert (s1.num_total, s1.num_cached, s1.num_computed) == (len(records), 0, len(records))
    assert first.shape == (len(records), backbone.num_features) and first.dtype == np.float32
    assert len(_shards(cache_dir)) == 1
    meta = json.loads(next(cache_dir.rglob("meta.json")).read_text())
    assert meta["backbone"] == TINY and meta["weights"]["sha256"] == backbone.weights_record["sha256"]

    # a new cache object reads the vectors back from disk; a different order is honoured
    reordered = records[::-1]
    second, s2 = _extract(backbone, reordered, FeatureCache(cache_dir))
    assert (s2.num_cached, s2.num_computed) == (len(records), 0)
    np.testing.assert_array_equal(second, first[::-1])
    assert len(_shards(cache_dir)) == 1  # nothing new written

    # cached vectors are the vectors the backbone computes
    uncached, s3 = _extract(backbone, records, None)
    assert s3.num_computed == len(records)
    np.testing.assert_allclose(uncached, first, rtol=1e-5, atol=1e-6)


def test_partial_hit_computes_only_the_missing(backbone, records, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    half = records[: len(records) // 2]
    _extract(backbone, half, cache)
    feats, stats = _extract(backbone, records, cache)
    assert (stats.num_cached, stats.num_computed) == (len(half), len(records) - len(half))
    reference, _ = _extract(backbone, records, None)
    np.testing.assert_allclose(feats, reference, rtol=1e-5, atol=1e-6)


def test_changed_file_content_is_recomputed(backbone, image_folder, tmp_path):
    cache_dir = tmp_path / "cache"
    splits = load_image_folder(image_folder, progress=False)
    before, _ = _extract(backbone, splits.test, FeatureCache(cache_dir))
    changed = splits.test[0].path
    write_class_image(changed, 1 - splits.test[0].label, np.random.default_rng(99))  # same name, new content
    rescanned = load_image_folder(image_folder, progress=False).test
    assert rescanned[0].path == changed and rescanned[0].sha256 != splits.test[0].sha256
    after, stats = _extract(backbone, rescanned, FeatureCache(cache_dir))
    assert (stats.num_cached, stats.num_computed) == (len(rescanned) - 1, 1)
    assert not np.allclose(after[0], before[0])
    np.testing.assert_array_equal(after[1:], before[1:])


def test_renamed_file_with_same_content_is_a_hit(backbone, records, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    first, _ = _extract(backbone, records[:4], cache)
    moved = tmp_path / "elsewhere" / "renamed.png"
    moved.parent.mkdir()
    shutil.copy(records[0].path, moved)
    again = [type(records[0])(moved, records[0].label, records[0].sha256)]
    feats, stats = _extract(backbone, again, cache)
    assert stats.num_cached == 1 and stats.num_computed == 0
    np.testing.assert_array_equal(feats[0], first[0])


def test_different_weights_are_recomputed(backbone, records, tmp_path):
    cache_dir = tmp_path / "cache"
    first, _ = _extract(backbone, records, FeatureCache(cache_dir))
    torch.manual_seed(7)
    other_file = tmp_path / "other.safetensors"
    save_file(_build_tiny().state_dict(), str(other_file))
    other = load_backbone(TINY, weights=str(other_file))
    assert other.weights_record["sha256"] != backbone.weights_record["sha256"]
    feats, stats = _extract(other, records, FeatureCache(cache_dir))
    assert (stats.num_cached, stats.num_computed) == (0, len(records))
    assert not np.allclose(feats, first)
    assert len([d for d in cache_dir.iterdir() if d.is_dir()]) == 2  # one feature space per weights


def test_random_init_backbone_is_never_cached(records, tmp_path):
    cache_dir = tmp_path / "cache"
    torch.manual_seed(0)
    random_init = load_backbone(TINY, weights="none")
    for _ in range(2):
        _, stats = _extract(random_init, records, FeatureCache(cache_dir))
        assert (stats.num_cached, stats.num_computed) == (0, len(records))
    assert _shards(cache_dir) == []
    assert len(FeatureCache(cache_dir)) == 0


def test_identical_files_are_computed_once(backbone, records, tmp_path):
    dup = tmp_path / "dup.png"
    shutil.copy(records[0].path, dup)
    with_dup = records[:3] + [type(records[0])(dup, records[0].label, records[0].sha256)]
    feats, stats = _extract(backbone, with_dup, FeatureCache(tmp_path / "cache"))
    assert stats.num_computed == 3 and stats.num_total == 4
    np.testing.assert_array_equal(feats[0], feats[3])


def test_a_damaged_shard_is_ignored_and_recomputed(backbone, records, tmp_path):
    cache_dir = tmp_path / "cache"
    first, _ = _extract(backbone, records, FeatureCache(cache_dir))
    _shards(cache_dir)[0].write_bytes(b"not a safetensors file")
    feats, stats = _extract(backbone, records, FeatureCache(cache_dir))
    assert stats.num_computed == len(records)
    np.testing.assert_allclose(feats, first, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("foreign", ["other_key", "other_width", "nan"])
def test_a_shard_that_cannot_be_trusted_is_ignored_and_recomputed(backbone, records, tmp_path, foreign):
    # each used to be served: another feature space's shard copied in gave a model trained on the wrong features (test
    # accuracy 1.000 in metrics.json, 0.750 when the saved model was evaluated); other widths and NaN gave tracebacks
    from safetensors.numpy import save_file as save_numpy

    cache_dir = tmp_path / "cache"
    first, _ = _extract(backbone, records, FeatureCache(cache_dir))
    shard = _shards(cache_dir)[0]
    hashes = [r.sha256 for r in dict((r.sha256, r) for r in records).values()]
    rows = {"other_key": np.full((len(hashes), backbone.num_features), 7.0, np.float32),
            "other_width": np.full((len(hashes), backbone.num_features + 32), 7.0, np.float32),
            "nan": np.full((len(hashes), backbone.num_features), np.nan, np.float32)}[foreign]
    key = "another-feature-space" if foreign == "other_key" else shard.parent.name
    shard.unlink()
    save_numpy({"features": rows}, str(shard.parent / "shard-zzzz.safetensors"), metadata={"hashes": json.dumps(hashes), "key": key})
    feats, stats = _extract(backbone, records, FeatureCache(cache_dir))
    assert stats.num_computed == len(records)
    np.testing.assert_allclose(feats, first, rtol=1e-5, atol=1e-6)


def test_untrusted_shards_and_dead_writers_tmp_files_are_deleted_and_counted(backbone, records, tmp_path, capsys):
    # they used to stay on disk for ever: ignored at every read, a damaged cache never shrank or healed
    cache_dir = tmp_path / "cache"
    _extract(backbone, records, FeatureCache(cache_dir))
    shard = _shards(cache_dir)[0]
    shard.write_bytes(b"not a safetensors file")
    dead, live = shard.parent / "shard-dead.safetensors.tmp", shard.parent / "shard-live.safetensors.tmp"
    dead.write_bytes(b"half"), live.write_bytes(b"half")
    old = time.time() - 2 * 3600
    os.utime(dead, (old, old))
    cache = FeatureCache(cache_dir)
    _, stats = _extract(backbone, records, cache)
    assert stats.num_computed == len(records)
    assert not shard.exists() and not dead.exists() and live.exists()  # a writer may still be filling the young one
    assert cache.removed_ == {"damaged": 1, "stale": 1}
    assert "removed 1 damaged or misplaced shard(s)" in " ".join(capsys.readouterr().err.split())
    assert len(_shards(cache_dir)) == 1  # the recomputed vectors, in a new shard


def test_a_read_only_cache_deletes_nothing(backbone, records, tmp_path):
    cache_dir = tmp_path / "cache"
    _extract(backbone, records, FeatureCache(cache_dir))
    shard = _shards(cache_dir)[0]
    shard.write_bytes(b"not a safetensors file")
    reader = FeatureCache(cache_dir, read_only=True)
    assert reader.get(shard.parent.name, [r.sha256 for r in records]) == {}
    assert shard.exists() and reader.removed_ == {"damaged": 0, "stale": 0}


def test_spaces_lists_each_feature_space_and_remove_frees_it(backbone, records, tmp_path):
    cache_dir = tmp_path / "cache"
    cache = FeatureCache(cache_dir)
    _extract(backbone, records, cache)
    (row,) = cache.spaces()
    unique = len({r.sha256 for r in records})
    assert row["backbone"] == TINY and row["num_vectors"] == unique and row["num_shards"] == 1
    assert row["bytes"] == sum(f.stat().st_size for f in (cache_dir / row["key"]).iterdir())
    assert row["bytes"] > unique * backbone.num_features * 4  # the float32 vectors themselves
    assert cache.remove(row["key"]) == row["bytes"] and cache.spaces() == []
    with pytest.raises(KeyError):
        cache.remove("../" + cache_dir.name)  # only folders directly inside the cache
    # rank keeps its random-init controls beside the feature spaces and tells the user to fit with that file: `cache clear`
    # deleted it, and `cache info` listed it as a feature space of '?'
    controls = cache_dir / "random-init"
    controls.mkdir()
    (controls / "mobilenet_v2-seed0.safetensors").write_bytes(b"weights")
    assert cache.spaces() == [] and len(cache) == 0
    with pytest.raises(KeyError):
        cache.remove("random-init")
    assert (controls / "mobilenet_v2-seed0.safetensors").is_file()
    assert cache_dir.is_dir()
    _, stats = _extract(backbone, records, cache)
    assert stats.num_computed == unique  # computed again, not served from memory


def test_feature_key_depends_on_backbone_weights_and_preprocessing():
    cfg = {"input_size": [3, 64, 64], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear", "crop_pct": 1.0}
    base = feature_key("a", "sha1", cfg)
    assert base == feature_key("a", "sha1", dict(reversed(list(cfg.items()))))  # stable
    assert base != feature_key("b", "sha1", cfg)
    assert base != feature_key("a", "sha2", cfg)
    assert base != feature_key("a", "sha1", {**cfg, "input_size": [3, 96, 96]})
    assert base != feature_key("a", "sha1", {**cfg, "interpolation": "bicubic"})


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "tk"))
    assert default_cache_dir() == tmp_path / "tk" / "features"
    monkeypatch.delenv("TRANSFERKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "transferkit" / "features"
    assert FeatureCache().cache_dir == default_cache_dir()
    assert os.environ.get("TRANSFERKIT_CACHE") is None


def test_a_read_only_cache_reads_shards_but_writes_none(tmp_path):
    """Under `accelerate launch` the non-main processes open the cache read-only: one process writes each vector."""
    writer = FeatureCache(tmp_path / "c")
    writer.put("k", ["a", "b"], np.ones((2, 3), np.float32))
    reader = FeatureCache(tmp_path / "c", read_only=True)
    assert set(reader.get("k", ["a", "b", "c"])) == {"a", "b"}
    reader.put("k", ["c"], np.full((1, 3), 2.0, np.float32))
    assert set(reader.get("k", ["c"])) == {"c"}  # kept in memory for this process
    assert len(list((tmp_path / "c" / "k").glob("shard-*"))) == 1 and "c" not in FeatureCache(tmp_path / "c").get("k", ["c"])


def test_a_fine_tuned_backbone_is_never_served_the_weight_files_features(image_folder, tiny_weights, tmp_path):
    """fit(strategy="finetune") caches the pretrained file's features in stage one; the fine-tuned backbone it saves
    starts from the same file (same sha256), but its features are its own."""
    import transferkit as tk
    from transferkit.config import DataConfig, FinetuneConfig, FitConfig, HeadConfig

    cfg = FitConfig(data=DataConfig(root=image_folder), backbone=TINY, weights=str(tiny_weights), strategy="finetune",
                    head=HeadConfig(hidden_dim=0), finetune=FinetuneConfig(epochs=1, batch_size=8, lr=1e-2, wise_alpha=1.0))
    run = tk.fit(config=cfg, out=tmp_path / "run", progress=False, report=False)
    assert run.metrics["training"]["chosen"] == "finetune"
    assert run.model.backbone.weights_record["fine_tuned"] is True
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["backbone"]["weights"]
    assert saved["fine_tuned"] is True and saved["sha256"] == load_backbone(TINY, weights=str(tiny_weights)).weights_record["sha256"]

    loaded = tk.load(tmp_path / "run")
    records = run.splits.test
    cached_before = len(FeatureCache())
    assert cached_before > 0  # stage one cached the file's features of these images
    feats, stats = _extract(loaded.backbone, records, FeatureCache())
    assert (stats.num_cached, stats.num_computed) == (0, len(records))
    fresh, _ = _extract(loaded.backbone, records, None)
    np.testing.assert_allclose(feats, fresh, rtol=1e-5, atol=1e-6)
    file_weights = load_backbone(TINY, weights=str(tiny_weights))
    file_weights.feature_stages = loaded.backbone.feature_stages
    pretrained, _ = _extract(file_weights, records, None)
    assert not np.allclose(feats, pretrained, atol=1e-3)  # so a cache hit would have been wrong
    assert len(FeatureCache()) == cached_before  # and nothing of the fine-tuned backbone was stored


def test_a_model_folder_of_unknown_provenance_is_not_cached(backbone, records, tmp_path):
    """A folder saved before `fine_tuned` was recorded may hold fine-tuned weights: its features are computed afresh."""
    from transferkit.heads import DenseHead
    from transferkit.model import TransferModel, load

    folder = TransferModel(backbone, DenseHead(backbone.num_features, 2), ["a", "b"]).save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["backbone"]["weights"]["fine_tuned"] is False
    _extract(backbone, records, FeatureCache(tmp_path / "cache"))  # the file's features, cached
    _, stats = _extract(load(folder).backbone, records, FeatureCache(tmp_path / "cache"))
    assert stats.num_cached == len(records)  # saved from a frozen base: the file's features are its features
    del cfg["backbone"]["weights"]["fine_tuned"]
    (folder / "config.json").write_text(json.dumps(cfg))
    _, stats = _extract(load(folder).backbone, records, FeatureCache(tmp_path / "cache"))
    assert (stats.num_cached, stats.num_computed) == (0, len(records))


def test_no_records_give_an_empty_feature_matrix(backbone, tmp_path):
    feats = extract_features(backbone, [], cache=FeatureCache(tmp_path / "cache"), progress=False)
    assert feats.shape == (0, backbone.num_features) and feats.dtype == np.float32


def test_an_interrupted_extraction_keeps_what_it_computed(backbone, records, tmp_path, monkeypatch):
    # the cache used to be written once per split, after its last image: Ctrl-C lost every feature computed so far
    import transferkit.features.extract as extract_mod

    monkeypatch.setattr(extract_mod, "CACHE_FLUSH_ROWS", 8)
    cache_dir = tmp_path / "cache"
    original, calls = backbone.forward, {"n": 0}

    def interrupted_on_the_third_batch(x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(x)

    monkeypatch.setattr(backbone, "forward", interrupted_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        _extract(backbone, records, FeatureCache(cache_dir))
    monkeypatch.setattr(backbone, "forward", original)
    unique = len({r.sha256 for r in records})
    feats, stats = _extract(backbone, records, FeatureCache(cache_dir))
    assert stats.num_cached == 16 and stats.num_computed == unique - 16  # two batches of 8 were kept
    fresh, _ = _extract(backbone, records, None)
    np.testing.assert_allclose(feats, fresh, rtol=1e-5, atol=1e-6)


def test_ctrl_c_outside_training_says_what_was_kept_and_how_to_continue(image_folder, tmp_path, monkeypatch, capsys):
    # typer turned it into a silent exit 130
    import sys

    import transferkit.api as api_mod
    from transferkit.cli.app import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api_mod, "extract_features", interrupted)
    monkeypatch.setattr(sys, "argv", ["transferkit", "fit", str(image_folder), "--model", TINY, "--weights", "none", "-q",
                                      "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 130
    said = " ".join(capsys.readouterr().err.split())
    assert "interrupted." in said and "transferkit fit --resume RUN" in said


def test_a_cache_that_cannot_be_written_costs_no_features_and_says_so(backbone, records, tmp_path, capsys):
    # a cache path that is a file (or read-only, or a full disk) used to end the run after every feature was computed
    blocked = tmp_path / "afile"
    blocked.write_text("x")
    feats, stats = _extract(backbone, records, FeatureCache(blocked))
    assert stats.num_computed == len({r.sha256 for r in records}) and feats.shape == (len(records), backbone.num_features)
    said = " ".join(capsys.readouterr().err.split())
    assert said.count("cannot be written") == 1 and "--cache-dir" in said and "TRANSFERKIT_CACHE" in said
    fresh, _ = _extract(backbone, records, None)
    np.testing.assert_allclose(feats, fresh, rtol=1e-5, atol=1e-6)


def test_wrong_arguments_say_what_to_pass(backbone, image_folder, tmp_path):
    """File paths, an ImageSplits, a cache folder given as a string, batch_size=0 and views='4' failed deep inside
    (AttributeError 'str' has no 'sha256', 'not iterable', 'str' has no 'get', a DataLoader error, TypeError '<')."""
    from transferkit.errors import ConfigError, DataError
    from transferkit.features import extract_train_views

    splits = load_image_folder(image_folder, progress=False)
    paths = [str(r.path) for r in splits.train[:3]]
    with pytest.raises(DataError, match=r"records must be ImageRecords .*got a str.*splits.train .*load_image_folder"):
        extract_features(backbone, paths, progress=False)
    with pytest.raises(DataError, match="records must be a list of ImageRecords; got str"):
        extract_features(backbone, paths[0], progress=False)
    with pytest.raises(DataError, match=r"not an ImageSplits: pass splits.train"):
        extract_features(backbone, splits, progress=False)
    with pytest.raises(ConfigError, match="cache must be a FeatureCache"):
        extract_features(backbone, splits.train, cache={"a": 1}, progress=False)
    for bad in (0, -1, 2.5, "8"):
        with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
            extract_features(backbone, splits.train, batch_size=bad, progress=False)
    with pytest.raises(ConfigError, match="num_workers must be a non-negative integer"):
        extract_features(backbone, splits.train, num_workers=-1, progress=False)
    for bad in ("4", -1, 1.5):
        with pytest.raises(ConfigError, match="views must be a non-negative integer"):
            extract_train_views(backbone, splits.train, bad, progress=False)
    with pytest.raises(DataError, match="not an ImageSplits"):
        extract_train_views(backbone, splits, 1, progress=False)
    # a cache folder given as a string (or a Path) is FeatureCache(folder)
    feats = extract_features(backbone, splits.train, cache=str(tmp_path / "cache"), progress=False)
    stats = ExtractionStats()
    again = extract_features(backbone, splits.train, cache=tmp_path / "cache", progress=False, stats=stats)
    assert stats.num_cached == len(splits.train) and np.array_equal(feats, again)
    assert extract_train_views(backbone, splits.train[:2], np.int64(1), batch_size=np.int64(2), progress=False).shape[:2] == (1, 2)
