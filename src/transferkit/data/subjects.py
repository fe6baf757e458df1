"""Who (or what) an image shows: the subject that must never sit on both sides of a split.

Several images of one patient, one leaf or one product are not independent. A carve that puts some in train and
some in validation flatters every number measured on validation. A :class:`SubjectRule` names the subject of each
image file, in one of two ways:

* :class:`PatternSubjects` (``--groups PATTERN``): a regular expression searched in the file name, when the subject
  is written there (Kermany chest X-rays: ``person12_bacteria_3.jpeg``);
* :class:`SubjectTable` (``--groups-file CSV``): a table of file -> subject, when the subject lives in metadata (a
  patient id in a hospital's export, a plant id in a field log). Columns are found by name (``file`` / ``path`` /
  ``image`` ... and ``subject`` / ``patient`` / ``group`` ...); files are given relative to the data folder or by
  bare name.

A file the rule does not know is its own subject; the split summary counts such files.
"""

from __future__ import annotations

import csv
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import DataError

FILE_COLUMNS = ("file", "path", "filename", "file_name", "image", "image_path", "image index", "image_index", "image_id")
SUBJECT_COLUMNS = ("subject", "subject_id", "patient", "patient id", "patient_id", "group", "group_id")


class SubjectRule(ABC):
    """Maps an image file to its subject id, or None when the rule does not know the file."""

    @abstractmethod
    def subject(self, path: Path) -> str | None: ...

    @abstractmethod
    def describe(self) -> str:
        """How subjects are named, for messages: ``pattern '...'`` or ``table 'x.csv'``."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """What ``summary()["groups"]`` says about the rule itself."""

    def subject_ids(self, paths: Iterable[Path]) -> list[str]:
        """One subject per file; a file the rule does not know is its own subject (its full path)."""
        return [self.subject(p) or str(p) for p in paths]


def subject_id(name: str, rx: re.Pattern[str]) -> str | None:
    """Subject of a file name: the first group that matched, else the whole match; None if no (or an empty) match."""
    m = rx.search(name)
    if m is None:
        return None
    sid = next((g for g in m.groups() if g is not None), m.group(0))
    return sid or None


def compile_groups(pattern: str) -> re.Pattern[str]:
    """The subject pattern, compiled; an invalid one is a DataError saying what to pass."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise DataError(
            f"--groups {pattern!r} is not a valid regular expression ({exc}). Pass a pattern searched in each file name "
            "whose first group is the subject, e.g. --groups 'person(\\d+)_' (Kermany chest X-rays: --groups '(person\\d+)_|(IM-\\d+)-')."
        ) from None


class PatternSubjects(SubjectRule):
    def __init__(self, pattern: str):
        self.pattern = pattern
        self.rx = compile_groups(pattern)

    def subject(self, path: Path) -> str | None:
        return subject_id(Path(path).name, self.rx)

    def describe(self) -> str:
        return f"pattern '{self.pattern}'"

    def record(self) -> dict[str, Any]:
        return {"pattern": self.pattern}


class SubjectTable(SubjectRule):
    """File -> subject from a CSV table with a header row.

    A file entry may be a bare name (``scan_0001.png``) or a path relative to the data folder
    (``train/NORMAL/scan_0001.png``); an image matches the entry whose parts end its own path, the longest such entry
    winning. A bare name listed twice with different subjects is ambiguous and refused.
    """

    def __init__(self, path: str | Path, *, encoding: str = "utf-8-sig"):
        self.path = Path(path).expanduser()
        self._by_name: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        self.num_rows = 0
        self.num_blank = 0
        rows, header = self._read(encoding)
        file_col, subject_col = self._columns(header)
        self.columns = (header[file_col], header[subject_col])
        for line_no, row in rows:
            if len(row) <= max(file_col, subject_col):
                raise DataError(f"{self.path}, line {line_no}: {len(row)} field(s), but the header has {len(header)}. "
                                "Fix the row (a missing comma or an unquoted comma in a value).")
            name, subject = row[file_col].strip(), row[subject_col].strip()
            if not name or not subject:
                self.num_blank += 1
                continue
            self.num_rows += 1
            parts = tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "."))
            self._add(parts, subject, line_no)
        if not self.num_rows:
            raise DataError(f"--groups-file {self.path} names no file with a subject (every row is empty in column "
                            f"'{self.columns[0]}' or '{self.columns[1]}').")

    def _read(self, encoding: str) -> tuple[list[tuple[int, list[str]]], list[str]]:
        try:
            text = self.path.read_text(encoding=encoding)
        except FileNotFoundError:
            raise DataError(f"--groups-file {self.path} does not exist. Pass a CSV of file -> subject (columns 'file' and 'subject').") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"--groups-file {self.path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV.") from None
        except OSError as exc:
            raise DataError(f"cannot read --groups-file {self.path}: {exc.strerror or exc}.") from None
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(text.splitlines(), dialect)
        try:
            numbered = [(i, row) for i, row in enumerate(reader, start=1) if any(cell.strip() for cell in row)]
        except csv.Error as exc:
            raise DataError(f"--groups-file {self.path} is not valid CSV ({exc}).") from None
        if not numbered:
            raise DataError(f"--groups-file {self.path} is empty: it needs a header row and one row per file.")
        return numbered[1:], [h.strip() for h in numbered[0][1]]

    def _columns(self, header: list[str]) -> tuple[int, int]:
        low = [h.lower() for h in header]

        def find(names: tuple[str, ...]) -> int | None:
            return next((low.index(n) for n in names if n in low), None)

        file_col, subject_col = find(FILE_COLUMNS), find(SUBJECT_COLUMNS)
        if file_col is None or subject_col is None:
            raise DataError(f"--groups-file {self.path}: cannot tell which columns hold the file and the subject (header: {header}). "
                            f"Name them 'file' and 'subject' (also understood: {', '.join(FILE_COLUMNS[1:])}; "
                            f"{', '.join(SUBJECT_COLUMNS[1:])}).")
        return file_col, subject_col

    def _add(self, parts: tuple[str, ...], subject: str, line_no: int) -> None:
        entries = self._by_name.setdefault(parts[-1], [])
        for other_parts, other in entries:
            if other_parts == parts and other != subject:
                where = "/".join(parts)
                raise DataError(f"--groups-file {self.path}, line {line_no}: '{where}' is listed with two subjects ('{other}' and "
                                f"'{subject}'). Give each file one subject" + (", and paths relative to the data folder where file "
                                                                               "names repeat." if len(parts) == 1 else "."))
        entries.append((parts, subject))

    def subject(self, path: Path) -> str | None:
        parts = Path(path).parts
        best: tuple[int, str] | None = None
        for entry, subject in self._by_name.get(parts[-1] if parts else "", ()):
            if len(entry) <= len(parts) and tuple(parts[-len(entry):]) == entry and (best is None or len(entry) > best[0]):
                best = (len(entry), subject)
        return best[1] if best else None

    def describe(self) -> str:
        return f"table '{self.path.name}'"

    def record(self) -> dict[str, Any]:
        return {"table": str(self.path), "columns": list(self.columns), "num_rows": self.num_rows, "num_blank_rows": self.num_blank}


def subject_rule(groups: str | None = None, groups_file: str | Path | None = None) -> SubjectRule | None:
    """The rule from ``--groups PATTERN`` or ``--groups-file CSV`` (one of them, or neither: None)."""
    if groups is not None and groups_file is not None:
        raise DataError("pass either --groups PATTERN (subjects in file names) or --groups-file CSV (a file -> subject table), not both.")
    if groups is not None:
        return PatternSubjects(groups)
    if groups_file is not None:
        return SubjectTable(groups_file)
    return None


__all__ = ["PatternSubjects", "SubjectRule", "SubjectTable", "compile_groups", "subject_id", "subject_rule"]
