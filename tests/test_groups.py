"""Subject-grouped splits (``groups``): one subject's images never on both sides of a carve."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import transferkit as tk
from conftest import TINY, write_class_image
from transferkit.data import load_image_folder
from transferkit.data.folder import _read_records, _scan_files, _stratified
from transferkit.data.subjects import PatternSubjects, SubjectTable, compile_groups, subject_id
from transferkit.errors import DataError

pytestmark = pytest.mark.usefixtures("torch_single_thread")

PATTERN = r"person(\d+)_"


def write_subjects(folder: Path, classes=("cat", "dog"), *, subjects: int = 10, first: int = 0, seed: int = 0) -> Path:
    """``folder/<class>/person<N>_<class>_<i>.png``: ``subjects`` subjects per class, 1 to 4 images each."""
    rng = np.random.default_rng(seed)
    n = first
    for ci, cls in enumerate(classes):
        for k in range(subjects):
            for i in range(1 + k % 4):
                write_class_image(folder / cls / f"person{n}_{cls}_{i}.png", ci, rng, size=16)
            n += 1
    return folder


def subjects_of(records) -> set[str]:
    rx = compile_groups(PATTERN)
    return {subject_id(r.path.name, rx) for r in records}


def labels_of(records) -> set[int]:
    return {r.label for r in records}


def scan(folder: Path, classes: list[str]):
    """The records of ``folder/<class>/`` in the loader's own scan order."""
    recs, _ = _read_records(_scan_files({c: folder / c for c in classes}), {c: i for i, c in enumerate(classes)},
                            max_pixels=10**8, progress=False, label="x")
    return recs


@pytest.fixture
def subject_folder(tmp_path: Path) -> Path:
    """train/ (2 classes x 12 subjects, 1-4 images each) + test/ (2 x 3 other subjects)."""
    root = tmp_path / "subj"
    write_subjects(root / "train", subjects=12, first=0)
    write_subjects(root / "test", subjects=3, first=100, seed=1)
    return root


# ---- (a) grouped carve from train --------------------------------------------------------


def test_grouped_val_carve_keeps_subjects_on_one_side_for_every_seed(subject_folder):
    n_train = sum(1 for _ in (subject_folder / "train").rglob("*.png"))
    leaky_seeds = 0
    for seed in range(5):
        s = load_image_folder(subject_folder, val_fraction=0.2, seed=seed, groups=PATTERN, progress=False)
        assert not subjects_of(s.train) & subjects_of(s.val), f"seed {seed}: a subject is in train and val"
        assert labels_of(s.train) == labels_of(s.val) == {0, 1}, f"seed {seed}: a side lost a class"
        assert len(s.train) + len(s.val) == n_train
        assert len(subjects_of(s.val)) == 24 // 5  # one fold of StratifiedGroupKFold(5): 2 subjects per class
        g = s.summary()["groups"]
        assert g["num_subjects_in_two_splits"] == 0 and g["subjects_in_two_splits"] == []
        assert g["num_subjects"] == {"train": 24 - len(subjects_of(s.val)), "val": len(subjects_of(s.val)), "test": 6}
        assert g["num_unmatched"] == 0 and g["pattern"] == PATTERN
        assert s.val_source == f"carved from train (20%, stratified, grouped by pattern '{PATTERN}': 24 subjects, seed {seed})"
        plain = load_image_folder(subject_folder, val_fraction=0.2, seed=seed, progress=False)
        leaky_seeds += bool(subjects_of(plain.train) & subjects_of(plain.val))
    assert leaky_seeds > 0  # the same data without groups does leak: the check above can fail


def test_too_few_subjects_is_a_clear_error(tmp_path):
    root = tmp_path / "few"
    write_subjects(root / "train", subjects=3)  # 6 subjects, 15 % -> 7 folds needed
    write_subjects(root / "test", subjects=2, first=50)
    with pytest.raises(DataError, match=r"too few subjects \(6\).*val/ folder.*--groups"):
        load_image_folder(root, val_fraction=0.15, groups=PATTERN, progress=False)
    assert len(load_image_folder(root, val_fraction=0.15, progress=False).val) > 0  # without groups: carved as before

    one = tmp_path / "one"
    write_subjects(one / "train", subjects=6)
    for p in (one / "train" / "dog").glob("*.png"):  # every dog image from a single subject
        p.rename(p.with_name("person99_" + p.name.split("_", 1)[1]))
    write_subjects(one / "test", subjects=2, first=50)
    with pytest.raises(DataError, match=r"\['dog'\] have images of fewer than 2 subjects"):
        load_image_folder(one, val_fraction=0.25, groups=PATTERN, progress=False)


def test_carve_takes_a_fold_with_every_class_else_errors(subject_folder, monkeypatch):
    import sklearn.model_selection as ms

    records = scan(subject_folder / "train", ["cat", "dog"])
    labels = np.array([r.label for r in records])
    bad = (np.flatnonzero(labels == 1), np.flatnonzero(labels == 0))  # held-out: only cats
    good = (np.arange(1, len(records)), np.array([0, len(records) - 1]))
    folds: list = []

    class FakeSGKF:
        def __init__(self, **kwargs):
            pass

        def split(self, X, y, groups):
            return iter(folds)

    monkeypatch.setattr(ms, "StratifiedGroupKFold", FakeSGKF)
    folds[:] = [bad, good]
    keep, hold = _stratified(records, 0.2, 0, "validation", ["cat", "dog"], PatternSubjects(PATTERN))
    assert [r.path for r in hold] == sorted([records[0].path, records[-1].path], key=str)
    folds[:] = [bad]
    with pytest.raises(DataError, match=r"keeps every class on both sides.*\['cat', 'dog'\].*--groups"):
        _stratified(records, 0.2, 0, "validation", ["cat", "dog"], PatternSubjects(PATTERN))


# ---- (b) without a pattern nothing changes -----------------------------------------------


def test_without_groups_the_split_is_the_plain_stratified_one(subject_folder, tmp_path):
    train = scan(subject_folder / "train", ["cat", "dog"])
    for seed in (0, 3):
        s = load_image_folder(subject_folder, val_fraction=0.2, seed=seed, progress=False)
        keep, hold = _stratified(train, 0.2, seed, "validation", ["cat", "dog"])
        assert [r.path for r in s.train] == [r.path for r in keep]
        assert [r.path for r in s.val] == [r.path for r in hold]
        assert s.val_source == f"carved from train (20%, stratified, seed {seed})"
        assert s.summary()["groups"] is None

    flat = write_subjects(tmp_path / "flat", subjects=10)
    s = load_image_folder(flat, test_fraction=0.2, val_fraction=0.25, seed=2, progress=False)
    rest, test = _stratified(scan(flat, ["cat", "dog"]), 0.2, 2, "test", ["cat", "dog"])
    keep, hold = _stratified(rest, 0.25, 2, "validation", ["cat", "dog"])
    assert ([r.path for r in s.test], [r.path for r in s.val]) == ([r.path for r in test], [r.path for r in hold])


# ---- (c) unmatched names, (d) bad patterns -----------------------------------------------


def test_subject_id_first_matching_group_else_whole_match():
    kermany = compile_groups(r"(person\d+)_|(IM-\d+)-")
    assert subject_id("person1_bacteria_1.jpeg", kermany) == "person1"
    assert subject_id("IM-0115-0001.jpeg", kermany) == "IM-0115"
    assert subject_id("NORMAL2-IM-0362-0001.jpeg", kermany) == "IM-0362"
    assert subject_id("scan.jpeg", kermany) is None
    assert subject_id("leaf12_a.png", compile_groups(r"leaf\d+")) == "leaf12"  # no group: the whole match


def test_unmatched_file_names_are_counted_and_are_their_own_subject(subject_folder):
    rng = np.random.default_rng(5)
    for i in range(3):
        write_class_image(subject_folder / "train" / "cat" / f"scan_{i}.png", 0, rng, size=16)
    write_class_image(subject_folder / "test" / "dog" / "IM-7-1.png", 1, rng, size=16)
    s = load_image_folder(subject_folder, val_fraction=0.2, groups=PATTERN, progress=False)
    g = s.summary()["groups"]
    assert g["num_unmatched"] == 4
    assert sum(g["num_subjects"].values()) == 24 + 6 + 4  # each unmatched file counts as one subject
    assert g["num_subjects_in_two_splits"] == 0
    assert "27 subjects" in s.val_source  # 24 matched + 3 unmatched train files


def test_invalid_pattern_is_a_data_error_saying_what_to_pass(subject_folder, tmp_path):
    with pytest.raises(DataError, match="--groups") as info:
        load_image_folder(subject_folder, groups=r"person(\d+_", progress=False)
    assert "person(\\d+)_" in str(info.value)  # an example of a valid pattern
    with pytest.raises(DataError, match="--groups"):
        tk.fit(subject_folder, model=TINY, weights="none", groups="[", out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_fit_passes_groups(subject_folder, tmp_path):
    from typer.testing import CliRunner

    from transferkit.cli.app import app

    result = CliRunner().invoke(app, ["fit", str(subject_folder), "--model", TINY, "--weights", "none", "--groups", "person(",
                                      "--out", str(tmp_path / "r"), "-q"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 1
    assert "--groups 'person(' is not a valid regular expression" in result.output


# ---- (e) explicit folders that share subjects --------------------------------------------


def test_explicit_test_folder_sharing_a_subject_is_counted_not_raised(subject_folder):
    rng = np.random.default_rng(9)
    write_class_image(subject_folder / "test" / "cat" / "person3_cat_9.png", 0, rng, size=16)  # person3 is a train subject
    s = load_image_folder(subject_folder, val_fraction=0.2, groups=PATTERN, progress=False)
    g = s.summary()["groups"]
    assert g["num_subjects_in_two_splits"] == 1
    (shared,) = g["subjects_in_two_splits"]
    assert shared["subject"] == "3"
    assert shared["splits"] in (["train", "test"], ["val", "test"])
    assert not subjects_of(s.train) & subjects_of(s.val)


def test_explicit_val_folder_sharing_subjects_is_counted(tmp_path):
    root = tmp_path / "d"
    write_subjects(root / "train", subjects=6)
    write_subjects(root / "val", subjects=2, first=0, seed=1)  # persons 0-3: train subjects too
    write_subjects(root / "test", subjects=2, first=50, seed=2)
    s = load_image_folder(root, groups=PATTERN, progress=False)
    g = s.summary()["groups"]
    assert s.val_source == "val/ folder"
    assert g["num_subjects_in_two_splits"] == 4
    assert g["subjects_in_two_splits"] == [{"subject": str(i), "splits": ["train", "val"]} for i in range(4)]


def test_cli_prints_a_leakage_warning_for_shared_subjects(monkeypatch):
    from transferkit.cli import app as cli

    buf = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=buf, width=200, no_color=True))
    summary = {"groups": {"rule": "pattern 'p[a-z](\\d+)'", "pattern": "p[a-z](\\d+)", "num_unmatched": 2, "num_subjects_in_two_splits": 7,
                          "subjects_in_two_splits": [{"subject": f"[s]{i}", "splits": ["train", "test"]} for i in range(7)]}}
    cli._print_data_notes(summary)
    out = buf.getvalue()
    assert "leakage warning: 7 subject(s) have images in two splits: [s]0 (train/test)" in out
    assert "and 2 more" in out
    assert "2 file(s) not named by the pattern 'p[a-z](\\d+)'" in out
    buf.truncate(0)
    cli._print_data_notes({"groups": None})
    assert buf.getvalue() == ""


# ---- (f) one folder: train / val / test all carved ---------------------------------------


def test_single_folder_with_groups_keeps_subjects_disjoint_across_three_splits(tmp_path):
    root = write_subjects(tmp_path / "flat", classes=("a", "b", "c"), subjects=12)
    for seed in range(3):
        s = load_image_folder(root, test_fraction=0.2, val_fraction=0.25, seed=seed, groups=PATTERN, progress=False)
        tr, va, te = (subjects_of(s.split(x)) for x in ("train", "val", "test"))
        assert not (tr & va or tr & te or va & te), f"seed {seed}: a subject is in two splits"
        assert labels_of(s.train) == labels_of(s.val) == labels_of(s.test) == {0, 1, 2}
        assert len(tr | va | te) == 36
        assert s.summary()["groups"]["num_subjects"] == {"train": len(tr), "val": len(va), "test": len(te)}
        assert s.summary()["groups"]["num_subjects_in_two_splits"] == 0


# ---- (g) fit records the pattern ---------------------------------------------------------


def test_fit_with_groups_writes_the_pattern_and_evaluation_rebuilds_the_same_split(tmp_path, tiny_weights):
    from transferkit.evaluation.predictions import load_run_splits

    root = tmp_path / "data"
    write_subjects(root / "train", subjects=8)
    write_subjects(root / "test", subjects=2, first=50, seed=1)
    out = tmp_path / "run"
    tk.fit(root, model=TINY, weights=str(tiny_weights), out=out, epochs=3, val_fraction=0.25, groups=PATTERN,
           progress=False, report=False)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["fit"]["data"]["groups"] == PATTERN
    assert cfg["data"]["groups"]["pattern"] == PATTERN
    assert cfg["data"]["groups"]["num_subjects_in_two_splits"] == 0
    assert "grouped by pattern" in cfg["data"]["val_source"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["groups"]["num_subjects"]["test"] == 4

    rebuilt = load_run_splits(out, progress=False)
    grouped = load_image_folder(root, val_fraction=0.25, groups=PATTERN, progress=False)
    assert [r.path for r in rebuilt.val] == [r.path for r in grouped.val]
    assert rebuilt.groups == PATTERN


# ---- (c) subjects from a table (--groups-file): ids that live in metadata, not in file names --------------------------


def write_anonymous(folder: Path, *, subjects: int = 10, first: int = 0, seed: int = 0) -> dict[str, str]:
    """``folder/<class>/scan_<k>.png`` with no subject in the name; returns relative path -> subject (``P<n>``)."""
    rng = np.random.default_rng(seed)
    table, n, k = {}, first, 0
    for ci, cls in enumerate(("cat", "dog")):
        for _ in range(subjects):
            for _ in range(1 + n % 4):
                write_class_image(folder / cls / f"scan_{first * 100 + k}.png", ci, rng, size=16)
                table[f"{folder.name}/{cls}/scan_{first * 100 + k}.png"] = f"P{n}"
                k += 1
            n += 1
    return table


def write_table(path: Path, rows: dict[str, str], header=("file", "subject"), sep=",", encoding="utf-8") -> Path:
    lines = [sep.join(header)] + [f"{f}{sep}{s}" for f, s in rows.items()]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


@pytest.fixture
def table_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "anon"
    table = write_anonymous(root / "train", subjects=12)
    table |= write_anonymous(root / "test", subjects=3, first=50, seed=1)
    return root, table


def test_a_subject_table_keeps_each_subject_on_one_side_of_the_carve(table_folder, tmp_path):
    root, table = table_folder
    csv_path = write_table(tmp_path / "subjects.csv", table)
    s = load_image_folder(root, val_fraction=0.25, groups_file=csv_path, progress=False)
    rule = s.subjects
    train_subjects, val_subjects = ({rule.subject(r.path) for r in s.split(x)} for x in ("train", "val"))
    assert None not in train_subjects | val_subjects and not train_subjects & val_subjects
    assert labels_of(s.val) == {0, 1}
    g = s.summary()["groups"]
    assert g["table"] == str(csv_path) and g["columns"] == ["file", "subject"] and g["num_unmatched"] == 0
    assert g["num_subjects_in_two_splits"] == 0 and "grouped by table 'subjects.csv'" in s.val_source
    # without the table the same seed's plain carve splits some subject (this data has 1-4 images per subject)
    plain = load_image_folder(root, val_fraction=0.25, progress=False)
    plain_train, plain_val = ({table[f"train/{r.path.parent.name}/{r.path.name}"] for r in plain.split(x)} for x in ("train", "val"))
    assert plain_train & plain_val


def test_subject_table_columns_are_found_by_their_usual_names(table_folder, tmp_path):
    root, table = table_folder
    names = {f.split("/")[-1]: s for f, s in table.items()}  # bare file names, as a hospital export lists them
    csv_path = write_table(tmp_path / "Data_Entry.csv", names, header=("Image Index", "Patient ID"), sep=";", encoding="utf-8-sig")
    rule = SubjectTable(csv_path)
    assert rule.columns == ("Image Index", "Patient ID")
    some = next(iter(table))
    assert rule.subject(root / some) == table[some]


def test_a_path_entry_wins_over_a_bare_name_and_unlisted_files_are_their_own_subject(table_folder, tmp_path):
    root, table = table_folder
    first = next(iter(table))
    rows = {first.split("/")[-1]: "bare", first: "exact"}
    rule = SubjectTable(write_table(tmp_path / "t.csv", rows))
    assert rule.subject(root / first) == "exact"
    assert rule.subject(root / "test" / "cat" / first.split("/")[-1]) == "bare"  # same name elsewhere: the bare entry
    assert rule.subject(root / "train" / "cat" / "other.png") is None
    s = load_image_folder(root, groups_file=tmp_path / "t.csv", progress=False)
    assert s.summary()["groups"]["num_unmatched"] == sum(len(s.split(x)) for x in ("train", "val", "test")) - 1


@pytest.mark.parametrize("content, encoding, message", [
    ("name,owner\nx.png,P1\n", "utf-8", r"cannot tell which columns.*\['name', 'owner'\].*'file' and 'subject'"),
    ("file,subject\nx.png,P1\n".replace("P1", "P\xe9"), "latin-1", "not UTF-8"),
    ("file,subject\nx.png\n", "utf-8", r"line 2: 1 field\(s\)"),
    ("file,subject\nx.png,P1\nx.png,P2\n", "utf-8", r"line 3: 'x.png' is listed with two subjects.*relative to the data folder"),
    ("file,subject\nx.png,\n", "utf-8", "names no file with a subject"),
    ("", "utf-8", "is empty"),
])
def test_bad_subject_tables_are_clear_errors(tmp_path, content, encoding, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content.encode(encoding))
    with pytest.raises(DataError, match=message):
        SubjectTable(path)


def test_groups_and_groups_file_together_or_a_missing_table_are_refused(table_folder, tmp_path):
    root, table = table_folder
    with pytest.raises(DataError, match="either --groups PATTERN .* or --groups-file CSV"):
        load_image_folder(root, groups=PATTERN, groups_file=write_table(tmp_path / "t.csv", table), progress=False)
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(root, groups_file=tmp_path / "missing.csv", progress=False)


def test_fit_with_a_subject_table_records_it_and_rebuilds_the_same_splits(table_folder, tiny_weights, tmp_path):
    from typer.testing import CliRunner

    from transferkit.cli.app import app
    from transferkit.evaluation.predictions import load_run_splits

    root, table = table_folder
    csv_path = write_table(tmp_path / "subjects.csv", table)
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["fit", str(root), "--model", TINY, "--weights", str(tiny_weights), "--epochs", "3",
                                   "--groups-file", str(csv_path), "--out", str(out), "--quiet", "--no-report"],
                             env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["fit"]["data"]["groups_file"] == str(csv_path) and cfg["data"]["groups"]["table"] == str(csv_path)
    rebuilt = load_run_splits(out, progress=False)
    assert [r.path for r in rebuilt.val] == [r.path for r in load_image_folder(root, groups_file=csv_path, progress=False).val]
    both = CliRunner().invoke(app, ["fit", str(root), "--model", TINY, "--groups", PATTERN, "--groups-file", str(csv_path), "-q"])
    assert both.exit_code == 1 and "not both" in both.output and "Traceback" not in both.output


def test_rank_scores_with_subject_folds_from_a_table(table_folder, tiny_weights, tmp_path, monkeypatch):
    """The ranking's CV scores get one subject id per training image from the table (not one per file)."""
    from transferkit.selection import rank as rank_module

    root, table = table_folder
    csv_path = write_table(tmp_path / "subjects.csv", table)
    seen = []
    original = rank_module._evaluate_candidate

    def spy(*args, groups=None, **kwargs):
        seen.append(groups)
        return original(*args, groups=groups, **kwargs)

    monkeypatch.setattr(rank_module, "_evaluate_candidate", spy)
    ranking = tk.rank_backbones(root, [f"{TINY}:{tiny_weights}"], groups_file=csv_path, progress=False, latency_runs=2)
    (subjects,) = seen
    assert len(subjects) == len(set(table)) - sum(f.startswith("test/") for f in table)  # train + val images
    assert set(subjects) <= set(table.values()) and len(set(subjects)) < len(subjects)
    assert ranking.data["groups"]["table"] == str(csv_path)
