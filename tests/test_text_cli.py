"""The text commands: fit-text, evaluate-text, predict-text (arguments, file, stdin), one-line errors."""

from __future__ import annotations

import csv
import os
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_text_model import save_tiny_bert, sentiment_rows
from transferkit.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    model = save_tiny_bert(root / "tiny-bert")
    data = root / "reviews.tsv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["text", "label"])
        w.writerows(sentiment_rows(40, seed=1))
    run = root / "run"
    res = runner.invoke(app, ["fit-text", str(data), "--model", str(model), "--max-length", "16", "--out", str(run), "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    return data, run, model


def test_fit_text_writes_run_and_prints_metrics(fitted):
    data, run, _ = fitted
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["num_samples"] == sum(metrics["data"]["counts"]["test"].values()) > 10
    assert 0.5 < metrics["test"]["accuracy"] <= 1.0  # the learning itself is tested in test_text_model
    assert (run / "model" / "model.safetensors").is_file()
    res = runner.invoke(app, ["evaluate-text", str(run), str(data), "--json", "--include-training-texts"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["num_samples"] == 80


def test_evaluate_text_leaves_out_the_texts_the_run_trained_on(fitted, tmp_path: Path):
    """evaluate-text RUN FILE on the file RUN was fitted on scores its test rows only (RUN/splits.json), copies that
    differ in case and punctuation included; it counts and says what it left out, as `evaluate` does for images."""
    import shutil

    from transferkit.text import evaluate_text

    data, run, _ = fitted
    metrics = json.loads((run / "metrics.json").read_text())
    num_test, num_trained = metrics["test"]["num_samples"], metrics["val"]["num_samples"] + sum(metrics["data"]["counts"]["train"].values())
    record = json.loads((run / "splits.json").read_text())
    assert [len(record["splits"][s]) for s in ("train", "val", "test")] == [num_trained - metrics["val"]["num_samples"],
                                                                           metrics["val"]["num_samples"], num_test]
    res = runner.invoke(app, ["evaluate-text", str(run), str(data)])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert f"left out {num_trained} text(s) this run trained on" in flat and f"scored the other {num_test}" in flat
    out = json.loads(runner.invoke(app, ["evaluate-text", str(run), str(data), "--json"]).stdout)
    assert (out["num_samples"], out["excluded_training_texts"]) == (num_test, num_trained)
    assert out["accuracy"] == pytest.approx(metrics["test"]["accuracy"])  # the held-out rows: the run's own test score
    assert evaluate_text(run / "model", data)["excluded_training_texts"] == num_trained  # Python, given RUN/model
    assert evaluate_text(run, data, include_training_texts=True)["excluded_training_texts"] == 0
    import transferkit as tk

    assert evaluate_text(tk.load(run), data)["excluded_training_texts"] == num_trained  # a loaded model finds its run's record
    # near-copies of the training texts (upper case + '!!') are training texts too: nothing is left to score
    train_rows = {r["path"] for r in record["splits"]["train"]}
    lines = data.read_text().splitlines()
    shouted = tmp_path / "shouted.tsv"
    shouted.write_text("text\tlabel\n" + "".join(f"{line.split(chr(9))[0].upper()}!!\t{line.split(chr(9))[1]}\n"
                                                  for i, line in enumerate(lines[1:], start=2) if f"{data.name}:{i}" in train_rows))
    res = runner.invoke(app, ["evaluate-text", str(run), str(shouted)])
    assert res.exit_code == 1 and "was used to train this run" in res.output and "--include-training-texts" in res.output
    # a bare model folder has no record: every text is scored, as before
    bare = tmp_path / "bare"
    shutil.copytree(run / "model", bare)
    assert evaluate_text(bare, data)["num_samples"] == 80
    # a record that is there but cannot be read is an error, never "no record"
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "splits.json").write_text("{not json")
    res = runner.invoke(app, ["evaluate-text", str(broken), str(data)])
    assert res.exit_code == 1 and "(the texts this run trained on, left out of evaluation) cannot be read" in " ".join(res.output.split()) and "Traceback" not in res.output
    assert json.loads(runner.invoke(app, ["evaluate-text", str(broken), str(data), "--json", "--include-training-texts"]).stdout)["num_samples"] == 80


def test_evaluate_text_and_predict_text_take_a_threshold(fitted, tmp_path: Path):
    """--threshold: the binary decision threshold on the calibrated P(positive), as `evaluate --threshold` for images."""
    import transferkit as tk

    data, run, _ = fitted
    pos = json.loads((run / "model" / "config.json").read_text())["positive_label"]
    texts = ["great phone", "awful battery", "love it", "hate it"]
    p = [r["probabilities"][pos] for r in tk.load(run).predict(texts)]
    cut = sorted(p)[1] + 1e-6  # between the two lowest: one of them flips
    out = json.loads(runner.invoke(app, ["predict-text", str(run), *texts, "--threshold", str(cut), "--json"]).stdout)
    assert [r["label"] == pos for r in out] == [x >= cut for x in p]
    everything = json.loads(runner.invoke(app, ["predict-text", str(run), *texts, "--threshold", "0", "--json"]).stdout)
    assert {r["label"] for r in everything} == {pos}
    m0 = json.loads(runner.invoke(app, ["evaluate-text", str(run), str(data), "--threshold", "0", "--json"]).stdout)
    m1 = json.loads(runner.invoke(app, ["evaluate-text", str(run), str(data), "--threshold", "1", "--json"]).stdout)
    assert (m0["binary"]["threshold"], m0["binary"]["sensitivity"], m1["binary"]["threshold"]) == (0.0, 1.0, 1.0)
    res = runner.invoke(app, ["evaluate-text", str(run), str(data), "--threshold", "1.5"])
    assert res.exit_code == 1 and "is not a probability" in res.output
    res = runner.invoke(app, ["predict-text", str(run), "good", "--threshold", "-1"])
    assert res.exit_code == 1 and "is not a probability" in res.output


def same(got: list[dict], expected: list[dict]) -> None:
    assert [(r["text"], r["label"]) for r in got] == [(r["text"], r["label"]) for r in expected]
    for g, e in zip(got, expected):
        assert g["probabilities"] == pytest.approx(e["probabilities"], abs=1e-5)


def test_predict_text_from_arguments_file_and_stdin(fitted, tmp_path: Path):
    import transferkit as tk

    _, run, _ = fitted
    texts = ["great phone", "awful battery", "love it", "hate it", "excellent case", "terrible sound"]
    expected = tk.load(run).predict(texts)  # the CLI must give what the Python API gives
    res = runner.invoke(app, ["predict-text", str(run), *texts[:2], "--json"])
    assert res.exit_code == 0, res.output
    same(json.loads(res.stdout), expected[:2])
    f = tmp_path / "texts.txt"
    f.write_text("love it\n\nhate it\n")
    out = json.loads(runner.invoke(app, ["predict-text", str(run), "--file", str(f), "--json"]).stdout)
    same(out, expected[2:4])
    out = json.loads(runner.invoke(app, ["predict-text", str(run), "-", "--json"], input="excellent case\nterrible sound\n").stdout)
    same(out, expected[4:])


def test_bad_inputs_fail_with_one_line(fitted, tmp_path: Path):
    data, run, model = fitted
    one_class = tmp_path / "one.csv"
    one_class.write_text("text,label\ngood,1\ngreat,1\n")
    res = runner.invoke(app, ["fit-text", str(one_class), "--model", str(model), "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 1 and "only the class '1'" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["fit-text", str(data), "--model", str(model), "--text-col", "nope", "--quiet"])
    assert res.exit_code == 1 and "text column 'nope' is not in" in res.output
    res = runner.invoke(app, ["fit-text", str(data), "--model", "roberta-base", "--quiet"])
    assert res.exit_code == 1 and "To fix it" in res.output
    res = runner.invoke(app, ["fit-text", str(data), "--model", str(model), "--max-length", "0", "--quiet"])
    assert res.exit_code == 1 and "invalid option max_length=0: Input should be greater than 1." in " ".join(res.output.split())
    assert "validation error for" not in res.output  # one line in the CLI's words, as `fit` says it
    res = runner.invoke(app, ["predict-text", str(tmp_path), "good"])
    assert res.exit_code == 1 and "error" in res.output
    res = runner.invoke(app, ["predict-text", str(run), "   ", "--json"])
    assert res.exit_code == 1 and "empty text" in res.stdout


def test_predict_text_file_reads_the_sentences_of_a_labelled_txt(fitted, tmp_path: Path):
    """predict-text --file on the labelled sentence<TAB>label .txt classifies the sentences (the label used to be fed to
    the model as part of each text) and says so; the results are those of the sentences given as arguments."""
    _, run, _ = fitted
    labelled = tmp_path / "labelled.txt"
    labelled.write_text("great phone\tpos\nawful battery\tneg\n")
    res = runner.invoke(app, ["predict-text", str(run), "--file", str(labelled), "--json"])
    assert res.exit_code == 0, res.output
    expected = json.loads(runner.invoke(app, ["predict-text", str(run), "great phone", "awful battery", "--json"]).stdout)
    same(json.loads(res.stdout), expected)
    assert "labelled.txt is a labelled file" in " ".join(res.stderr.split())


def test_predict_text_file_reports_rows_it_cannot_parse_and_takes_an_encoding(fitted, tmp_path: Path):
    _, run, _ = fitted
    f = tmp_path / "p.csv"
    f.write_text("text,source\ngreat phone,a\nbad, awful, broken,b\nlove it,d\n")
    res = runner.invoke(app, ["predict-text", str(run), "--file", str(f), "--json"])
    assert res.exit_code == 0, res.output
    assert [r["text"] for r in json.loads(res.stdout)] == ["great phone", "love it"]
    flat = " ".join(res.stderr.split())
    assert "skipped 1 row(s) of" in flat and "p.csv:3: unparsable line: 4 fields, the header has 2" in flat
    latin = tmp_path / "l.txt"
    latin.write_bytes("caf\u00e9 great\nawful\n".encode("latin-1"))
    res = runner.invoke(app, ["predict-text", str(run), "--file", str(latin)])
    assert res.exit_code == 1 and "--encoding latin-1" in " ".join(res.output.split())
    res = runner.invoke(app, ["predict-text", str(run), "--file", str(latin), "--encoding", "latin-1", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["text"] for r in json.loads(res.stdout)] == ["caf\u00e9 great", "awful"]
    res = runner.invoke(app, ["fit-text", str(latin), "--encoding", "bogus", "--quiet"])
    assert res.exit_code == 1 and "unknown text encoding 'bogus'" in res.output and "Traceback" not in res.output


def test_a_max_length_beyond_the_encoders_positions_is_said(fitted, tmp_path: Path):
    data, _, model = fitted
    res = runner.invoke(app, ["fit-text", str(data), "--model", str(model), "--max-length", "1000", "--out", str(tmp_path / "r"),
                              "--quiet", "--no-report", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "max_length 1000 is more than" in " ".join(res.output.split()) and "cut at 64 tokens" in " ".join(res.output.split())
    assert json.loads((tmp_path / "r" / "model" / "config.json").read_text())["max_length"] == 64



@pytest.fixture(scope="module")
def leaky_run(fitted, tmp_path_factory):
    """fit-text --test FILE --no-report on data with skipped rows in both files, a duplicate text with conflicting labels
    and a test row that is a training text upper-cased + '!!'; (run folder, test file, the shouted text, fit's stderr)."""
    _, _, model = fitted
    root = tmp_path_factory.mktemp("leaky")
    rows = sentiment_rows(30, seed=2)
    with open(root / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([*rows, ["", "pos"], ["the case broke", "neg"], ["the case broke", "pos"]])
    shouted = rows[1][0].upper() + "!!"
    with open(root / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([*sentiment_rows(8, seed=7), [shouted, rows[1][1]], ["", "neg"]])
    run = root / "run"
    res = runner.invoke(app, ["fit-text", str(root / "train.csv"), "--test", str(root / "test.csv"), "--model", str(model),
                              "--max-length", "16", "--out", str(run), "--quiet", "--device", "cpu", "--no-report"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    return run, root / "test.csv", shouted, " ".join(res.stderr.split())


def test_near_duplicate_leakage_is_checked_at_fit_time_without_a_report(leaky_run):
    """With --no-report, test rows that are training texts in other case and punctuation were never warned about (only
    the report checked): the fit now checks them, records them in metrics.json and config.json and prints them."""
    run, _, shouted, stderr = leaky_run
    assert "near-identical texts" in stderr and repr(shouted[:60]) in stderr
    for saved in (json.loads((run / "metrics.json").read_text())["data"], json.loads((run / "config.json").read_text())["data"]):
        near = saved["cross_split_near_duplicates"]
        assert any(d["text"] == shouted and d["b_split"] == "test" and d["b"].startswith("test.csv:") for d in near)


def test_skipped_rows_are_said_per_file_with_conflicting_duplicates_counted(leaky_run):
    """Skipped rows of --test FILE used to be said of 'the data' (metrics.json dropped the files), and duplicates with
    conflicting labels were only 'kept'."""
    *_, stderr = leaky_run
    assert "skipped 1 row(s) of train.csv" in stderr and "skipped 1 row(s) of test.csv" in stderr
    assert "duplicate text(s) in train.csv, 1 with conflicting labels" in stderr


def test_evaluate_on_a_text_run_points_to_evaluate_text(leaky_run):
    run, test, *_ = leaky_run
    res = runner.invoke(app, ["evaluate", str(run), str(test)])
    flat = " ".join(res.output.split())
    assert res.exit_code == 1 and "is a text model" in flat and "transferkit evaluate-text" in flat
    assert "not a folder" not in flat


def test_label_spellings_are_merged_and_said_by_fit_text_and_evaluate_text(fitted, tmp_path: Path):
    """'Pos'/'pos' were two classes at fit time and 'POS' an unknown label at evaluation time, without a word."""
    data, run, model = fitted
    rows = sentiment_rows(20, seed=3)
    f = tmp_path / "mixed.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([(t, "Pos" if lab == "pos" and i % 6 == 0 else lab) for i, (t, lab) in enumerate(rows)])
    out = tmp_path / "r"
    res = runner.invoke(app, ["fit-text", str(f), "--model", str(model), "--max-length", "16", "--out", str(out), "--quiet",
                              "--device", "cpu", "--no-report"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    n = sum(1 for i, (_, lab) in enumerate(rows) if lab == "pos" and i % 6 == 0)
    assert "labels merged in mixed.csv" in res.stderr and f"'Pos' → 'pos' ({n} rows)" in res.stderr
    assert json.loads((out / "config.json").read_text())["data"]["classes"] == ["neg", "pos"]
    assert json.loads((out / "config.json").read_text())["data"]["files"][0]["label_merges"] == [{"label": "Pos", "merged_into": "pos", "rows": n}]
    shouted = tmp_path / "shouted.csv"
    with open(shouted, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([(t, lab.upper()) for t, lab in sentiment_rows(5, seed=9)])
    res = runner.invoke(app, ["evaluate-text", str(run), str(shouted), "--include-training-texts"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "skipped" not in res.stderr and "labels merged into the model's classes" in res.stderr and "'POS' → 'pos' (5 rows)" in res.stderr
    assert "(n=10)" in res.stdout


def test_predict_text_refuses_a_file_given_as_a_text_and_says_what_is_empty(fitted, tmp_path: Path):
    """`predict-text RUN texts.txt` classified the string 'texts.txt'; an empty --file said 'no texts given ... with --file'
    (an empty .csv: 'cannot tell the text column ... (columns: [])'); a UTF-8 BOM on stdin stayed in the first text."""
    _, run, _ = fitted
    f = tmp_path / "texts.txt"
    f.write_text("love it\nhate it\n")
    for command in ("predict-text", "predict"):
        res = runner.invoke(app, [command, str(run), str(f), "--json"])
        flat = " ".join(res.output.split())
        assert res.exit_code == 1 and f"'{f}' is a file" in flat and f"--file {f}" in flat, res.output
    for name, content, said in (("empty.txt", "", "is empty"), ("empty.csv", "", "is empty"),
                                ("header.csv", "text,label\n", "has a header (text, label) but no rows")):
        (tmp_path / name).write_text(content)
        res = runner.invoke(app, ["predict-text", str(run), "--file", str(tmp_path / name)])
        flat = " ".join(res.output.split())
        assert res.exit_code == 1 and said in flat and "no texts given" not in flat and "cannot tell" not in flat, res.output
    res = runner.invoke(app, ["predict-text", str(run), "--json"], input="\ufeffgreat phone\r\nawful battery\n")
    assert res.exit_code == 0, res.output
    assert [r["text"] for r in json.loads(res.stdout)] == ["great phone", "awful battery"]
    headerless = tmp_path / "x.csv"
    headerless.write_text("great phone love it\nawful battery\nworks fine\n")
    res = runner.invoke(app, ["predict-text", str(run), "--file", str(headerless), "--json"])
    assert res.exit_code == 0, res.output
    assert [r["text"] for r in json.loads(res.stdout)] == ["great phone love it", "awful battery", "works fine"]
    assert "has one column and no header" in " ".join(res.stderr.split())


def test_fit_text_names_a_class_too_rare_for_its_splits_and_leaves_no_run_folder(fitted, tmp_path: Path):
    _, _, model = fitted
    f = tmp_path / "once.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([*sentiment_rows(10, seed=4), ("the box is a box", "neutral")])
    for extra, said in (([], "test split: class 'neutral' (1 distinct text)"), (["--cv", "3"], "--cv 3: class 'neutral' (1 example)")):
        out = tmp_path / f"r{len(extra)}"
        res = runner.invoke(app, ["fit-text", str(f), "--model", str(model), "--out", str(out), "--quiet", "--device", "cpu", *extra])
        flat = " ".join(res.output.split())
        assert res.exit_code == 1 and said in flat and "Traceback" not in flat, res.output
        assert not out.exists()  # the --cv check used to come after the run folder was started


@pytest.mark.parametrize(("argv", "said", "not_said"), [
    (["transferkit", "fit-text", "data.csv", "--out", "r"], "transferkit fit-text --resume RUN", "256 images"),
    (["transferkit", "predict-text", "RUN", "good"], "run the same command again", "images"),
    (["transferkit", "fit", "data/", "--out", "r"], "transferkit fit --resume RUN", "fit-text"),
    # every other command got the fit message ("stored every 256 images ... transferkit fit --resume RUN")
    (["transferkit", "rank", "reviews.csv", "-q"], "the feature cache", "--resume"),
    (["transferkit", "predict", "RUN", "good phone"], "Nothing was written", "--resume"),
    (["transferkit", "export", "RUN", "--out", "x"], "export folder was not finished", "--resume"),
    (["transferkit", "-q"], "Nothing was written", "--resume"),
])
def test_a_ctrl_c_before_the_command_runs_is_said_in_the_words_of_that_command(monkeypatch, capsys, argv, said, not_said):
    """A Ctrl-C during fit-text's imports said "features ... stored every 256 images ... `transferkit fit --resume RUN`"."""
    import sys

    import transferkit.cli.app as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        cli.main()
    flat = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 130 and said in flat and not_said not in flat, flat


def test_evaluate_text_on_one_class_says_why_roc_auc_is_undefined(fitted, tmp_path: Path):
    """evaluate-text printed `ROC-AUC nan` with no reason; `evaluate` and the report say why a metric is undefined."""
    _, run, _ = fitted
    f = tmp_path / "only_pos.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([r for r in sentiment_rows(6, seed=5) if r[1] == "pos"])
    res = runner.invoke(app, ["evaluate-text", str(run), str(f), "--include-training-texts"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "nan" not in res.output and "ROC-AUC undefined" in res.stdout
    assert "ROC-AUC undefined: no example of class 'neg' in only_pos.csv (6 examples): ROC-AUC needs both classes" in res.stderr
    m = json.loads(runner.invoke(app, ["evaluate-text", str(run), str(f), "--include-training-texts", "--json"]).stdout)
    assert m["binary"]["roc_auc"] is None and "roc_auc" in m["undefined"]


def test_a_non_utf8_locale_neither_ends_a_run_with_a_traceback_nor_mangles_arguments():
    # LC_ALL=C: printing "…" after a finished fit-text raised UnicodeEncodeError (exit 1, traceback), and a text argument
    # with an emoji reached the tokenizer as lone surrogates (TypeError: TextEncodeInput must be Union[...])
    import subprocess
    import sys

    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    code = ("import sys; from transferkit.cli.app import _never_fail_on_output; from transferkit.cli.text_commands import "
            "read_text_inputs; _never_fail_on_output(); print('saved \\u2026 \\u5065\\u5eb7'); "
            "print(ascii(read_text_inputs(sys.argv[1:], None, None)))")
    done = subprocess.run([sys.executable, "-c", code, "love it \U0001F600"], capture_output=True, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    lines = done.stdout.decode("ascii").splitlines()
    assert lines[0].startswith("saved ") and lines[1] == ascii(["love it \U0001F600"])
