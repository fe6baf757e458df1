import json

import pytest

import transferkit as tk
from conftest import TINY


def test_fit_on_tiny_backbone_learns_and_saves(image_folder, tiny_weights, tmp_path):
    out = tmp_path / "run"
    result = tk.fit(image_folder, model=TINY, weights=str(tiny_weights), out=out, epochs=60, progress=False)
    # colour-coded classes: even a random small net separates them
    assert result.test["accuracy"] >= 0.9
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["num_samples"] == 12
    # every fit with a run folder ends with its report and the predictions behind it
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "predictions" / "test.csv").is_file()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["backbone"]["weights"]["source"] == "file"
    loaded = tk.load(out)
    files = sorted((image_folder / "test" / "dog").glob("*.png"))
    preds = loaded.predict(files)
    assert [p["label"] for p in preds].count("dog") >= len(files) - 1


@pytest.mark.parametrize("model", [TINY, "auto"])
def test_a_wrong_positive_class_fails_before_any_feature_is_extracted(image_folder, tmp_path, monkeypatch, model):
    import transferkit.api as api
    import transferkit.selection as selection
    from transferkit.errors import DataError

    def no_work(*args, **kwargs):
        raise AssertionError("features were extracted (or candidates ranked) before --positive was checked")

    monkeypatch.setattr(api, "extract_features", no_work)
    monkeypatch.setattr(selection, "choose_backbone", no_work)
    with pytest.raises(DataError, match=r"--positive 'cow' is not a class; the classes are \['cat', 'dog'\]"):
        tk.fit(image_folder, model=model, weights="none", positive="cow", out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # and no half-made run folder
