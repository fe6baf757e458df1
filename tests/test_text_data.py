"""Text data: formats, column detection, bad input (errors or counted skips), grouped stratified splits."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from conftest import SHARED_DATA, requires_shared
from transferkit.data.text import (
    find_text_leakage,
    grouped_stratified_split,
    load_text_dataset,
    read_text_table,
    read_texts,
    stratified_folds,
)
from transferkit.errors import DataError

POS = ["great phone", "love it", "excellent battery", "works great", "very good value", "good sound", "happy with it", "best case ever"]
NEG = ["bad phone", "hate it", "awful battery", "broke fast", "very poor value", "bad sound", "returned it", "worst case ever"]


def write_csv(path: Path, rows, header=("text", "label")) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def balanced_rows(n_per_class: int = 8):
    return [(t, "pos") for t in POS[:n_per_class]] + [(t, "neg") for t in NEG[:n_per_class]]


def test_uci_txt_splits_at_last_tab_and_only_on_newline(tmp_path: Path):
    p = tmp_path / "x_labelled.txt"
    p.write_bytes("a\tb with a tab\t1\nnext\u0085line stays one sentence\t0\n\nno tab here\nok\t1\r\n".encode())
    table = read_text_table(p)
    assert [r.text for r in table.records] == ["a\tb with a tab", "next\u0085line stays one sentence", "ok"]
    assert table.classes == ["0", "1"]
    assert [table.classes[r.label] for r in table.records] == ["1", "0", "1"]
    assert len(table.skipped) == 1 and "no tab" in table.skipped[0].reason and table.skipped[0].where.endswith(":4")


def test_csv_tsv_jsonl_with_detected_columns(tmp_path: Path):
    rows = balanced_rows(3)
    csv_t = read_text_table(write_csv(tmp_path / "a.csv", [(lab, t, "x") for t, lab in rows], header=("Sentiment", "Review", "id")))
    assert (csv_t.text_col, csv_t.label_col) == ("Review", "Sentiment")
    tsv = tmp_path / "a.tsv"
    tsv.write_text("sentence\tclass\n" + "\n".join(f"{t}\t{lab}" for t, lab in rows) + "\n")
    jl = tmp_path / "a.jsonl"
    jl.write_text("\n".join(json.dumps({"content": t, "target": lab}) for t, lab in rows) + "\n")
    for table in (csv_t, read_text_table(tsv), read_text_table(jl)):
        assert table.classes == ["neg", "pos"]
        assert sorted(table.texts) == sorted(t for t, _ in rows)


def test_two_unnamed_columns_guess_the_longer_as_text(tmp_path: Path):
    table = read_text_table(write_csv(tmp_path / "a.csv", [(lab, t) for t, lab in balanced_rows(3)], header=("a", "b")))
    assert (table.text_col, table.label_col) == ("b", "a")


def test_explicit_missing_column_and_undetectable_columns_are_errors(tmp_path: Path):
    p = write_csv(tmp_path / "a.csv", [(t, lab, 1) for t, lab in balanced_rows(3)], header=("words", "y_true", "id"))
    with pytest.raises(DataError, match="cannot tell the text and label column") as e:
        read_text_table(p)
    assert "--text-col" in str(e.value)
    with pytest.raises(DataError, match=r"text column 'body' is not in .*\['words', 'y_true', 'id'\]"):
        read_text_table(p, text_col="body", label_col="y_true")
    assert read_text_table(p, text_col="words", label_col="y_true").classes == ["neg", "pos"]


def test_integer_labels_sort_numerically(tmp_path: Path):
    rows = [(f"text {i}", str(lab)) for i, lab in enumerate([10, 2, 10, 2, 1, 1])]
    table = read_text_table(write_csv(tmp_path / "a.csv", rows))
    assert table.classes == ["1", "2", "10"]
    jl = tmp_path / "a.jsonl"
    jl.write_text("\n".join(json.dumps({"text": t, "label": int(lab)}) for t, lab in rows))
    assert read_text_table(jl).classes == ["1", "2", "10"]


def test_wrong_encoding_names_the_line(tmp_path: Path):
    p = tmp_path / "a.csv"
    p.write_bytes("text,label\ngood,1\n".encode() + "caf\u00e9 bad,0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid utf-8: line 3") as e:
        read_text_table(p)
    assert "--encoding" in str(e.value)
    table = read_text_table(p, encoding="latin-1")
    assert "caf\u00e9 bad" in table.texts


def test_bad_rows_are_skipped_counted_and_listed(tmp_path: Path):
    p = tmp_path / "a.jsonl"
    lines = [json.dumps({"text": "good", "label": 1}), json.dumps({"text": "  ", "label": 0}), json.dumps({"text": "bad"}),
             json.dumps({"text": "meh", "label": None}), "{not json", json.dumps([1, 2]), json.dumps({"text": "awful", "label": 0})]
    p.write_text("\n".join(lines) + "\n")
    table = read_text_table(p)
    assert table.texts == ["good", "awful"]
    reasons = Counter(s.reason.split(" (")[0].split(":")[0] for s in table.skipped)
    assert reasons == {"empty text": 1, "missing label": 2, "unparsable line": 2}
    assert {s.where for s in table.skipped} == {"a.jsonl:2", "a.jsonl:3", "a.jsonl:4", "a.jsonl:5", "a.jsonl:6"}
    assert table.summary()["num_skipped"] == 5


def test_an_unclosed_quote_is_named_and_a_quoted_multi_line_text_is_kept(tmp_path: Path):
    p = tmp_path / "q.csv"
    p.write_text('text,label\n"two\nlines",pos\nfine,pos\nbad,neg\n"oops,neg\nawful,neg\nworse,neg\n', encoding="utf-8")
    table = read_text_table(p)
    assert table.texts == ["two\nlines", "fine", "bad"]  # a quoted text over two lines with its label is a good row
    assert len(table.skipped) == 1 and table.skipped[0].where == "q.csv:6"
    assert "a quote opened on line 6 is never closed (the row runs to line 8" in table.skipped[0].reason
    # when that leaves too few classes, the error shows the first skipped row's reason
    (tmp_path / "r.csv").write_text('text,label\n"oops,neg\nfine,pos\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"no usable rows .*1 row\(s\) skipped; e.g. r.csv:2: .*quote opened on line 2 is never closed"):
        read_text_table(tmp_path / "r.csv")


def test_unknown_labels_against_known_classes_are_skipped(tmp_path: Path):
    p = write_csv(tmp_path / "t.csv", [("fine", "pos"), ("meh", "neutral"), ("bad", "neg")])
    table = read_text_table(p, classes=["neg", "pos"])
    assert table.texts == ["fine", "bad"] and table.classes == ["neg", "pos"]
    assert len(table.skipped) == 1 and "unknown label: 'neutral'" in table.skipped[0].reason


def test_single_class_and_empty_file_are_errors(tmp_path: Path):
    with pytest.raises(DataError, match="only the class 'pos'"):
        read_text_table(write_csv(tmp_path / "a.csv", [("good", "pos"), ("great", "pos"), ("", "neg")]))
    (tmp_path / "b.csv").write_text("")
    with pytest.raises(DataError, match="no data rows"):
        read_text_table(tmp_path / "b.csv")
    with pytest.raises(DataError, match="unsupported text file type"):
        read_text_table(write_csv(tmp_path / "c.xlsx", []))
    with pytest.raises(DataError, match="does not exist"):
        read_text_table(tmp_path / "missing.csv")


def test_duplicates_reported_and_kept_in_one_split(tmp_path: Path):
    rows = balanced_rows(8) + [("great phone", "pos")] * 3 + [("bad phone", "pos")]
    table = read_text_table(write_csv(tmp_path / "a.csv", rows))
    dups = {d["text"]: d for d in table.duplicates()}
    assert set(dups) == {"great phone", "bad phone"}
    assert len(dups["great phone"]["where"]) == 4 and not dups["great phone"]["conflicting"]
    assert dups["bad phone"]["conflicting"]
    assert table.summary()["num_duplicate_texts"] == 4
    for seed in range(5):
        keep, hold = grouped_stratified_split(table.records, 0.25, seed, "test")
        assert sorted(keep + hold) == list(range(len(table.records)))
        kept_texts = {table.records[i].text for i in keep}
        assert not kept_texts & {table.records[i].text for i in hold}


def test_split_is_stratified_and_reproducible(tmp_path: Path):
    rows = [(f"pos text {i}", "pos") for i in range(30)] + [(f"neg text {i}", "neg") for i in range(10)]
    p = write_csv(tmp_path / "a.csv", rows)
    a = load_text_dataset(p, seed=3)
    b = load_text_dataset(p, seed=3)
    c = load_text_dataset(p, seed=4)
    assert [r.text for r in a.test] == [r.text for r in b.test]
    assert [r.text for r in a.test] != [r.text for r in c.test]
    assert len(a.test) == 8 and Counter(r.label for r in a.test) == {1: 6, 0: 2}
    assert len(a.train) + len(a.val) + len(a.test) == 40 and a.val and not a.leakage


def test_separate_test_file_leakage_is_warned(tmp_path: Path):
    train = write_csv(tmp_path / "train.csv", balanced_rows(8))
    test = write_csv(tmp_path / "test.csv", [("great phone", "pos"), ("something new", "neg"), ("a new label", "other")])
    splits = load_text_dataset(train, test=test)
    assert [r.text for r in splits.test] == ["great phone", "something new"]
    assert len(splits.leakage) == 1 and splits.leakage[0]["b_split"] == "test" and splits.leakage[0]["text"] == "great phone"
    assert splits.summary()["num_skipped"] == 1
    # a folder with train.* and test.* is the same thing
    assert len(load_text_dataset(tmp_path).test) == 2


def test_stratified_folds_partition_and_group_duplicates(tmp_path: Path):
    rows = balanced_rows(8) + [("great phone", "pos")] * 2
    table = read_text_table(write_csv(tmp_path / "a.csv", rows))
    folds = stratified_folds(table.records, 4, seed=0)
    assert sorted(i for _, te in folds for i in te) == list(range(len(rows)))
    for tr, te in folds:
        assert not {table.records[i].text for i in tr} & {table.records[i].text for i in te}
    with pytest.raises(DataError, match="at most"):
        stratified_folds(table.records, 20, seed=0)
    assert find_text_leakage({"train": table.records[:2], "test": table.records[:1]})


def test_near_copies_stay_on_one_side_of_carves_and_folds(tmp_path: Path):
    # "Great phone." / "GREAT PHONE!" / "great  phone" were grouped only when byte-identical, so a carve could put one in
    # validation and its near-copy in train: a validation score resting on a training text (the report calls it leakage)
    from transferkit.data.text import normalize_text

    variants = ["Great phone.", "GREAT PHONE!", "great  phone", "Great phone!!", "great, phone"]
    rows = balanced_rows(10) + [(v, "pos") for v in variants] + [("Awful battery", "neg"), ("awful battery!!", "neg")]
    table = read_text_table(write_csv(tmp_path / "a.csv", rows))

    def sides_share_a_text(a, b):
        return {normalize_text(table.records[i].text) for i in a} & {normalize_text(table.records[i].text) for i in b}

    for seed in range(8):
        keep, hold = grouped_stratified_split(table.records, 0.25, seed, "validation")
        assert sorted(keep + hold) == list(range(len(rows))) and not sides_share_a_text(keep, hold)
    for tr, te in stratified_folds(table.records, 3, seed=1):
        assert not sides_share_a_text(tr, te)


def test_read_texts_for_prediction(tmp_path: Path):
    (tmp_path / "a.txt").write_text("first text\n\nsecond\u0085still second\n")
    assert read_texts(tmp_path / "a.txt") == ["first text", "second\u0085still second"]
    assert read_texts(write_csv(tmp_path / "b.csv", [("hello", "1")], header=("review", "x"))) == ["hello"]


def test_read_texts_takes_the_sentences_of_a_labelled_txt_not_its_labels(tmp_path: Path):
    """The project's own labelled .txt (sentence<TAB>label, as fit-text reads it) used to reach the model as
    'sentence\t1': the label became part of every text. Its sentences are read; plain files stay one text per line."""
    labelled = tmp_path / "amazon_cells_labelled.txt"
    labelled.write_text("Good case, Excellent value.\t1\nSo there is no way to plug it in.\t0\n\nno label here\n\t1\n")
    skipped, notes = [], []
    assert read_texts(labelled, skipped=skipped, notes=notes) == ["Good case, Excellent value.", "So there is no way to plug it in."]
    assert [(s.where, s.reason.split(" (")[0]) for s in skipped] == [("amazon_cells_labelled.txt:4", "unparsable line: no tab"),
                                                                      ("amazon_cells_labelled.txt:5", "empty text")]
    assert notes and "labelled" in notes[0] and "amazon_cells_labelled.txt" in notes[0]
    plain = tmp_path / "plain.txt"
    plain.write_text("great phone\nthe keys\tare loose\nawful\n")  # one tab inside one text: still plain
    notes = []
    assert read_texts(plain, notes=notes) == ["great phone", "the keys\tare loose", "awful"] and notes == []


@requires_shared("reviews")
@pytest.mark.parametrize("name,dups", [("amazon_cells", 10), ("yelp", 4), ("imdb", 3)])
def test_uci_review_files(name: str, dups: int):
    table = read_text_table(SHARED_DATA / "reviews" / f"{name}_labelled.txt")
    assert len(table.records) == 1000 and not table.skipped
    assert table.summary()["counts"] == {"0": 500, "1": 500}
    assert table.summary()["num_duplicate_texts"] == dups
    csv_table = read_text_table(SHARED_DATA / "reviews" / f"{name}.csv")
    assert csv_table.texts == [t.strip() for t in table.texts]


def test_an_unclosed_quote_that_swallows_whole_rows_is_skipped_not_merged(tmp_path: Path):
    """The quote closes by chance in a later row, so the merged row has every field: it used to train as one text
    (several reviews, with the last one's label) and the rows it swallowed vanished without a count."""
    p = tmp_path / "q.csv"
    p.write_text('text,label\nGood one,1\n"Bad one,0\nstill bad,0\nnice,1\nThe 5" screen,1\nlast,0\nworst,0\n', encoding="utf-8")
    table = read_text_table(p)
    assert table.texts == ["Good one", "last", "worst"]
    assert [s.where for s in table.skipped] == ["q.csv:3"]
    assert "a quote opened on line 3 is never closed: the row runs to line 6, taking in line 4" in table.skipped[0].reason
    skipped: list = []
    assert read_texts(p, skipped=skipped) == ["Good one", "last", "worst"] and [s.where for s in skipped] == ["q.csv:3"]
    # a review quoted over several lines, with commas, stays one good row
    ok = tmp_path / "ok.csv"
    ok.write_text('text,label\n"Loved it,\nbattery, screen and all",1\nGood one,1\nBad,0\nawful,0\n', encoding="utf-8")
    assert read_text_table(ok).texts[0] == "Loved it,\nbattery, screen and all" and read_text_table(ok).skipped == []


def test_whole_number_labels_written_as_decimals_are_one_class(tmp_path: Path):
    p = tmp_path / "mix.csv"
    p.write_text("text,label\nGood one,1\nBad one,0\nOk good,1.0\nMeh bad,0.0\nfine,1\nawful,0\nodd,+1.00\n", encoding="utf-8")
    table = read_text_table(p)
    assert table.classes == ["0", "1"] and [table.classes[r.label] for r in table.records] == ["1", "0", "1", "0", "1", "0", "1"]
    assert read_text_table(p, classes=["0", "1"]).skipped == []  # a test file in 1.0/0.0 against a model's 0/1
    p.write_text("text,label\na,1.5\nb,2.5\n", encoding="utf-8")
    assert read_text_table(p).classes == ["1.5", "2.5"]


@pytest.mark.parametrize("sep", ["\t", ";"])
def test_a_csv_file_separated_by_tabs_or_semicolons_is_read(tmp_path: Path, sep: str):
    p = tmp_path / "spreadsheet.csv"
    p.write_text(f"text{sep}label\nGood one, really{sep}1\nBad one{sep}0\n", encoding="utf-8")
    table = read_text_table(p)
    assert table.texts == ["Good one, really", "Bad one"] and table.classes == ["0", "1"]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_a_utf16_or_utf32_file_is_read_by_its_byte_order_mark(tmp_path: Path, codec: str):
    import codecs

    p = tmp_path / "u.csv"
    bom = {"utf-16": b"", "utf-16-be": codecs.BOM_UTF16_BE, "utf-32": b""}[codec]
    p.write_bytes(bom + "text,label\r\ncaf\u00e9 good,1\r\nbad,0\r\n".encode(codec))
    for encoding in ("utf-8", "latin-1"):  # latin-1 was what the error advised, and it trained on NUL-filled texts
        table = read_text_table(p, encoding=encoding)
        assert table.texts == ["caf\u00e9 good", "bad"] and table.classes == ["0", "1"]


def test_an_unknown_encoding_is_a_data_error(tmp_path: Path):
    p = write_csv(tmp_path / "a.csv", [("good", "1"), ("bad", "0")])
    with pytest.raises(DataError, match="unknown text encoding 'bogus'"):
        read_text_table(p, encoding="bogus")
    with pytest.raises(DataError, match="unknown text encoding 'bogus'"):
        read_texts(p, encoding="bogus")


def test_multi_line_quoted_cells_written_by_csv_writer_are_kept(tmp_path: Path):
    """RFC 4180 cells with line breaks, commas and doubled quotes (as Excel or csv.writer write them) end on a line such as
    `Battery lasts for days.",1`, which reads as a row of its own: such rows were skipped as "a quote ... is never closed"."""
    rows = [("Great phone.\nBattery lasts for days.", "1"), ("Awful,\njust awful.", "0"), ('He said "wow",\nthen\n"meh"', "1"),
            ("Screen 5\"\nbroke, twice", "0"), ('""quoted""\n0', "0"), ("Line one\nline two\nline three, 1", "1")]
    rows += [(f"plain text {i}", str(i % 2)) for i in range(10)]
    p = write_csv(tmp_path / "ml.csv", rows)
    table = read_text_table(p)
    assert table.skipped == [] and len(table.records) == len(rows) == 16
    assert table.texts == [t for t, _ in rows] and [table.classes[r.label] for r in table.records] == [lab for _, lab in rows]
    assert read_texts(p) == [t for t, _ in rows]
    # a stray quote joining two rows that closes properly on the next line is still caught: the first line is a row too
    p.write_text('text,label\nGood one,1\n"Bad one,0\nSize 5",1\nlast,0\nworst,0\n', encoding="utf-8")
    table = read_text_table(p)
    assert table.texts == ["Good one", "last", "worst"] and [s.where for s in table.skipped] == ["ml.csv:3"]


def test_label_spellings_that_differ_in_case_or_leading_zeros_are_one_class(tmp_path: Path):
    """'Positive'/'positive' were two classes, and '0'/'00'/'1'/'01' four, silently: they are merged into the most frequent
    spelling (on a tie the first seen), and the merge is recorded."""
    rows = [("great", "positive"), ("love it", "Positive"), ("fine", "positive"), ("bad", "negative"), ("awful", "NEGATIVE")]
    table = read_text_table(write_csv(tmp_path / "case.csv", rows))
    assert table.classes == ["negative", "positive"]
    assert [table.classes[r.label] for r in table.records] == ["positive", "positive", "positive", "negative", "negative"]
    assert table.label_merges == [{"label": "Positive", "merged_into": "positive", "rows": 1},
                                  {"label": "NEGATIVE", "merged_into": "negative", "rows": 1}]
    assert table.summary()["label_merges"] == table.label_merges
    rows = [("a", "0"), ("b", "01"), ("c", "00"), ("d", "1"), ("e", "1.0"), ("f", "007"), ("g", "7"), ("h", "007"), ("i", "A1"), ("j", "a1")]
    table = read_text_table(write_csv(tmp_path / "zeros.csv", rows))
    assert table.classes == ["0", "007", "1", "A1"]  # '0'/'00' and 'A1'/'a1' tie: the first seen; '1' ('1.0' too) and '007' lead
    assert [table.classes[r.label] for r in table.records] == ["0", "1", "0", "1", "1", "007", "007", "007", "A1", "A1"]
    assert [(m["label"], m["merged_into"], m["rows"]) for m in table.label_merges] == [("00", "0", 1), ("01", "1", 1), ("7", "007", 1),
                                                                                      ("a1", "A1", 1)]
    # read against known classes (a model's, train's): other spellings count as those classes, not as unknown labels
    known = read_text_table(write_csv(tmp_path / "t.csv", [("x", "Positive"), ("y", "negative"), ("z", "POSITIVE"), ("w", "meh")]),
                            classes=["negative", "positive"])
    assert [known.classes[r.label] for r in known.records] == ["positive", "negative", "positive"]
    assert [s.reason.split(":")[0] for s in known.skipped] == ["unknown label"]
    assert known.label_merges == [{"label": "Positive", "merged_into": "positive", "rows": 1}, {"label": "POSITIVE", "merged_into": "positive", "rows": 1}]
    # and a test file beside a data file is read against train's classes
    train = write_csv(tmp_path / "train.csv", [(t, lab.lower()) for t, lab in balanced_rows()])
    test = write_csv(tmp_path / "test.csv", [("nice one", "POS"), ("poor one", "Neg")])
    splits = load_text_dataset(train, test=test)
    assert [splits.classes[r.label] for r in splits.test] == ["pos", "neg"]


def test_read_texts_of_a_headerless_one_column_file_keeps_its_first_line(tmp_path: Path):
    """A one-column CSV without a header lost its first text (taken as the column's name), silently."""
    p = tmp_path / "x.csv"
    p.write_text("Great phone love it\nTerrible battery\nWorks fine\n", encoding="utf-8")
    notes: list[str] = []
    assert read_texts(p, notes=notes) == ["Great phone love it", "Terrible battery", "Works fine"]
    assert len(notes) == 1 and "'Great phone love it' is not a text-column name" in notes[0] and "--text-col" in notes[0]
    assert read_texts(p, text_col="Great phone love it") == ["Terrible battery", "Works fine"]  # named: it is the header
    for header in ("text", "Review Text", "comments", "Sentence"):  # a header that names a text column stays a header
        p.write_text(f"{header}\nTerrible battery\nWorks fine\n", encoding="utf-8")
        notes = []
        assert read_texts(p, notes=notes) == ["Terrible battery", "Works fine"] and notes == []


def test_read_texts_of_an_empty_file_or_a_header_without_rows_says_so(tmp_path: Path):
    for name, content, said in (("e.txt", "", "is empty"), ("e.csv", "", "is empty"), ("b.txt", "\n  \n", "is empty"),
                                ("h.csv", "text,label\n", "has a header (text, label) but no rows")):
        (tmp_path / name).write_text(content, encoding="utf-8")
        with pytest.raises(DataError, match=re.escape(said)):
            read_texts(tmp_path / name)


@pytest.mark.parametrize(("codec", "endian"), [("utf-16-le", "little"), ("utf-16-be", "big"), ("utf-32-le", "little")])
def test_utf16_or_utf32_without_a_byte_order_mark_is_named_not_read_as_nul_filled_text(tmp_path: Path, codec: str, endian: str):
    """Read as UTF-8, a UTF-16-LE file without a BOM trained on texts full of NULs, with classes like '\\x000\\x00'."""
    p = tmp_path / "u.csv"
    content = "text,label\r\n" + "".join(f"caf\u00e9 review number {i} is good,{i % 2}\r\n" for i in range(20))
    p.write_bytes(content.encode(codec))
    bits = codec[4:6]
    for encoding in ("utf-8", "latin-1"):
        with pytest.raises(DataError, match=rf"looks like UTF-{bits} \({endian}-endian\) without a byte-order mark.*--encoding {codec}"):
            read_text_table(p, encoding=encoding)
        with pytest.raises(DataError, match=f"--encoding {codec}"):
            read_texts(p, encoding=encoding)
    table = read_text_table(p, encoding=codec)
    assert table.classes == ["0", "1"] and table.texts[0] == "caf\u00e9 review number 0 is good" and table.skipped == []
    cjk = tmp_path / "cjk.csv"  # UTF-8 text in other scripts has no zero bytes: read as before
    write_csv(cjk, [("最悪の商品です", "0"), ("非常好，物超所值", "1"), ("좋아요 👌", "1"), ("Ужасно", "0")])
    assert read_text_table(cjk).classes == ["0", "1"]


def test_a_cp1252_file_is_advised_as_cp1252_not_latin1(tmp_path: Path):
    """latin-1 reads the bytes 0x80-0x9F of a Windows file (“ ” – €) as invisible control characters (U+0093...)."""
    p = tmp_path / "w.csv"
    p.write_bytes("text,label\n\u201cgreat\u201d phone \u2013 \u20ac50,1\nbad one,0\n".encode("cp1252"))
    with pytest.raises(DataError, match=r"--encoding cp1252") as exc:
        read_text_table(p)
    assert "--encoding latin-1" not in str(exc.value)
    assert read_text_table(p, encoding="cp1252").texts[0] == "\u201cgreat\u201d phone \u2013 \u20ac50"
    p.write_bytes("text,label\ncaf\u00e9 great,1\nbad one,0\n".encode("latin-1"))  # no such bytes: latin-1 (and cp1252) read it alike
    with pytest.raises(DataError, match=r"--encoding latin-1"):
        read_text_table(p)


def test_a_class_too_rare_to_split_is_named_with_advice_that_can_be_followed(tmp_path: Path):
    """The errors said "a class has fewer than 2 distinct texts" (which?), "pass an explicit validation file" (fit-text has
    no --val option) and "--cv 3 ... use at most 1 folds" (--cv needs 2 or more)."""
    rows = balanced_rows() + [("a neutral remark", "neutral")]
    p = write_csv(tmp_path / "once.csv", rows)
    with pytest.raises(DataError, match=r"test split: class 'neutral' \(1 distinct text\).*folder with train\.\*, val\.\* and test\.\*"):
        load_text_dataset(p)
    test = write_csv(tmp_path / "test.csv", balanced_rows(3))
    with pytest.raises(DataError, match=r"validation split: class 'neutral' \(1 distinct text\)") as exc:
        load_text_dataset(p, test=test)
    assert "fit-text has no --val option" in str(exc.value) and "explicit validation file" not in str(exc.value)
    table = read_text_table(p)
    with pytest.raises(DataError, match=r"--cv 3: class 'neutral' \(1 example\); .*needs at least 2 examples of every class") as exc:
        stratified_folds(table.records, 3, 0, classes=table.classes)
    assert "at most 1 folds" not in str(exc.value)
    two = read_text_table(write_csv(tmp_path / "two.csv", rows + [("another neutral remark", "neutral")]))
    with pytest.raises(DataError, match=r"--cv 3: class 'neutral' \(2 examples\).*at most 2 folds \(--cv 2\)"):
        stratified_folds(two.records, 3, 0, classes=two.classes)
    # the advice holds: a folder with its own validation file trains with the rare class
    folder = tmp_path / "folder"
    folder.mkdir()
    write_csv(folder / "train.csv", rows)
    write_csv(folder / "val.csv", balanced_rows(3) + [("neutral again", "neutral")])
    write_csv(folder / "test.csv", balanced_rows(2))
    splits = load_text_dataset(folder)
    assert splits.classes == ["neg", "neutral", "pos"] and len(splits.train) == 17
