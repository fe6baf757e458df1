"""The head trainer, and the saved model folder (save_pretrained / load / predict)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import transferkit as tk
from conftest import TINY
from transferkit.config import HeadConfig, HeadTrainConfig
from transferkit.errors import ModelFolderError, NotFittedError
from transferkit.heads import DenseHead
from transferkit.model import TransferModel
from transferkit.training import HeadTrainer, class_weights

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _blobs(n: int, d: int = 16, *, noise: float = 1.0, flip: float = 0.0, seed: int = 0):
    """Two Gaussian blobs; ``flip`` of the labels are wrong (so a head can overfit)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(0, noise, (n, d)).astype(np.float32)
    X[:, 0] += np.where(y == 1, 1.5, -1.5)
    flipped = rng.random(n) < flip
    y = np.where(flipped, 1 - y, y)
    return X, y.astype(np.int64)


def _trainer(seed: int = 0, **train) -> HeadTrainer:
    cfg = {"epochs": 300, "lr": 1e-2, "patience": 10, "batch_size": 16, "seed": seed, **train}
    return HeadTrainer(HeadConfig(hidden_dim=64), HeadTrainConfig(**cfg), progress=False)


# ---- HeadTrainer ---------------------------------------------------------------------------


def test_early_stopping_keeps_the_best_val_loss_state():
    X, y = _blobs(80, d=64, flip=0.2, seed=0)  # few noisy samples, many dims: the head overfits
    Xv, yv = _blobs(200, d=64, flip=0.2, seed=1)
    trainer = _trainer().fit(X, y, Xv, yv)
    val_losses = [h.val_loss for h in trainer.history_]
    best = int(np.argmin(val_losses))
    assert trainer.best_epoch_ == best + 1
    assert trainer.best_val_loss_ == pytest.approx(val_losses[best])
    assert len(val_losses) == best + 1 + 10 < 300  # stopped `patience` epochs after the best
    assert val_losses[-1] > trainer.best_val_loss_  # the last state was worse ...
    with torch.no_grad():  # ... and the kept state is the best one, not the last one
        weight = class_weights(y, 2)
        logits = trainer.head_(torch.from_numpy(Xv))
        kept = nn.CrossEntropyLoss(weight=weight)(logits, torch.from_numpy(yv)).item()
    assert kept == pytest.approx(trainer.best_val_loss_, rel=1e-5)
    assert not trainer.head_.training


def test_same_seed_same_head_different_seed_different_head():
    X, y = _blobs(60, seed=0)
    Xv, yv = _blobs(40, seed=1)
    a = _trainer(seed=3, epochs=30).fit(X, y, Xv, yv)
    b = _trainer(seed=3, epochs=30).fit(X, y, Xv, yv)
    c = _trainer(seed=4, epochs=30).fit(X, y, Xv, yv)
    assert [vars(h) for h in a.history_] == [vars(h) for h in b.history_]
    for k, v in a.head_.state_dict().items():
        assert torch.equal(v, b.head_.state_dict()[k]), k
    np.testing.assert_array_equal(a.predict_proba(Xv), b.predict_proba(Xv))
    assert not np.array_equal(a.predict_proba(Xv), c.predict_proba(Xv))


def test_head_learns_a_separable_problem():
    X, y = _blobs(100, seed=0)
    Xv, yv = _blobs(100, seed=1)
    trainer = _trainer(epochs=50).fit(X, y, Xv, yv)
    proba = trainer.predict_proba(Xv)
    assert proba.shape == (100, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert (proba.argmax(1) == yv).mean() > 0.85


def test_class_weights_are_sklearn_balanced():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0] * 30 + [1] * 10 + [2] * 5)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(class_weights(y, 3).numpy(), expected, rtol=1e-6)


def test_head_trainer_guards():
    with pytest.raises(NotFittedError, match="call fit"):
        HeadTrainer().predict_proba(np.zeros((1, 4)))
    X, y = _blobs(10)
    with pytest.raises(ValueError, match="validation split is empty"):
        _trainer().fit(X, y, X[:0], y[:0])
    with pytest.raises(ValueError, match="X_train has 10 rows but y_train has 5 labels"):
        _trainer().fit(X, y[:5], X, y)


def test_dense_head_standardises_with_its_own_buffers():
    head = DenseHead(4, 3, hidden_dim=8, dropout=0.1)
    feats = torch.randn(50, 4) * 5 + 3
    head.set_feature_stats(feats)
    torch.testing.assert_close(head.feature_mean, feats.mean(0))
    assert set(head.state_dict()) >= {"feature_mean", "feature_std"}
    clone = DenseHead.from_config(head.config())
    assert clone.config() == head.config()


# ---- model folder --------------------------------------------------------------------------


@pytest.fixture
def model(tiny_weights):
    torch.manual_seed(0)
    backbone = tk.load_backbone(TINY, weights=str(tiny_weights))
    head = DenseHead(backbone.num_features, 2, hidden_dim=8)
    head.set_feature_stats(torch.randn(20, backbone.num_features))
    return TransferModel(backbone, head.eval(), ["cat", "dog"], positive="cat", threshold=0.3)


def test_save_and_load_round_trip_gives_identical_logits(model, image_folder, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["id2label"] == {"0": "cat", "1": "dog"} and cfg["label2id"] == {"cat": 0, "dog": 1}
    assert cfg["backbone"]["name"] == TINY and cfg["backbone"]["weights"]["source"] == "file"
    assert cfg["preprocessing"]["input_size"] == [3, 64, 64]
    assert cfg["positive_label"] == "cat" and cfg["threshold"] == 0.3

    loaded = tk.load(folder)
    assert loaded.classes == ["cat", "dog"] and loaded.positive_index == 0 and loaded.threshold == 0.3
    assert loaded.backbone.weights_record == {**model.backbone.weights_record, "fine_tuned": False}  # saved from a frozen base
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded(x))
    files = sorted((image_folder / "test").rglob("*.png"))[:4]
    assert model.predict(files) == loaded.predict(files)


def test_a_run_folder_loads_its_model_subfolder(model, tmp_path):
    model.save_pretrained(tmp_path / "run" / "model")
    assert tk.load(tmp_path / "run").classes == ["cat", "dog"]


def test_predict_threshold_on_the_positive_class(model, image_folder):
    files = sorted((image_folder / "test").rglob("*.png"))
    for r in model.predict(files):
        expected = "cat" if r["probabilities"]["cat"] >= 0.3 else "dog"
        assert r["label"] == expected
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_predict_on_missing_or_corrupt_files_gives_error_entries(model, image_folder, tmp_path):
    good = sorted((image_folder / "test" / "cat").glob("*.png"))[0]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    results = model.predict([tmp_path / "missing.png", good, corrupt, empty])
    assert [("error" in r) for r in results] == [True, False, True, True]
    assert results[0]["path"].endswith("missing.png") and "no such file" in results[0]["error"]
    assert results[1]["label"] in ("cat", "dog")
    assert "not an image" in results[2]["error"] or "corrupt" in results[2]["error"]
    assert "empty" in results[3]["error"]
    assert model.predict([corrupt]) == [{"path": str(corrupt), "error": results[2]["error"]}]


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_folder_missing_a_file(model, tmp_path, missing):
    folder = model.save_pretrained(tmp_path / "m")
    (folder / missing).unlink()
    with pytest.raises(ModelFolderError) as info:
        tk.load(folder)
    assert "config.json" in str(info.value) and "model.safetensors" in str(info.value)


def test_not_a_folder_at_all(tmp_path):
    with pytest.raises(ModelFolderError, match="not a transferkit model folder"):
        tk.load(tmp_path / "nothing-here")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "not a valid transferkit config"),
        ('{"format": "something-else"}', "expected 'transferkit.image-classifier'"),
        ("[1, 2, 3]", "not a valid transferkit config"),
    ],
)
def test_broken_config_json(model, tmp_path, text, fragment):
    folder = model.save_pretrained(tmp_path / "m")
    (folder / "config.json").write_text(text)
    with pytest.raises(ModelFolderError, match=fragment):
        TransferModel.from_pretrained(folder)


def test_config_with_missing_keys_or_unknown_backbone(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["head"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="KeyError"):
        tk.load(folder)
    folder = model.save_pretrained(tmp_path / "m2")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["backbone"]["name"] = "no_such_backbone"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="unknown backbone 'no_such_backbone'"):
        tk.load(folder)


def test_weights_that_do_not_match_the_config(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["head"]["hidden_dim"] = 16  # the saved head has 8
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="does not match its config.json"):
        tk.load(folder)
    shutil.rmtree(folder)
    folder = model.save_pretrained(tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(ModelFolderError, match="is not the file that was saved with its config.json"):
        tk.load(folder)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["model_file_sha256"]  # a folder saved before the checksum was recorded
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="does not match its config.json"):
        tk.load(folder)


def _overwrite_tensor_data(path, byte: int) -> None:
    """Every 4th byte of the tensor data (after the safetensors header) set to ``byte``: same size, same keys."""
    data = bytearray(path.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")
    data[start + 3::4] = bytes([byte]) * len(data[start + 3::4])
    path.write_bytes(bytes(data))


def test_damaged_weights_are_refused_not_predicted_as_the_first_class(model, image_folder, tmp_path):
    # a walk overwrote the tensor data: the folder loaded, and predict gave every image the first class with NaN
    # probabilities
    folder = model.save_pretrained(tmp_path / "m")
    _overwrite_tensor_data(folder / "model.safetensors", 0x7F)  # float32 exponent bits all set: NaN and inf
    with pytest.raises(ModelFolderError, match="its sha256 differs"):
        tk.load(folder)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["model_file_sha256"]  # older folders have no checksum: the values themselves are checked
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match=r"not finite \(NaN or inf\) in \d+ tensor"):
        tk.load(folder)


def test_a_model_with_non_finite_weights_refuses_to_predict(model, image_folder):
    with torch.no_grad():
        next(model.head.parameters()).fill_(float("nan"))
    with pytest.raises(tk.errors.TrainingError, match="outputs are not finite"):
        model.predict(sorted(image_folder.rglob("*.png"))[:2])


@pytest.mark.parametrize(("kwargs", "fragment"), [({"threshold": 5}, "'threshold' is 5"), ({"temperature": 0}, "'temperature' is 0"),
                                                  ({"temperature": float("nan")}, "a finite number above 0")])
def test_a_transfer_model_refuses_a_threshold_or_temperature_it_could_not_load_again(model, kwargs, fragment):
    with pytest.raises(tk.errors.ConfigError, match=fragment):
        TransferModel(model.backbone, model.head, model.classes, **kwargs)


def test_saved_weights_are_as_readable_as_the_config(model, tmp_path):
    # safetensors writes 0600 whatever the umask: a folder shared with another account had unreadable weights
    old = os.umask(0o022)
    try:
        folder = model.save_pretrained(tmp_path / "m")
    finally:
        os.umask(old)
    modes = {f.name: f.stat().st_mode & 0o777 for f in folder.iterdir()}
    assert modes == {"config.json": 0o644, "model.safetensors": 0o644}
    old = os.umask(0o027)
    try:
        folder = model.save_pretrained(tmp_path / "m2")
    finally:
        os.umask(old)
    assert (folder / "model.safetensors").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(("key", "value", "rule"), [
    ("temperature", 0, "a finite number above 0"),
    ("temperature", -1.0, "a finite number above 0"),
    ("temperature", None, "a finite number above 0"),
    ("threshold", "high", "a number between 0 and 1"),
    ("threshold", 1.5, "a number between 0 and 1"),
])
def test_hand_edited_scalars_are_refused_on_load(model, tmp_path, key, value, rule):
    """A temperature of 0 turned every probability into NaN, and -1 flipped every prediction, without a word."""
    folder = model.save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg[key] = value
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match=f"'{key}' is .*{rule}"):
        tk.load(folder)


def test_a_head_for_other_features_is_named_on_load(model, tmp_path):
    # the saved head takes the last stage's features only
    folder = _saved_with_config(model, tmp_path, lambda cfg: cfg["backbone"].update(feature_stages=3))
    with pytest.raises(ModelFolderError, match=r"the head takes 256 features, but tiny_effnet with feature_stages=3 gives \d+"):
        tk.load(folder)


def test_a_config_that_is_not_an_object_is_a_model_folder_error_through_load(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    (folder / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(ModelFolderError, match="not a valid transferkit config"):
        tk.load(folder)


def test_a_weights_mismatch_names_the_keys(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["head"]["hidden_dim"] = None  # the saved head has a hidden layer of 8
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match=r"does not match its config.json \(.*head\.") as info:
        tk.load(folder)
    assert "Error(s) in loading state_dict for TransferModel:)" not in str(info.value)


def test_predict_takes_one_path_as_one_image(model, image_folder):
    one = sorted((image_folder / "test").rglob("*.png"))[0]
    for path in (str(one), one):
        got = model.predict(path)
        assert len(got) == 1 and got[0]["path"] == str(one) and got[0] == model.predict([one])[0]
    assert tk.predict(model, str(one)) == model.predict([one])


def test_a_feature_constant_in_training_is_centred_not_blown_up():
    """A ReLU channel that never fires on the training images had its spread clamped to 1e-6, so a test image that fired
    it by 0.09 sent 90,000 standard units into the hidden layer and decided the prediction."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8)).astype(np.float32)
    X[:, 3] = 0.0  # dead on every training image
    for hidden in (16, None):
        head = DenseHead(8, 2, hidden_dim=hidden)
        head.set_feature_stats(torch.from_numpy(X))
        assert head.feature_std[3] == 1.0 and torch.all(head.feature_std[[0, 1, 2, 4]] != 1.0)
        x = torch.from_numpy(X[:5].copy())
        fired = x.clone()
        fired[:, 3] = 0.09
        with torch.no_grad():
            assert (head(fired) - head(x)).abs().max() < 1.0
    y = (X[:, 0] > 0).astype(int)
    linear = HeadTrainer(HeadConfig(hidden_dim=None), HeadTrainConfig(linear_refit=False), progress=False).fit(X[:30], y[:30], X[30:], y[30:], 2).head_
    hidden = HeadTrainer(HeadConfig(hidden_dim=16), HeadTrainConfig(epochs=5), progress=False).fit(X[:30], y[:30], X[30:], y[30:], 2).head_
    assert linear.feature_std[3] == 1.0 and hidden.feature_std[3] == 1.0  # both head trainers, one rule


@pytest.mark.parametrize("hidden", [None, 16])
def test_features_that_are_all_tiny_are_scaled_not_called_constant(hidden):
    """Random-init mobilenet_v2 gives features of ~1e-10: a fixed 1e-6 threshold called every one constant, so the
    --weights none control predicted one constant probability (chance exactly) where rank's StandardScaler saw signal."""
    X, y = _blobs(120)
    X = (X * 1e-10).astype(np.float32)
    X[:, 1] = np.float32(3e-10)  # a truly constant one stays centred, not scaled
    head = DenseHead(X.shape[1], 2)
    head.set_feature_stats(torch.from_numpy(X))
    assert head.feature_std[1] == 1.0 and torch.all(head.feature_std[[0, 2, 3]] < 1e-8)

    def fitted(Z):
        trainer = HeadTrainer(HeadConfig(hidden_dim=hidden), HeadTrainConfig(linear_refit=False, epochs=60), progress=False)
        return trainer.fit(Z[:80], y[:80], Z[80:], y[80:], 2).predict_proba(Z[80:])

    tiny, unit = fitted(X), fitted((X.astype(np.float64) * 1e10).astype(np.float32))
    np.testing.assert_allclose(tiny, unit, atol=1e-3)  # standardised, the head cannot tell the scales apart
    assert tiny.std(0).max() > 0.1  # not one constant prediction


def test_a_feature_below_float32_rounding_of_the_loudest_is_constant():
    """all-MiniLM-L6-v2's final LayerNorm has two weights of ~1e-33 and one of ~1e-9: their features' spreads are 3e-32 and
    9e-9 of the largest. Divided by those spreads, fine-tuning's gradient norm overflowed to inf and clipping zeroed every
    step. Relative to the vector's loudest feature they are constant; features that are all tiny are still scaled."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6)) * 0.3
    X[:, 1] = rng.normal(size=60) * 1e-32
    X[:, 2] = rng.normal(size=60) * 3e-9
    X[:, 3] = rng.normal(size=60) * 1e-5  # small, but well above float32 rounding of the loudest: kept
    head = DenseHead(6, 2)
    head.set_feature_stats(torch.from_numpy(X.astype(np.float32)))
    assert head.feature_std[1] == 1.0 and head.feature_std[2] == 1.0
    assert torch.all(head.feature_std[[0, 3, 4, 5]] < 0.5) and head.feature_std[3] < 1e-4
    tiny = DenseHead(6, 2).set_feature_stats(torch.from_numpy((X[:, [0, 4, 5]] * 1e-10).astype(np.float32)).repeat(1, 2))
    assert torch.all(tiny.feature_std < 1e-9)  # every feature tiny: none is called constant


def test_head_trainer_takes_class_indices_and_says_what_else_it_got():
    X, y = _blobs(40)
    trainer = HeadTrainer(HeadConfig(hidden_dim=None), HeadTrainConfig(), progress=False)
    with pytest.raises(ValueError, match=r"class index\(es\) \[0\] never occur in y_train"):
        trainer.fit(X[:30], y[:30] + 1, X[30:], y[30:] + 1)  # labels 1, 2: a head for 3 classes, one never seen
    with pytest.raises(ValueError, match="num_classes=2, but the labels go up to 2"):
        trainer.fit(X[:30], y[:30] * 2, X[30:], y[30:], 2)
    with pytest.raises(ValueError, match="must hold class indices 0..K-1 .*np.unique"):
        trainer.fit(X[:30], np.where(y[:30] == 1, "pos", "neg"), X[30:], y[30:])
    with pytest.raises(ValueError, match="at least two classes"):
        trainer.fit(X[:30], np.zeros(30, int), X[30:], np.zeros(10, int))
    assert trainer.fit(X[:30], (y[:30] + 1), X[30:], y[30:] + 1, 3).head_.num_classes == 3  # absent on purpose: allowed


def test_classification_metrics_refuses_probabilities_for_other_classes():
    from transferkit.evaluation import classification_metrics

    with pytest.raises(ValueError, match=r"expected proba of shape \(N, 2\)"):
        classification_metrics(np.array([0, 1, 1]), np.full((3, 3), 1 / 3), ["a", "b"])


def test_a_transfer_model_checks_its_head_against_the_classes_and_the_backbone(tmp_path):
    # both used to pass: the first failed at predict time (IndexError), the second saved a folder that load refused
    from transferkit.errors import ConfigError

    backbone = tk.load_backbone(TINY, weights="none")
    with pytest.raises(ConfigError, match=r"the head has 3 outputs but 2 class names"):
        tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, 3), ["a", "b"])
    backbone.feature_stages = 3
    with pytest.raises(ConfigError, match=rf"the head takes 256 features but the backbone gives {backbone.num_features} \(feature_stages=3\)"):
        tk.TransferModel(backbone, tk.DenseHead(256, 2), ["a", "b"])
    model = tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, 2), ["a", "b"])
    with pytest.raises(TypeError, match="predict takes image file paths .* not Image objects"):
        model.predict(Image.new("RGB", (8, 8)))


@pytest.mark.parametrize("num_classes,id2label", [(1, {"0": "cat"}), (3, {"0": "cat", "1": "dog", "2": "bird"})])
def test_a_config_whose_class_count_disagrees_with_the_head_is_a_model_folder_error(model, tmp_path, num_classes, id2label):
    # a hand-edited count used to load: predict then crashed (IndexError) or answered over 2 classes while the folder said 3
    folder = _saved_with_config(model, tmp_path, lambda cfg: cfg.update(num_classes=num_classes, id2label=id2label, positive_label=None))
    with pytest.raises(ModelFolderError, match=f"the head has 2 outputs but {num_classes} class names"):
        tk.load(folder)


def _saved_with_config(model, tmp_path, edit):
    """``model`` saved, then its config.json changed by ``edit(cfg)`` (as a hand edit would)."""
    folder = model.save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_a_loaded_model_preprocesses_as_its_folder_records(model, tmp_path):
    # the registry's preprocessing was used whatever the folder said: a registry change would silently change old models
    from transferkit.data import make_transforms

    folder = model.save_pretrained(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    assert tk.load(folder).data_cfg == cfg["preprocessing"]
    cfg["preprocessing"]["input_size"] = [3, 96, 96]
    (folder / "config.json").write_text(json.dumps(cfg))
    loaded = tk.load(folder)
    assert loaded.data_cfg["input_size"] == [3, 96, 96]
    assert make_transforms(loaded.data_cfg)(Image.new("RGB", (200, 150))).shape == (3, 96, 96)
    cfg["preprocessing"]["std"] = [0.2, 0.0, 0.2]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="preprocessing .* is not usable"):
        tk.load(folder)
    cfg["preprocessing"]["std"] = [0.2, 0.2, 0.2]
    cfg["preprocessing"]["interpolation"] = "foo"  # loaded, then predict raised KeyError: 'foo' from inside timm
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="interpolation 'foo' is not one of"):
        tk.load(folder)
    del cfg["preprocessing"]  # a folder without the record: the registry's
    (folder / "config.json").write_text(json.dumps(cfg))
    assert tk.load(folder).data_cfg == model.data_cfg


def test_class_names_must_be_distinct():
    from transferkit.errors import ConfigError

    backbone = tk.load_backbone(TINY, weights="none")
    with pytest.raises(ConfigError, match="class names must be distinct"):
        tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, 2), ["a", "a"])


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8", True])
def test_predict_refuses_a_batch_size_that_is_not_a_positive_whole_number(model, image_folder, batch_size):
    # batch_size=0 gave "range() arg 3 must not be zero"
    with pytest.raises(tk.errors.ConfigError, match="batch_size must be a whole number of at least 1"):
        model.predict(sorted(image_folder.rglob("*.png"))[:2], batch_size=batch_size)


def test_a_dense_head_checks_its_sizes_and_the_width_of_its_input(model, tmp_path):
    """DenseHead(0, 2) was accepted, DenseHead(10, -1) and hidden_dim=-5 failed in torch ("negative dimension"), features
    of the wrong width with a broadcast error inside forward, and hidden_dim -3 in a model folder's config.json with a
    RuntimeError on load."""
    from transferkit.errors import ConfigError, DataError

    for args, kw, message in (((0, 2), {}, "in_features must be a positive integer"),
                              ((10, -1), {}, r"num_classes must be an integer >= 2"),
                              ((10, 2), {"hidden_dim": -5}, "hidden_dim must be None or 0 .* or a positive width; got -5"),
                              ((10, 2), {"dropout": 1.5}, r"dropout must be a probability in \[0, 1\]"),
                              ((10.5, 2), {}, "in_features must be a positive integer")):
        with pytest.raises(ConfigError, match=message):
            DenseHead(*args, **kw)
    head = DenseHead(10, 2, hidden_dim=4)
    with pytest.raises(DataError, match=r"this head takes features of shape \(N, 10\) \(its in_features\); got \(3, 7\)"):
        head(torch.zeros(3, 7))
    assert head(torch.zeros(3, 10)).shape == (3, 2) and DenseHead(10, 2, hidden_dim=0)(torch.zeros(1, 10)).shape == (1, 2)
    with pytest.raises(ConfigError, match=r"the head config .* is not usable: hidden_dim must be None or 0"):
        DenseHead.from_config({"in_features": 10, "num_classes": 2, "hidden_dim": -3})
    with pytest.raises(ConfigError, match="the head config lacks 'num_classes'"):
        DenseHead.from_config({"in_features": 10})
    # in a model folder it is a ModelFolderError through load (model.py turns ValueErrors into one), not a torch error
    folder = _saved_with_config(model, tmp_path, lambda cfg: cfg["head"].update(hidden_dim=-3))
    with pytest.raises(ModelFolderError, match="hidden_dim must be None or 0"):
        tk.load(folder)


def test_a_threshold_or_temperature_set_after_construction_is_checked_when_set(model, tmp_path):
    # `m.threshold = 5; m.save_pretrained(...)` wrote a folder tk.load refused; `m.temperature = 0` made predict blame the weights
    with pytest.raises(tk.errors.ConfigError, match="'threshold' is 5"):
        model.threshold = 5
    with pytest.raises(tk.errors.ConfigError, match="'temperature' is 0"):
        model.temperature = 0
    model.threshold, model.temperature = 0.7, 1.5
    back = tk.load(model.save_pretrained(tmp_path / "m"))
    assert (back.threshold, back.temperature) == (0.7, 1.5)
