"""The `transferkit` command line on the tiny backbone: fit, evaluate, predict, models, errors."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

import transferkit as tk
from conftest import TINY
from transferkit.cli.app import app

pytestmark = pytest.mark.usefixtures("torch_single_thread")

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})


def assert_clean_failure(result, *fragments: str) -> None:
    """Exit 1, an `error:` line naming the problem, and no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "error:" in result.stderr
    flat = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in flat, (fragment, result.stderr)


@pytest.fixture
def run_dir(image_folder, tiny_weights, tmp_path):
    out = tmp_path / "run"
    result = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--out", out, "--epochs", 40, "--seed", 1, "-q")
    assert result.exit_code == 0, result.output
    return out, result


def test_fit_writes_a_run_folder_and_prints_a_summary(run_dir, tiny_weights):
    out, result = run_dir
    assert (out / "model" / "config.json").is_file() and (out / "model" / "model.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9  # colour-coded classes
    assert metrics["test"]["binary"]["positive_class"] == "dog"
    assert config["backbone"]["weights"]["source"] == "file"
    assert config["backbone"]["weights"]["path"] == str(tiny_weights)
    text = " ".join(result.stdout.split())
    for fragment in ("test", "balanced accuracy", "roc auc", "weights: file", f"saved: {out}/model"):
        assert fragment in text, fragment


def test_evaluate_json_matches_the_fit_metrics(run_dir, image_folder):
    out, _ = run_dir
    result = invoke("evaluate", out, image_folder / "test", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    fitted = json.loads((out / "metrics.json").read_text())["test"]
    assert metrics["num_samples"] == fitted["num_samples"] == 12
    assert metrics["accuracy"] == pytest.approx(fitted["accuracy"])
    assert metrics["binary"]["roc_auc"] == pytest.approx(fitted["binary"]["roc_auc"], abs=1e-6)
    assert metrics["skipped"] == []


def test_evaluate_table_and_positive_option(run_dir, image_folder):
    out, _ = run_dir
    result = invoke("evaluate", out, image_folder, "--positive", "cat", "-q")  # a root: its test/ is used
    assert result.exit_code == 0, result.output
    assert "sensitivity" in result.stdout and "test" in result.stdout


def test_predict_json_with_a_bad_file(run_dir, image_folder, tmp_path):
    out, _ = run_dir
    good = sorted((image_folder / "test" / "dog").glob("*.png"))[:2]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    result = invoke("predict", out, *good, bad, "--json")
    assert result.exit_code == 1  # some file could not be predicted
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == [str(p) for p in (*good, bad)]
    assert all(r["label"] == "dog" for r in rows[:2])
    assert "error" in rows[2] and "label" not in rows[2]


def test_predict_a_folder_as_a_table(run_dir, image_folder):
    out, _ = run_dir
    cats = image_folder / "test" / "cat"
    (cats / ".ipynb_checkpoints").mkdir()  # Jupyter's copies are not images to predict
    shutil.copy(next(cats.glob("*.png")), cats / ".ipynb_checkpoints" / "cat_copy-checkpoint.png")
    result = invoke("predict", out, cats)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("cat_") == 6 and "probability" in result.stdout and "checkpoint" not in result.stdout


def test_models_lists_the_registry_and_weight_availability():
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"vgg19", "mobilenet_v2", "tf_efficientnet_lite0", TINY} <= set(rows)
    assert rows["vgg19"]["weights_available"] is False and rows["vgg19"]["weights_where"] == "missing"
    assert rows["vgg19"]["num_features"] == 512 and rows["vgg19"]["imagenet_top1"] > 70

    table = invoke("models", "vgg*")
    assert table.exit_code == 0
    assert "vgg16" in table.stdout and "vgg19" in table.stdout and "mobilenet" not in table.stdout
    assert "missing" in table.stdout and "--weights PATH" in " ".join(table.stdout.split())


@pytest.mark.parametrize("command", ["fit", "evaluate", "predict", "models"])
def test_help_shows_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Example" in text
    assert f"transferkit {command} " in text[text.index("Example") :]


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and "transferkit" in result.stdout


# ---- bad input: one error line, exit 1, no traceback ---------------------------------------


def test_fit_on_a_missing_folder(tmp_path, tiny_weights):
    result = invoke("fit", tmp_path / "nowhere", "--model", TINY, "--weights", tiny_weights, "--out", tmp_path / "r", "-q")
    assert_clean_failure(result, "does not exist")


def test_a_failed_fit_leaves_no_run_folder(tmp_path, tiny_weights):
    invoke("fit", tmp_path / "nowhere", "--model", TINY, "--weights", tiny_weights, "--out", tmp_path / "r", "-q")
    assert not (tmp_path / "r").exists()


def test_fit_with_an_unknown_model(image_folder, tmp_path):
    result = invoke("fit", image_folder, "--model", "mobilenet_v22", "--out", tmp_path / "r", "-q")
    assert_clean_failure(result, "unknown backbone 'mobilenet_v22'", "Did you mean 'mobilenet_v2'")


def test_fit_with_missing_weights(image_folder, tmp_path):
    result = invoke("fit", image_folder, "--model", "vgg19", "--out", tmp_path / "r", "-q")
    assert_clean_failure(result, "vgg19-dcbb9e9d.pth", "--weights PATH")


def test_fit_with_a_weights_file_that_does_not_exist(image_folder, tmp_path):
    result = invoke("fit", image_folder, "--model", TINY, "--weights", tmp_path / "nope.pth", "--out", tmp_path / "r", "-q")
    assert_clean_failure(result, "no such file")


def test_fit_on_a_single_class_folder(tmp_path, tiny_weights):
    from conftest import make_image_folder

    data = make_image_folder(tmp_path / "one", classes=("cat",), per_class=4)
    result = invoke("fit", data, "--model", TINY, "--weights", tiny_weights, "--out", tmp_path / "r", "-q")
    assert_clean_failure(result, "only one class")


def test_evaluate_with_a_folder_that_is_not_a_model(image_folder, tmp_path):
    result = invoke("evaluate", tmp_path, image_folder / "test")
    assert_clean_failure(result, "not a transferkit model folder")


def test_evaluate_with_unknown_classes(run_dir, tmp_path):
    from conftest import make_image_folder

    out, _ = run_dir
    other = make_image_folder(tmp_path / "other", classes=("cat", "horse"), per_class=4, splits=("test",))
    result = invoke("evaluate", out, other / "test", "-q")
    assert_clean_failure(result, "horse", "not classes of this model")


def test_predict_with_no_images(run_dir, tmp_path):
    out, _ = run_dir
    (tmp_path / "empty").mkdir()
    result = invoke("predict", out, tmp_path / "empty")
    assert_clean_failure(result, "no image files")


def test_fit_augmentation_options_reach_the_run_config_and_bad_values_fail_cleanly(image_folder, tiny_weights, tmp_path):
    out = tmp_path / "aug"
    res = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--out", out, "--epochs", 5, "--no-report", "-q",
                 "--rotation", 0, "--hflip", 0, "--crop-scale", 0.9, "--color-jitter", 0.05, "--train-views", 1)  # copies use them
    assert res.exit_code == 0, res.output
    aug = json.loads((out / "config.json").read_text())["fit"]["augment"]
    assert aug == {"enabled": True, "crop_scale_min": 0.9, "hflip": 0.0, "rotation": 0.0, "color_jitter": 0.05}
    bad = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--out", tmp_path / "bad", "-q", "--hflip", 2)
    assert_clean_failure(bad, "hflip=2.0", "less than or equal to 1")


def test_a_bad_option_value_is_one_plain_line(image_folder, tiny_weights, tmp_path):
    res = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--out", tmp_path / "a", "-q",
                 "--strategy", "finetune", "--unfreeze", "some")
    assert_clean_failure(res, "invalid option unfreeze='some'", "'all' or 'last:N' with N >= 1")
    assert "pattern" not in res.stderr  # pydantic's regular expression is not the user's business
    res = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--out", tmp_path / "b", "-q", "--hidden-dim", "wide")
    assert_clean_failure(res, "invalid option hidden_dim='wide'", "a width (0 = a single Dense layer) or 'auto'")
    assert "Value error" not in res.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_predict_on_a_folder_says_which_files_it_left_out(run_dir, image_folder, tmp_path):
    out, _ = run_dir
    folder = tmp_path / "mixed"
    shutil.copytree(image_folder / "test" / "cat", folder)
    (folder / "notes.txt").write_text("not an image")
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    result = invoke("predict", out, folder, "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == len(list((image_folder / "test" / "cat").iterdir()))
    flat = " ".join(result.stderr.split())
    assert "left out 2 file(s) found in the folders" in flat and "notes.txt: not an image file" in flat and "gone.png: broken link" in flat


def test_output_paths_that_cannot_be_written_fail_in_one_line_before_any_work(run_dir, image_folder, tiny_weights, tmp_path):
    out, _ = run_dir
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_clean_failure(invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--out", afile / "sub", "-q"),
                         "is a file, so no folder can be made below it")
    assert_clean_failure(invoke("export", out, "--out", afile, "--exporter", "torchscript"), "--out", "is a file, not a folder")
    assert_clean_failure(invoke("rank", image_folder, "--candidates", f"{TINY}:{tiny_weights}", "--json", tmp_path, "-q"),
                         "--json", "is a folder: pass a file name")
    assert_clean_failure(invoke("rank", image_folder, "--candidates", f"{TINY}:{tiny_weights}", "--chart", afile / "c.png", "-q"),
                         "--chart", "is a file, so no folder can be made below it")


def test_evaluate_threshold_must_be_a_probability_of_a_binary_model(run_dir, image_folder):
    out, _ = run_dir
    assert_clean_failure(invoke("evaluate", out, image_folder, "--threshold", "7"), "--threshold 7.0 is not a probability")
    ok = invoke("evaluate", out, image_folder, "--threshold", "0.9", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["binary"]["threshold"] == 0.9


def test_fine_tuning_options_with_a_frozen_base_are_refused_not_recorded(image_folder, tiny_weights, tmp_path):
    result = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--wise-ft", "0.3", "--ft-epochs", "9",
                    "--out", tmp_path / "r", "-q")
    assert_clean_failure(result, "finetune_epochs (--ft-epochs), wise_alpha (--wise-ft) only act when fine-tuning")
    assert not (tmp_path / "r").exists()
    result = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--rotation", "90", "--out", tmp_path / "r", "-q")
    assert_clean_failure(result, "augment (--no-augment, --crop-scale", "only act when fine-tuning")
    ok = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--rotation", "90", "--train-views", "1", "--hidden-dim",
                "0", "--out", tmp_path / "v", "-q", "--no-report")
    assert ok.exit_code == 0, ok.output  # with --train-views the augmentation acts


def test_a_seeds_folder_points_to_its_runs(image_folder, tiny_weights, tmp_path):
    result = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--seeds", "2", "--hidden-dim", "0",
                    "--out", tmp_path / "s", "-q", "--no-report")
    assert result.exit_code == 0, result.output
    assert_clean_failure(invoke("predict", tmp_path / "s", image_folder / "test"), "holds the runs of `fit --seeds`", "seed-0")


def test_a_tilde_in_out_is_the_home_folder(image_folder, tiny_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    result = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--hidden-dim", "0", "--out=~/r1", "-q", "--no-report")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "r1" / "model" / "config.json").is_file() and not (tmp_path / "~").exists()
    assert invoke("predict", "~/r1", image_folder / "test", "--json").exit_code == 0


def test_models_with_a_pattern_nothing_matches_says_so():
    result = invoke("models", "nomatch*")
    assert result.exit_code == 1 and "no registered backbone matches 'nomatch*'" in " ".join(result.stderr.split())


def test_evaluate_on_a_root_without_test_names_the_split_folders(run_dir, image_folder, tmp_path):
    out, _ = run_dir
    root = tmp_path / "d6"
    shutil.copytree(image_folder / "train", root / "train")
    shutil.copytree(image_folder / "test", root / "val")
    assert_clean_failure(invoke("evaluate", out, root), "look like split folders, and there is no test/", str(root / "train"))


def test_predict_takes_a_threshold_as_evaluate_does(run_dir, image_folder):
    # a report's operating point could be applied by evaluate only: predict always decided at the model's own threshold
    out, _ = run_dir
    files = sorted((image_folder / "test").rglob("*.png"))
    default = json.loads(invoke("predict", out, *files, "--json").stdout)
    classes = list(default[0]["probabilities"])
    positive = classes[tk.load(out).positive_index]
    everything = json.loads(invoke("predict", out, *files, "--json", "--threshold", "0").stdout)
    assert all(r["label"] == positive for r in everything)  # P(positive) >= 0 for every image
    p = [r["probabilities"][positive] for r in default]
    cut = sorted(p)[len(p) // 2]
    halved = json.loads(invoke("predict", out, *files, "--json", "--threshold", str(cut)).stdout)
    assert [r["label"] == positive for r in halved] == [q >= cut for q in p]
    assert [r["label"] for r in tk.predict(out, files, threshold=cut)] == [r["label"] for r in halved]
    assert_clean_failure(invoke("predict", out, files[0], "--threshold", "1.5"), "--threshold 1.5 is not a probability")


def test_evaluate_counts_skipped_files_by_reason_as_fit_does(image_folder, tiny_weights, tmp_path):
    """evaluate said "skipped 8 unreadable file(s)" for a folder whose skipped files were Mac clutter (some valid JPEGs)."""
    run = tmp_path / "run"
    assert invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--hidden-dim", "0", "--out", run, "-q",
                  "--no-report").exit_code == 0
    data = tmp_path / "eval"
    shutil.copytree(image_folder / "test", data)
    clutter = data / "__MACOSX" / "cat"
    clutter.mkdir(parents=True)
    shutil.copy(next((data / "cat").iterdir()), clutter / "copy.png")
    (data / "cat" / "empty.png").write_bytes(b"")
    result = invoke("evaluate", run, data, "--include-training-images")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "skipped 2 file(s):" in text and "1 hidden or system file" in text and "unreadable file(s)" not in text


def test_cache_info_lists_what_fit_cached_and_clear_frees_it(image_folder, tiny_weights, tmp_path):
    cache_dir = tmp_path / "features"
    assert invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--out", tmp_path / "run", "--epochs", 5,
                  "--cache-dir", cache_dir, "-q").exit_code == 0
    listed = invoke("cache", "info", "--cache-dir", cache_dir, "--json")
    assert listed.exit_code == 0, listed.output
    record = json.loads(listed.stdout)
    (space,) = record["spaces"]
    assert space["backbone"] == TINY and space["num_vectors"] > 0 and record["total_bytes"] == space["bytes"] > 0
    table = " ".join(invoke("cache", "info", "--cache-dir", cache_dir).stdout.split())
    assert TINY in table and "1 feature space(s)" in table

    kept = invoke("cache", "clear", "--cache-dir", cache_dir, "--backbone", "no_such_*", "--yes")
    assert kept.exit_code == 0 and "Nothing to clear" in kept.stdout and (cache_dir / space["key"]).is_dir()
    unconfirmed = invoke("cache", "clear", "--cache-dir", cache_dir)  # no terminal to ask at: refused, nothing deleted
    assert unconfirmed.exit_code == 1 and "--yes" in unconfirmed.stderr and (cache_dir / space["key"]).is_dir()
    recent = invoke("cache", "clear", "--cache-dir", cache_dir, "--older-than", 1, "--yes")
    assert "Nothing to clear" in recent.stdout and (cache_dir / space["key"]).is_dir()
    cleared = invoke("cache", "clear", "--cache-dir", cache_dir, "--backbone", TINY[:4] + "*", "--yes")
    assert cleared.exit_code == 0, cleared.output
    assert not (cache_dir / space["key"]).exists() and json.loads(invoke("cache", "info", "--cache-dir", cache_dir, "--json").stdout)["spaces"] == []


def test_error_messages_keep_bracketed_text_rich_would_take_for_markup(image_folder, tiny_weights, tmp_path):
    # a positive class named "[bold]" (or a path like "x[1].png") vanished from the error line: rich read it as markup
    result = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--positive", "[bold]", "--out", tmp_path / "r")
    assert_clean_failure(result, "[bold]")


def test_fit_takes_max_params_written_as_3e6_as_rank_does(image_folder, tiny_weights, tmp_path):
    # rank took --max-params 3e6, fit and fit-text answered "Invalid value for '--max-params'"
    result = invoke("fit", image_folder, "--model", TINY, "--weights", tiny_weights, "--max-params", "3e6", "--out", tmp_path / "r")
    assert_clean_failure(result, "the limits max_params (--max-params) choose among the candidates only")
    from transferkit.cli.app import app as cli_app  # fit-text parses it too (the refusal comes from fit_text, after parsing)

    text = runner.invoke(cli_app, ["fit-text", str(tmp_path / "none.csv"), "--max-params", "3e6", "--model", "x"])
    assert "Invalid value for '--max-params'" not in text.output
