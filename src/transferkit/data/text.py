"""Labelled text files -> records and stratified splits.

Formats, chosen by the file suffix:

- ``.csv`` / ``.tsv``: a header row; columns chosen by ``text_col`` / ``label_col`` or detected
  (``text``, ``sentence``, ``review``... and ``label``, ``sentiment``, ``class``...). A ``.csv`` whose header has no
  comma but tabs or semicolons is read with that separator (spreadsheet exports). A quote left open swallows the
  lines after it: such a row is skipped and named, also when the quote closes by chance rows later (a swallowed line
  that reads as a row of its own gives it away). A text quoted over several lines by the rules (RFC 4180, as Excel and
  Python's csv.writer write it: line breaks, commas and doubled quotes inside quotes) is one good row;
- ``.jsonl`` / ``.ndjson``: one JSON object per line, the same column rules;
- ``.txt``: the UCI "Sentiment Labelled Sentences" layout, ``sentence<TAB>label`` per line. Each
  line is split at its *last* tab, and lines are split on ``\\n`` only (the imdb file has U+0085
  inside sentences, which ``str.splitlines`` would treat as a line break).

Labels may be strings or integers (``1.0`` is the label ``1``); spellings of one label that differ only in case
(``Positive``/``positive``) or, for all-digit labels, in leading zeros (``01``/``1``) are one class, spelled as most of
its rows spell it (on a tie, as the first), and the merge is recorded (``label_merges``); a file read against known
classes (a model's, train's) maps such spellings to them the same way. Classes are sorted (numerically when every label is an
integer). Text is UTF-8 unless ``encoding`` says otherwise; a UTF-16/32 byte-order mark is honoured whatever it says.
Bad input is an error that says what to do (not UTF-8, a missing column, a single
class) or a counted, listed skip (empty text, a missing label, a label the model does not know,
an unparsable line). Exact duplicate texts are reported; splits keep every copy of a text on the
same side (grouped splitting), so duplicates never leak between train, validation and test. Two
files given as train and test are checked for shared texts (leakage).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".txt")
TEXT_COLUMN_NAMES = ("text", "sentence", "review", "review_text", "content", "body", "document", "comment", "message", "tweet", "utterance")
LABEL_COLUMN_NAMES = ("label", "labels", "sentiment", "class", "target", "polarity", "category", "y", "rating", "stars")


@dataclass(frozen=True)
class TextRecord:
    """One labelled text: ``label`` indexes the data set's ``classes``; ``where`` is file:line."""

    text: str
    label: int
    where: str

    @property
    def sha256(self) -> str:
        return text_sha256(self.text)


@dataclass(frozen=True)
class SkippedRow:
    where: str
    reason: str


def text_sha256(text: str) -> str:
    """Content hash of one text (the feature-cache key and the duplicate detector)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class TextTable:
    """Every usable row of one file, its classes, what was skipped and which texts repeat."""

    path: Path
    classes: list[str]
    records: list[TextRecord]
    skipped: list[SkippedRow]
    text_col: str | None
    label_col: str | None
    # spellings of one label merged into one class ("Positive" into "positive", "01" into "1"; :func:`label_key`):
    # {"label": spelling, "merged_into": class, "rows": n}
    label_merges: list[dict[str, Any]] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.records]

    def duplicates(self) -> list[dict[str, Any]]:
        """Texts that occur more than once: where, and whether their labels conflict."""
        groups: dict[str, list[TextRecord]] = defaultdict(list)
        for r in self.records:
            groups[r.text].append(r)
        out = []
        for text, rs in groups.items():
            if len(rs) > 1:
                labels = sorted({self.classes[r.label] for r in rs})
                out.append({"text": text[:200], "where": [r.where for r in rs], "labels": labels, "conflicting": len(labels) > 1})
        return out

    def summary(self) -> dict[str, Any]:
        dups = self.duplicates()
        return {
            "path": str(self.path),
            "text_col": self.text_col,
            "label_col": self.label_col,
            "classes": self.classes,
            "counts": {c: int(n) for c, n in zip(self.classes, np.bincount(self.labels, minlength=len(self.classes)))},
            "num_rows": len(self.records),
            "label_merges": self.label_merges,
            "num_skipped": len(self.skipped),
            "skipped_by_reason": dict(Counter(s.reason.split(" (")[0].split(":")[0] for s in self.skipped)),
            "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped],
            "num_duplicate_texts": sum(len(d["where"]) - 1 for d in dups),
            "num_conflicting_duplicates": sum(d["conflicting"] for d in dups),  # texts whose copies carry different labels
            "duplicates": dups,
        }


# ---- reading -----------------------------------------------------------------------------
def _wide_encoding_without_bom(data: bytes) -> str | None:
    """'utf-16-le', 'utf-16-be', 'utf-32-le' or 'utf-32-be' when the zero bytes of the file's start fall where that
    encoding puts them for mostly ASCII text (``a\\x00b\\x00``: UTF-16-LE), else None. A zero byte never occurs in
    UTF-8, Latin-1 or cp1252 text, so such a file read in one of them would give texts and labels full of NULs."""
    n = min(len(data), 4096) // 4 * 4
    sample = data[:n]
    if n < 8 or sample.count(0) < n // 8:
        return None
    q = n // 4
    zeros = [sample[r::4].count(0) for r in range(4)]  # zero bytes at each position modulo 4
    if zeros[3] >= 0.9 * q and zeros[2] >= 0.8 * q and zeros[1] >= 0.5 * q and zeros[0] <= 0.1 * q:
        return "utf-32-le"
    if zeros[0] >= 0.9 * q and zeros[1] >= 0.8 * q and zeros[2] >= 0.5 * q and zeros[3] <= 0.1 * q:
        return "utf-32-be"
    even, odd = zeros[0] + zeros[2], zeros[1] + zeros[3]
    if odd >= 0.3 * 2 * q and even <= 0.05 * 2 * q:
        return "utf-16-le"
    if even >= 0.3 * 2 * q and odd <= 0.05 * 2 * q:
        return "utf-16-be"
    return None


_C1_BYTES = re.compile(rb"[\x80-\x9f]")


def _decode(path: Path, encoding: str) -> str:
    """The file's text. A UTF-16 or UTF-32 file announces itself with a byte-order mark and is read as such whatever
    ``encoding`` says (read as UTF-8 or Latin-1 it would give NUL-filled texts and labels). One without a byte-order
    mark, read in an encoding that is not UTF-16/32, is an error that names the encoding to pass (its zero bytes tell
    it: :func:`_wide_encoding_without_bom`); it is not decoded on a guess. A file that is not valid in ``encoding`` is
    an error that names the line and suggests an encoding: cp1252 when the file has bytes 0x80-0x9F (Windows' quotes,
    dashes and euro sign there, which Latin-1 would read as invisible control characters), else Latin-1."""
    import codecs

    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"unknown text encoding '{encoding}': use a Python codec name such as utf-8, latin-1, cp1252 or utf-16.") from None
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        encoding = "utf-32"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif not codec.startswith(("utf-16", "utf-32")) and (wide := _wide_encoding_without_bom(data)):
        bits, endian = wide[4:6], "little" if wide.endswith("le") else "big"
        raise DataError(
            f"'{path}' looks like UTF-{bits} ({endian}-endian) without a byte-order mark (a zero byte beside most characters), "
            f"not {encoding}: pass --encoding {wide} (fit-text, evaluate-text, predict-text, rank; Python: encoding='{wide}'), "
            f"or re-save it as UTF-8 (e.g. `iconv -f {wide} -t utf-8 in.csv > out.csv`).")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 8]
        guess, why = "latin-1", ""
        if data[:200].count(b"\x00") > len(data[:200]) // 4:
            guess = "utf-16"
        elif _C1_BYTES.search(data) and codec != "cp1252":
            try:
                data.decode("cp1252")
                guess, why = "cp1252", (" (it has bytes 0x80-0x9F: quotes, dashes or the euro sign in cp1252, Windows' encoding; "
                                        "latin-1 would read them as invisible control characters)")
            except UnicodeDecodeError:
                pass
        raise DataError(
            f"'{path}' is not valid {encoding}: line {line} has the byte(s) {bad!r} (offset {exc.start}). "
            f"Re-save the file as UTF-8 (e.g. `iconv -f {guess} -t utf-8 in.csv > out.csv`), "
            f"or pass its encoding{why} (fit-text, evaluate-text, predict-text, rank: --encoding {guess}; Python: encoding=)."
        ) from None
    return text.lstrip("\ufeff")  # a byte-order mark is not part of the first header


def _delimiter(path: Path, content: str) -> str:
    """The field separator of a .csv/.tsv file: a tab for .tsv; for .csv a comma, unless the header line has no comma
    but tabs or semicolons (a tab- or semicolon-separated file saved as .csv, as spreadsheet programs do)."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    header = content.split("\n", 1)[0]
    if "," not in header:
        for sep in ("\t", ";"):
            if sep in header:
                return sep
    return ","


def _pick_column(columns: Sequence[str], explicit: str | None, known: Sequence[str], what: str, option: str, path: Path) -> str | None:
    if explicit is not None:
        if explicit not in columns:
            raise DataError(f"{what} column '{explicit}' is not in '{path}'. Its columns are {list(columns)}; pass one of them with {option}.")
        return explicit
    lowered = {c.strip().lower(): c for c in columns}
    for name in known:
        if name in lowered:
            return lowered[name]
    return None


def _choose_columns(columns: list[str], rows: list[dict[str, Any]], text_col: str | None, label_col: str | None, path: Path) -> tuple[str, str]:
    t = _pick_column(columns, text_col, TEXT_COLUMN_NAMES, "text", "--text-col", path)
    lab = _pick_column(columns, label_col, LABEL_COLUMN_NAMES, "label", "--label-col", path)
    rest = [c for c in columns if c not in (t, lab)]
    if (t is None or lab is None) and len(columns) == 2 and rows:
        # two unnamed columns: the one with longer values is the text
        mean_len = {c: np.mean([len(str(r.get(c) or "")) for r in rows[:200]]) for c in columns}
        if t is None and lab is None:
            t, lab = sorted(columns, key=lambda c: -mean_len[c])
        elif t is None:
            t = rest[0]
        else:
            lab = rest[0]
    if t is None or lab is None:
        missing = " and ".join(w for w, c in (("text", t), ("label", lab)) if c is None)
        raise DataError(
            f"cannot tell the {missing} column of '{path}' (columns: {columns}). "
            "Pass --text-col NAME and --label-col NAME (Python: text_col=, label_col=)."
        )
    if t == lab:
        raise DataError(f"text and label columns are both '{t}' in '{path}'; pass different --text-col and --label-col.")
    return t, lab


def _iter_rows(path: Path, content: str) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(where, row or None, reason when unparsable) for each data row."""
    suffix = path.suffix.lower()
    name = path.name
    if suffix in (".csv", ".tsv"):
        delimiter = _delimiter(path, content)
        reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
        if not reader.fieldnames:
            return
        end = reader.line_num  # the header's last line
        parsed: list[tuple[int, int, dict[str, Any]]] = []
        for row in reader:
            start, end = end + 1, reader.line_num
            parsed.append((start, end, row))
        lines = content.split("\n")
        # values that recur in a column over one-line rows (labels do, texts rarely): what a swallowed row would hold
        recurring = [{v for v, n in Counter(r[c] for s0, e0, r in parsed if s0 == e0 and r.get(c) is not None).items() if n > 1}
                     for c in reader.fieldnames]
        for start, end, row in parsed:
            where = f"{name}:{start}"
            if None in row:  # more fields than the header
                yield where, None, f"{len(row[None]) + len(reader.fieldnames)} fields, the header has {len(reader.fieldnames)}"
            elif end > start and any(v is None for v in row.values()):  # one quoted field swallowed the lines after it
                yield where, None, (f"a quote opened on line {start} is never closed (the row runs to line {end} and "
                                    f"still lacks fields): close the quote, or double it (\"\") inside a quoted text")
            elif end > start and (swallowed := _swallowed_row(lines[start - 1:end], delimiter, recurring)):
                yield where, None, (f"a quote opened on line {start} is never closed: the row runs to line {end}, taking in line "
                                    f"{start + swallowed} and maybe more rows of their own; close the quote, or double it (\"\") "
                                    "inside a quoted text")
            else:
                yield where, row, None
    elif suffix in (".jsonl", ".ndjson"):
        for i, line in enumerate(content.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"{name}:{i}", None, f"invalid JSON ({exc.msg})"
                continue
            if not isinstance(obj, dict):
                yield f"{name}:{i}", None, f"not a JSON object ({type(obj).__name__})"
                continue
            yield f"{name}:{i}", obj, None
    else:  # UCI sentence<TAB>label
        for i, line in enumerate(content.split("\n"), start=1):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            text, tab, label = line.rpartition("\t")
            if not tab:
                yield f"{name}:{i}", None, "no tab (expected sentence<TAB>label)"
                continue
            yield f"{name}:{i}", {"text": text, "label": label}, None


def _swallowed_row(row_lines: list[str], delimiter: str, recurring: list[set[str]]) -> int:
    """For the physical lines of one multi-line CSV row: the 1-based index (after the first line) of a line that gives
    away a runaway quote, else 0. A line reads as a whole row of its own when it has the header's number of fields and
    in some column a value that recurs over one-line rows (such as a label).

    - A line between the first and the last that reads as a row: it lies inside the quoted text, where a legitimate
      multi-line text rarely holds a line like ``still bad,0``; a runaway quote swallows whole rows there.
    - The last line holds the end of the quoted text *and the row's other fields* (``Battery lasts for days.",1``, as
      Excel and Python's csv.writer write a text with line breaks), so it reads as a row in a good row too. It counts
      only when the quote was not properly closed (RFC 4180: the closing quote is followed by the separator or the end
      of the line; ``The 5" screen,1`` closes it by chance), or when the first line, read without its opening quote, is
      a row of its own too (``"Bad one,0`` then ``Size 5",1``: two rows joined by a stray quote)."""
    def reads_as_row(line: str, recurring_value: bool = True) -> bool:
        fields = next(csv.reader([line.rstrip("\r")], delimiter=delimiter), [])
        return len(fields) == len(recurring) and (not recurring_value or any(f and f in seen for f, seen in zip(fields, recurring)
                                                                             if len(f) <= 40))

    inner = row_lines[1:]
    for k, line in enumerate(inner[:-1], start=1):
        if reads_as_row(line):
            return k
    if not inner:
        return 0
    first = row_lines[0].lstrip()
    if first.startswith('"') and reads_as_row(first[1:].replace('"', "")) and reads_as_row(inner[-1], recurring_value=False):
        return len(inner)
    if reads_as_row(inner[-1]):
        try:  # one row, quoted by the rules (a stray quote inside an unquoted field, or text after a closing quote, fails)
            well_formed = len(list(csv.reader(io.StringIO("\n".join(row_lines), newline=""), delimiter=delimiter, strict=True))) == 1
        except csv.Error:
            well_formed = False
        if not well_formed:
            return len(inner)
    return 0


def _columns_of(path: Path, content: str, rows: list[dict[str, Any]]) -> list[str]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        header = next(csv.reader(io.StringIO(content, newline=""), delimiter=_delimiter(path, content)), [])
        return list(header)
    if suffix == ".txt":
        return ["text", "label"]
    cols: dict[str, None] = {}
    for r in rows[:1000]:
        cols.update(dict.fromkeys(r))
    return list(cols)


_WHOLE_NUMBER_WITH_ZEROS = re.compile(r"[+-]?\d+\.0+")


def _label_string(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).lower()
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return str(int(value)) if value.is_integer() else str(value)
    s = str(value).strip()
    if _WHOLE_NUMBER_WITH_ZEROS.fullmatch(s):  # "1.0" is the label 1, as the float 1.0 of a JSONL file is
        s = str(int(float(s)))
    return s or None


_ALL_DIGITS = re.compile(r"\d+", re.ASCII)


def label_key(label: str) -> str:
    """What the spellings of one label share: an all-digit label compares as its number ("007" is "7", "00" is "0"),
    any other case-insensitively ("Positive" is "positive", "A1" is "a1")."""
    return str(int(label)) if _ALL_DIGITS.fullmatch(label) else label.casefold()


def merge_label_spellings(labels: Sequence[str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Spellings of one label (:func:`label_key`) mapped to one class: the most frequent spelling, on a tie the first seen.
    Returns (spelling -> class, the merges: {"label", "merged_into", "rows"} per spelling that was merged)."""
    spellings: dict[str, Counter] = {}
    for lab in labels:
        spellings.setdefault(label_key(lab), Counter())[lab] += 1
    mapping: dict[str, str] = {}
    merges = []
    for counts in spellings.values():
        chosen = counts.most_common(1)[0][0]  # most_common keeps first-seen order among equal counts
        for lab, n in counts.items():
            mapping[lab] = chosen
            if lab != chosen:
                merges.append({"label": lab, "merged_into": chosen, "rows": n})
    return mapping, merges


def describe_label_merges(merges: Sequence[dict[str, Any]]) -> str:
    """'Positive' → 'positive' (12 rows), ..."""
    return ", ".join(f"'{m['label']}' → '{m['merged_into']}' ({m['rows']} row{'s' if m['rows'] != 1 else ''})" for m in merges)


def _sort_classes(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=lambda s: (int(s), s))
    except ValueError:
        return sorted(labels)


def read_text_table(
    path: str | Path,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    classes: Sequence[str] | None = None,
    encoding: str = "utf-8",
) -> TextTable:
    """Read one labelled text file (see the module docstring for formats and checks).

    ``classes`` fixes the label set (a model's classes, or train's for a test file): other labels
    are skipped as unknown. Without it the file's labels define the classes; fewer than two is an error.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"text data file '{path}' does not exist. Pass a .csv, .tsv, .jsonl or UCI .txt file.")
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise DataError(f"'{path.name}': unsupported text file type '{path.suffix}'. Use one of {', '.join(TEXT_SUFFIXES)}.")
    content = _decode(path, encoding)
    parsed = list(_iter_rows(path, content))
    rows = [r for _, r, _ in parsed if r is not None]
    columns = _columns_of(path, content, rows)
    if not columns or (not rows and not parsed):
        raise DataError(f"'{path}' has no data rows.")
    tcol, lcol = _choose_columns(columns, rows, text_col, label_col, path)

    skipped: list[SkippedRow] = []
    raw: list[tuple[str, str, str]] = []  # (text, label, where)
    for where, row, reason in parsed:
        if row is None:
            skipped.append(SkippedRow(where, f"unparsable line: {reason}"))
            continue
        text = row.get(tcol)
        text = "" if text is None else str(text).strip()
        label = _label_string(row.get(lcol))
        if not text:
            skipped.append(SkippedRow(where, "empty text"))
        elif label is None:
            skipped.append(SkippedRow(where, "missing label"))
        else:
            raw.append((text, label, where))

    merges: list[dict[str, Any]] = []
    if classes is not None:
        known = list(classes)
        by_key: dict[str, list[str]] = defaultdict(list)
        for c in known:
            by_key[label_key(c)].append(c)
        kept = []
        merged: Counter = Counter()
        for text, label, where in raw:
            if label not in known and len(by_key.get(label_key(label), ())) == 1:  # another spelling of a known class
                merged[(label, by_key[label_key(label)][0])] += 1
                label = by_key[label_key(label)][0]
            if label in known:
                kept.append((text, label, where))
            else:
                skipped.append(SkippedRow(where, f"unknown label: '{label}' (classes: {known})"))
        raw = kept
        merges = [{"label": lab, "merged_into": c, "rows": n} for (lab, c), n in merged.items()]
    else:
        mapping, merges = merge_label_spellings([lab for _, lab, _ in raw])
        raw = [(text, mapping[label], where) for text, label, where in raw]
        known = _sort_classes({lab for _, lab, _ in raw})
        if len(known) < 2:
            got = f"only the class '{known[0]}'" if known else "no usable rows"
            example = f"; e.g. {skipped[0].where}: {skipped[0].reason}" if skipped else ""
            raise DataError(
                f"'{path}' has {got} (column '{lcol}'; {len(skipped)} row(s) skipped{example}): a classifier needs at least two "
                "classes. Check --label-col, or add examples of the other class(es)."
            )
    if not raw:
        raise DataError(f"'{path}' has no usable rows ({len(skipped)} skipped; e.g. {skipped[0].reason if skipped else '-'}).")
    index = {c: i for i, c in enumerate(known)}
    records = [TextRecord(text, index[label], where) for text, label, where in raw]
    return TextTable(path, known, records, skipped, tcol, lcol, merges)


# ---- splitting ---------------------------------------------------------------------------
def text_groups(records: Sequence[TextRecord]) -> np.ndarray:
    """One group id per record: copies of the same text share it, and so do near-copies that differ only in case,
    punctuation or spacing ("Great phone." / "Great Phone!"; :func:`normalize_text`, the report's leakage rule), so folds
    and carves keep them together and a validation score never rests on a copy of a training text."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(normalize_text(r.text) or r.text, len(ids)) for r in records], dtype=np.int64)


def _name_classes(counts: dict[int, int], classes: Sequence[str] | None, noun: str) -> str:
    """"class 'neutral' (1 distinct text)", "classes 'a' (1 ...), 'b' (1 ...)"."""
    def one(label: int) -> str:
        name = f"'{classes[label]}'" if classes is not None and 0 <= label < len(classes) else f"number {label}"
        return f"{name} ({counts[label]} {noun}{'s' if counts[label] != 1 else ''})"
    labels = sorted(counts)
    return ("class " if len(labels) == 1 else "classes ") + ", ".join(one(lab) for lab in labels)


_SPLIT_ADVICE = {
    "test": ("Add examples of it, or leave its rows out; or give the splits yourself: as DATA a folder with train.*, val.* "
             "and test.* files (with --test FILE alone, validation is still carved from DATA; Python: test=, val=)."),
    "validation": ("Add examples of it, or leave its rows out; or give the validation texts yourself: as DATA a folder with "
                   "train.*, val.* and test.* files (fit-text has no --val option; Python: load_text_dataset(val=...))."),
}


def grouped_stratified_split(records: Sequence[TextRecord], fraction: float, seed: int, what: str, *,
                             classes: Sequence[str] | None = None, advice: str | None = None) -> tuple[list[int], list[int]]:
    """(keep, hold) indices: ``fraction`` of the *distinct texts* held out, stratified by label;
    every copy (or near-copy, :func:`text_groups`) of a text stays on one side. A class with fewer than 2 distinct texts
    is an error that names it (``classes``: the class names) and says what to do (``advice``, else the advice for a
    ``what`` of "test" or "validation")."""
    from sklearn.model_selection import train_test_split

    groups = text_groups(records)
    labels = np.array([r.label for r in records])
    first = {}
    for i, g in enumerate(groups):
        first.setdefault(int(g), i)
    uniq = np.array(sorted(first))
    ulabels = labels[[first[g] for g in uniq]]
    counts = Counter(ulabels.tolist())
    if min(counts.values()) < 2:
        rare = {int(lab): n for lab, n in counts.items() if n < 2}
        raise DataError(f"cannot carve a stratified {what} split: {_name_classes(rare, classes, 'distinct text')}; each class needs at "
                        f"least 2 (copies and near-copies count once), one on each side. "
                        + (advice or _SPLIT_ADVICE.get(what, "Add examples of it, or leave its rows out.")))
    n_hold = max(len(counts), round(len(uniq) * fraction))
    if len(uniq) - n_hold < len(counts):
        raise DataError(f"too few distinct texts ({len(uniq)}) to carve a {what} split for {len(counts)} classes.")
    _, hold_groups = train_test_split(uniq, test_size=n_hold, stratify=ulabels, random_state=seed)
    hold_set = set(hold_groups.tolist())
    keep = [i for i, g in enumerate(groups) if g not in hold_set]
    hold = [i for i, g in enumerate(groups) if g in hold_set]
    return keep, hold


def stratified_folds(records: Sequence[TextRecord], k: int, seed: int, *,
                     classes: Sequence[str] | None = None) -> list[tuple[list[int], list[int]]]:
    """K stratified folds over distinct texts (scikit-learn's StratifiedGroupKFold): (train, test) indices. A class with
    fewer than ``k`` examples is an error that names it (``classes``: the class names)."""
    from ..crossval import stratified_folds as folds_of

    if k < 2:
        raise DataError(f"--cv needs at least 2 folds; got {k}.")
    labels = np.array([r.label for r in records])
    counts = Counter(labels.tolist())
    smallest = min(counts.values())
    if smallest < k:
        rare = _name_classes({int(lab): n for lab, n in counts.items() if n < k}, classes, "example")
        if smallest < 2:  # no number of folds (at least 2) works
            raise DataError(f"--cv {k}: {rare}; K-fold cross-validation needs at least 2 examples of every class (one per fold, "
                            "at least 2 folds). Add examples of it, or leave its rows out.")
        raise DataError(f"--cv {k}: {rare}; every fold needs an example of every class. Use at most {smallest} folds (--cv {smallest}), or add examples.")
    return [(tr.tolist(), te.tolist()) for tr, te in folds_of(labels, k, seed, text_groups(records))]


@dataclass
class TextSplits:
    """train / val / test records over one class list, with what was skipped and any leakage."""

    classes: list[str]
    train: list[TextRecord]
    val: list[TextRecord]
    test: list[TextRecord]
    source: str
    tables: list[TextTable] = field(default_factory=list)
    leakage: list[dict[str, Any]] = field(default_factory=list)
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)  # same words, other case/punctuation, across splits

    def split(self, name: str) -> list[TextRecord]:
        return getattr(self, name)

    def summary(self) -> dict[str, Any]:
        counts = {s: {c: sum(r.label == i for r in self.split(s)) for i, c in enumerate(self.classes)} for s in ("train", "val", "test")}
        tables = [t.summary() for t in self.tables]
        return {
            "classes": self.classes,
            "source": self.source,
            "counts": counts,
            "files": tables,
            "num_skipped": sum(t["num_skipped"] for t in tables),
            "skipped_by_reason": dict(sum((Counter(t["skipped_by_reason"]) for t in tables), Counter())),
            "num_duplicate_texts": sum(t["num_duplicate_texts"] for t in tables),
            "cross_split_duplicates": self.leakage,
            "cross_split_near_duplicates": self.near_duplicates,
        }


def find_text_leakage(named: dict[str, Sequence[TextRecord]]) -> list[dict[str, Any]]:
    """Identical texts in two different splits (the held-out score is inflated by them)."""
    first: dict[str, tuple[str, str]] = {}
    out = []
    for split, records in named.items():
        for r in records:
            if r.text in first and first[r.text][0] != split:
                out.append({"a_split": first[r.text][0], "a": first[r.text][1], "b_split": split, "b": r.where, "text": r.text[:120]})
            first.setdefault(r.text, (split, r.where))
    return out


def normalize_text(text: str) -> str:
    """Case-folded, punctuation removed, whitespace collapsed: what near-duplicate texts share."""
    kept = "".join(" " if unicodedata.category(ch)[0] in "PZC" else ch for ch in text.casefold())
    return " ".join(kept.split())


def normalized_text_sha256(text: str) -> str:
    """Hash of a text's normalised form (:func:`normalize_text`; the text itself when nothing is left of it): one key for a
    text and its copies that differ only in case, punctuation or spacing. A text run's RUN/splits.json lists these, so
    ``evaluate-text`` can leave out the texts the run trained on, copies included."""
    return text_sha256(normalize_text(text) or text)


def find_near_duplicate_texts(named: dict[str, Sequence[TextRecord]]) -> list[dict[str, Any]]:
    """Texts in two different splits that differ only in case, punctuation or spacing
    ("Great phone!" / "great phone"); identical texts are :func:`find_text_leakage`'s."""
    first: dict[str, tuple[str, TextRecord]] = {}
    out = []
    for split, records in named.items():
        for r in records:
            key = normalize_text(r.text)
            if not key:
                continue
            if key in first:
                a_split, a = first[key]
                if a_split != split and a.text != r.text:
                    out.append({"a_split": a_split, "a": a.where, "b_split": split, "b": r.where, "text": r.text[:120],
                                "a_text": a.text[:120]})
                continue
            first[key] = (split, r)
    return out


def load_text_dataset(
    data: str | Path,
    *,
    test: str | Path | None = None,
    val: str | Path | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float | None = 0.2,
    seed: int = 0,
    encoding: str = "utf-8",
) -> TextSplits:
    """Read labelled text into :class:`TextSplits`.

    ``data`` is a file (split into train/val/test with ``seed``), or a folder holding
    ``train.*`` and ``test.*`` (``val.*`` optional). ``test=`` / ``val=`` name separate files.
    ``test_fraction=None`` keeps no test split (for cross-validation, or when ``test`` is given).
    Validation is always carved from train when not given (stratified, duplicates grouped).
    """
    data = Path(data).expanduser()
    if data.is_dir():
        found = {s: sorted(p for p in data.iterdir() if p.stem.lower() == s and p.suffix.lower() in TEXT_SUFFIXES) for s in ("train", "val", "test")}
        if not found["train"]:
            raise DataError(f"folder '{data}' has no train.csv/.tsv/.jsonl/.txt. Pass a file, or a folder with train.* and test.*.")
        data = found["train"][0]
        test = test or (found["test"][0] if found["test"] else None)
        val = val or (found["val"][0] if found["val"] else None)
    kw = {"text_col": text_col, "label_col": label_col, "encoding": encoding}
    main = read_text_table(data, **kw)
    classes = main.classes
    tables = [main]
    records = main.records
    test_records: list[TextRecord] = []
    parts = []
    if test is not None:
        t = read_text_table(test, classes=classes, **kw)
        tables.append(t)
        test_records = t.records
        parts.append(f"test from {Path(test).name}")
    elif test_fraction:
        keep, hold = grouped_stratified_split(records, test_fraction, seed, "test", classes=classes)
        test_records = [records[i] for i in hold]
        records = [records[i] for i in keep]
        parts.append(f"test carved ({test_fraction:.0%}, stratified, seed {seed})")
    else:
        parts.append("no test split")
    if val is not None:
        v = read_text_table(val, classes=classes, **kw)
        tables.append(v)
        train, val_records = records, v.records
        parts.append(f"val from {Path(val).name}")
    else:
        keep, hold = grouped_stratified_split(records, val_fraction, seed, "validation", classes=classes)
        train, val_records = [records[i] for i in keep], [records[i] for i in hold]
        parts.append(f"val carved from train ({val_fraction:.0%}, stratified, seed {seed})")
    splits = TextSplits(classes, train, val_records, test_records, "; ".join(parts), tables)
    named = {"train": train, "val": val_records, "test": test_records}
    splits.leakage = find_text_leakage(named)
    splits.near_duplicates = find_near_duplicate_texts(named)  # the report's check, here so that every fit records it
    return splits


_LABEL_AFTER_TAB = re.compile(r"\t[^\t]{1,32}$")


def is_labelled_txt(content: str) -> bool:
    """True when a ``.txt`` file is the labelled ``sentence<TAB>label`` layout (the UCI files, what ``fit-text`` reads):
    at least half of its non-empty lines end in a tab and a short field (a label). A plain file, one text per line,
    has no such lines (or only a few, whose tabs belong to the text)."""
    lines = [line.rstrip("\r") for line in content.split("\n") if line.strip()]
    labelled = sum(bool(_LABEL_AFTER_TAB.search(line)) and bool(line.rpartition("\t")[2].strip()) for line in lines)
    return bool(lines) and 2 * labelled >= len(lines)


def _names_a_text_column(name: str) -> bool:
    """A header cell that names a text column: a known name (:data:`TEXT_COLUMN_NAMES`), in any case, with spaces or
    hyphens for underscores, or in the plural ("Review Text", "comments")."""
    n = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return n in TEXT_COLUMN_NAMES or n.removesuffix("s") in TEXT_COLUMN_NAMES


def read_texts(path: str | Path, *, text_col: str | None = None, encoding: str = "utf-8",
               skipped: list[SkippedRow] | None = None, notes: list[str] | None = None) -> list[str]:
    """Unlabelled texts for prediction: a plain file (one text per line), a CSV/TSV/JSONL column, or the sentences of a
    labelled ``sentence<TAB>label`` ``.txt`` (:func:`is_labelled_txt`: the label is not part of the text; a line of it
    without a label is skipped, as :func:`read_text_table` skips it). Rows that cannot be parsed are left out and
    appended to ``skipped`` (where, why), for the caller to report; what the file was read as is appended to ``notes``.

    A one-column .csv/.tsv whose first line does not name a text column (:func:`_names_a_text_column`; ``text_col``
    not given) has no header: its first line is a text too, and a note says so (``text_col=`` that line makes it the
    header). An empty file, or a header without rows, is an error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"'{path}' does not exist. Pass a text file with one text per line, or a .csv/.jsonl with a text column.")
    content = _decode(path, encoding)
    if not content.strip():
        raise DataError(f"'{path}' is empty: it has no texts to classify.")
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson"):
        parsed = list(_iter_rows(path, content))
        rows = [r for _, r, _ in parsed if r is not None]
        if skipped is not None:
            skipped.extend(SkippedRow(where, f"unparsable line: {reason}") for where, r, reason in parsed if r is None)
        columns = _columns_of(path, content, rows)
        col = _pick_column(columns, text_col, TEXT_COLUMN_NAMES, "text", "--text-col", path)
        first: list[str] = []
        if col is None:
            if len(columns) != 1:
                raise DataError(f"cannot tell the text column of '{path}' (columns: {columns}); pass --text-col NAME.")
            col = columns[0]
            if path.suffix.lower() in (".csv", ".tsv") and col.strip() and not _names_a_text_column(col):
                first = [col]  # one column and no header: the first line is a text too
                if notes is not None:
                    notes.append(f"{path.name} has one column and no header (its first line {col[:60]!r} is not a text-column name "
                                 f"such as 'text' or 'review'): every line is classified, the first too. If that line is the "
                                 f"column's name, pass --text-col {col[:60]!r}")
        if not first and not parsed:
            raise DataError(f"'{path}' has a header ({', '.join(columns)}) but no rows: it has no texts to classify.")
        return first + [str(r.get(col) or "") for r in rows]
    if path.suffix.lower() == ".txt" and is_labelled_txt(content):
        texts = []
        for where, row, reason in _iter_rows(path, content):  # the reader fit-text uses: the text is before the last tab
            if row is None:
                if skipped is not None:
                    skipped.append(SkippedRow(where, f"unparsable line: {reason}"))
            elif row["text"].strip():
                texts.append(row["text"].strip())
            elif skipped is not None:
                skipped.append(SkippedRow(where, "empty text"))
        if notes is not None:
            notes.append(f"{path.name} is a labelled file (sentence<TAB>label per line): its sentences are classified, "
                         "the labels after the tab are not read")
        return texts
    return [line.rstrip("\r") for line in content.split("\n") if line.strip()]
