"""Image folders -> labelled train/val/test splits, with every skipped file counted.

Two layouts are understood:

* ``root/train/<class>/*``, ``root/test/<class>/*`` and optionally ``root/val/<class>/*``;
* ``root/<class>/*``: split into train/test stratified, with a seed.

Validation is carved (stratified) from train when there is no ``val/``. Every file is fully
decoded once while scanning, so broken files are known, counted and listed before any
training starts; its sha256 is kept (feature cache key, leakage check).

``groups`` (a regular expression searched in each file name) or ``groups_file`` (a CSV of file ->
subject) names the subject of an image (a patient, a leaf; see :mod:`.subjects`): every carve then
keeps a subject's images on one side, and subjects that explicit folders share between splits are
counted as leakage.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from ..errors import DataError
from ..image_files import system_clutter, walk_files
from .subjects import SubjectRule, subject_rule
from ..progress import track
from .images import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, BadImageError, open_image

SPLIT_NAMES = ("train", "val", "test")
_ALIASES = {"train": ("train", "training"), "val": ("val", "valid", "validation"), "test": ("test", "testing")}


def skip_reason_counts(reasons) -> Counter:
    """Skipped files counted by reason, without the detail in parentheses (``"hidden or system file (left out: ...)"``
    counts as ``"hidden or system file"``): the summary ``fit`` prints and ``evaluate`` repeats."""
    return Counter(r.split(" (")[0] for r in reasons)


@dataclass(frozen=True)
class ImageRecord:
    """One usable image: its path, class index and content hash."""

    path: Path
    label: int
    sha256: str


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


CONFLICTING_LABELS_ADVICE = "remove the copy filed under the wrong class, or move it to the right class folder (relabel)"


@dataclass(frozen=True)
class ConflictingLabel:
    """Byte-identical image content filed under two or more classes (in one split or across splits): the model is taught,
    or scored against, two answers for the same image, and at least one of them is wrong."""

    sha256: str
    copies: tuple[tuple[str, Path, str], ...]  # (split, path, class), every copy of the content

    @property
    def classes(self) -> list[str]:
        return sorted({c for _, _, c in self.copies})

    def describe(self) -> str:
        return " == ".join(f"{p} ({split}, class '{c}')" for split, p, c in self.copies)

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "classes": self.classes,
                "copies": [{"split": split, "path": str(p), "class": c} for split, p, c in self.copies]}


@dataclass
class ImageSplits:
    """A labelled data set split three ways, plus what was skipped and why."""

    root: Path
    classes: list[str]
    train: list[ImageRecord]
    val: list[ImageRecord]
    test: list[ImageRecord]
    layout: str
    val_source: str
    skipped: list[SkippedFile] = field(default_factory=list)
    duplicates: list[tuple[str, Path, str, Path]] = field(default_factory=list)  # (split, path, split, path)
    conflicting_labels: list[ConflictingLabel] = field(default_factory=list)  # identical content under different classes
    groups: str | None = None  # subject pattern searched in file names (None: every image is its own subject)
    groups_file: Path | None = None  # or a CSV table of file -> subject

    @cached_property
    def subjects(self) -> SubjectRule | None:
        """The rule naming each image's subject (``groups`` or ``groups_file``), or None (read once)."""
        return subject_rule(self.groups, self.groups_file)

    def split(self, name: str) -> list[ImageRecord]:
        """The records of split ``name``: 'train', 'val' or 'test'."""
        if name not in SPLIT_NAMES:
            raise DataError(f"no split {name!r}: the splits are {', '.join(repr(n) for n in SPLIT_NAMES)} "
                            "(e.g. splits.split('train'), or splits.train).")
        return getattr(self, name)

    def counts(self) -> dict[str, dict[str, int]]:
        return {s: {c: sum(r.label == i for r in self.split(s)) for i, c in enumerate(self.classes)} for s in SPLIT_NAMES}

    def summary(self) -> dict[str, Any]:
        """Plain data for config.json / metrics.json."""
        reasons = skip_reason_counts(s.reason for s in self.skipped)
        return {
            "root": str(self.root),
            "layout": self.layout,
            "val_source": self.val_source,
            "classes": self.classes,
            "counts": self.counts(),
            "num_skipped": len(self.skipped),
            "skipped_by_reason": dict(reasons),
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "cross_split_duplicates": self._duplicate_records(),
            "num_conflicting_labels": len(self.conflicting_labels),
            "conflicting_labels": [c.to_dict() for c in self.conflicting_labels],
            "groups": self.group_summary(),
        }

    def _duplicate_records(self) -> list[dict[str, Any]]:
        """The cross-split pairs for the summary, with each copy's class; ``conflicting`` when the two differ (also listed
        under ``conflicting_labels``)."""
        if not self.duplicates:
            return []
        cls = {r.path: self.classes[r.label] for split in SPLIT_NAMES for r in self.split(split)}
        out = []
        for a, pa, b, pb in self.duplicates:
            ca, cb = cls.get(pa), cls.get(pb)
            out.append({"a_split": a, "a": str(pa), "b_split": b, "b": str(pb), "a_class": ca, "b_class": cb,
                        "conflicting": ca is not None and cb is not None and ca != cb})
        return out

    def group_summary(self) -> dict[str, Any] | None:
        """Subjects per split, unmatched file names and subjects found in two splits (leakage), or None."""
        rule = self.subjects
        if rule is None:
            return None
        where: dict[str, list[str]] = {}
        per_split: dict[str, set[str]] = {}
        unmatched = 0
        for split in SPLIT_NAMES:
            per_split[split] = set()
            for r in self.split(split):
                sid = rule.subject(r.path)
                if sid is None:
                    unmatched += 1
                    per_split[split].add(str(r.path))  # its own subject
                    continue
                per_split[split].add(sid)
                if split not in where.setdefault(sid, []):
                    where[sid].append(split)
        shared = [{"subject": sid, "splits": sp} for sid, sp in sorted(where.items()) if len(sp) > 1]
        return {
            "rule": rule.describe(),
            **rule.record(),
            "num_subjects": {s: len(v) for s, v in per_split.items()},
            "num_unmatched": unmatched,
            "subjects_in_two_splits": shared[:20],
            "num_subjects_in_two_splits": len(shared),
        }


def _find_split_dir(root: Path, split: str) -> Path | None:
    found = [child for child in sorted(root.iterdir()) if child.is_dir() and child.name.lower() in _ALIASES[split]]
    if len(found) > 1:
        raise DataError(f"'{root}' has {len(found)} {split} folders ({', '.join(d.name + '/' for d in found)}): keep one "
                        f"(merge their class folders), so that no split's images are left out.")
    return found[0] if found else None


def _outside_class_folders(folder: Path, inside: set[Path], where: str, kind: str) -> list[SkippedFile]:
    """Image files in ``folder`` that lie outside the sub-folders in ``inside`` (its ``kind`` folders: the class folders
    of a split or of the root, or the split folders of the root). They belong to no class, so they are listed as skipped
    rather than vanishing. Other files there (a README, a CSV of subjects) are not data and are left alone. Image files
    in system clutter (a '__MACOSX/' or '.ipynb_checkpoints/' beside the class folders, a '._x.jpg' resource fork) are
    counted as hidden or system files, as they are inside a class folder."""
    out = []
    for child in sorted(folder.iterdir()):
        if child in inside:
            continue
        if child.is_dir():
            for f in walk_files(child):
                if f.suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                hidden = system_clutter(f.relative_to(folder))
                out.append(SkippedFile(f, f"hidden or system file (left out: '{hidden}')" if hidden is not None
                                       else f"in '{child.name}/', which is not a {kind} folder of {where}"))
        elif child.suffix.lower() in IMAGE_EXTENSIONS:
            hidden = system_clutter(Path(child.name))
            out.append(SkippedFile(child, f"hidden or system file (left out: '{hidden}')" if hidden is not None
                                   else f"not inside a {kind} folder of {where}"))
    return out


def _class_dirs(folder: Path) -> list[Path]:
    """The class (or split) folders in ``folder``: every sub-folder except system clutter ('__MACOSX/' from a zip made on
    a Mac, '.ipynb_checkpoints/', other hidden names), which is no class; ``_outside_class_folders`` counts its images."""
    return sorted(d for d in folder.iterdir() if d.is_dir() and system_clutter(Path(d.name)) is None)


def _scan_files(class_dirs: dict[str, Path]) -> list[tuple[Path, str, str | None]]:
    """(path, class, reason to skip it or None) for every file under each class folder (recursively), and for links
    whose target is gone: ``_read_records`` skips and counts those, so nothing in a class folder disappears without a
    line in the summary. System clutter (``image_files.system_clutter``) is skipped too: Jupyter's checkpoint copies would
    otherwise train twice, and leak into the validation carve."""
    files = []
    for cls, d in class_dirs.items():
        for p in walk_files(d):
            broken = p.is_symlink() and not p.exists()
            if not (p.is_file() or broken):
                continue
            hidden = system_clutter(p.relative_to(d))
            reason = ("broken link (its target is missing)" if broken
                      else f"hidden or system file (left out: '{hidden}')" if hidden is not None else None)
            files.append((p, cls, reason))
    return files


def _read_records(
    files: list[tuple[Path, str, str | None]], class_index: dict[str, int], *, max_pixels: int, progress: bool, label: str
) -> tuple[list[ImageRecord], list[SkippedFile]]:
    records, skipped = [], []
    with track(f"checking {label} images", len(files), unit="img", enabled=progress) as advance:
        for path, cls, reason in files:
            advance()
            if reason is not None:
                skipped.append(SkippedFile(path, reason))
                continue
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append(SkippedFile(path, f"not an image file (extension '{path.suffix or 'none'}')"))
                continue
            try:
                open_image(path, max_pixels=max_pixels)
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except BadImageError as exc:
                skipped.append(SkippedFile(path, exc.reason))
                continue
            records.append(ImageRecord(path, class_index[cls], digest))
    return records, skipped


def _stratified(records: list[ImageRecord], fraction: float, seed: int, what: str, classes: list[str],
                groups: SubjectRule | None = None):
    """(keep, hold): ``fraction`` held out, stratified by label; with ``groups``, each subject on one side."""
    labels = [r.label for r in records]
    counts = Counter(labels)
    too_few = [classes[c] for c, n in counts.items() if n < 2]
    if too_few:
        raise DataError(
            f"cannot carve a stratified {what} split: class(es) {too_few} have fewer than 2 usable images. "
            f"Add images, or provide an explicit {what}/ folder."
        )
    if groups is not None:
        return _grouped(records, fraction, seed, what, classes, groups)
    n_hold = max(len(counts), round(len(records) * fraction))
    if len(records) - n_hold < len(counts):
        raise DataError(f"too few images ({len(records)}) to carve a {what} split for {len(counts)} classes.")
    keep, hold = train_test_split(records, test_size=n_hold, stratify=labels, random_state=seed)
    return sorted(keep, key=lambda r: str(r.path)), sorted(hold, key=lambda r: str(r.path))


def _grouped(records: list[ImageRecord], fraction: float, seed: int, what: str, classes: list[str], groups: SubjectRule):
    """Group-disjoint stratified carve: a held-out fold of StratifiedGroupKFold(round(1/fraction)).

    The first fold that leaves every class on both sides is taken (usually the first).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.array([r.label for r in records])
    subjects = groups.subject_ids(r.path for r in records)
    n_splits = max(2, round(1 / fraction))
    by_class: dict[int, set[str]] = {}
    for s, y in zip(subjects, labels.tolist()):
        by_class.setdefault(y, set()).add(s)
    few = [classes[c] for c, subs in sorted(by_class.items()) if len(subs) < 2]
    n_subjects = len(set(subjects))
    fix = f"Add subjects, pass an explicit {'val' if what == 'validation' else what}/ folder, or drop --groups / --groups-file."
    if few:
        raise DataError(f"too few subjects to carve a grouped {what} split: class(es) {few} have images of fewer than 2 subjects "
                        f"({groups.describe()}). {fix}")
    if n_subjects < n_splits:
        raise DataError(f"too few subjects ({n_subjects}) to carve a grouped {what} split of {fraction:.0%}: "
                        f"at least {n_splits} are needed ({groups.describe()}). {fix}")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    present = set(by_class)
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits": checked below
        warnings.simplefilter("ignore", UserWarning)
        folds = list(splitter.split(np.zeros(len(records)), labels, subjects))
    for keep_idx, hold_idx in folds:
        if set(labels[keep_idx].tolist()) == present and set(labels[hold_idx].tolist()) == present:
            keep, hold = [records[i] for i in keep_idx], [records[i] for i in hold_idx]
            return sorted(keep, key=lambda r: str(r.path)), sorted(hold, key=lambda r: str(r.path))
    keep_idx, hold_idx = folds[0]
    lost = sorted({classes[c] for c in present - set(labels[keep_idx].tolist())} | {classes[c] for c in present - set(labels[hold_idx].tolist())})
    raise DataError(f"no grouped {what} split keeps every class on both sides: class(es) {lost} end up on one side only "
                    f"({n_subjects} subjects, {groups.describe()}). {fix}")


def _carved_source(pool: list[ImageRecord], fraction: float, seed: int, groups: SubjectRule | None) -> str:
    if groups is None:
        return f"carved from train ({fraction:.0%}, stratified, seed {seed})"
    n = len(set(groups.subject_ids(r.path for r in pool)))
    return f"carved from train ({fraction:.0%}, stratified, grouped by {groups.describe()}: {n} subjects, seed {seed})"


def _check_fraction(name: str, value: Any) -> float:
    """``value`` checked against the bounds of ``DataConfig``'s field ``name`` (those ``fit`` applies), as a float."""
    from typing import Annotated

    from pydantic import TypeAdapter, ValidationError

    from ..config import DataConfig

    spec = DataConfig.model_fields[name]
    try:
        return float(TypeAdapter(Annotated.__class_getitem__((spec.annotation, *spec.metadata))).validate_python(value))
    except ValidationError as exc:
        bounds = " and ".join(f"{op} {getattr(m, attr)}" for m in spec.metadata
                              for attr, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")) if hasattr(m, attr))
        raise DataError(f"{name} must be a number {bounds} ({spec.description[0].lower()}{spec.description[1:].rstrip('.')}); "
                        f"got {value!r} ({exc.errors()[0]['msg'].lower()}).") from None


def load_image_folder(
    root: str | Path,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    groups: str | None = None,
    groups_file: str | Path | None = None,
) -> ImageSplits:
    """Scan an image folder into :class:`ImageSplits` (see the module docstring for layouts).

    ``groups``: a regular expression searched in each file name; its first group that matched
    (else the whole match) is the subject. Carves keep each subject on one side; a file name
    that does not match is its own subject (counted in ``summary()["groups"]``).
    ``groups_file``: instead, a CSV table of file -> subject (:class:`~transferkit.data.subjects.SubjectTable`).
    """
    val_fraction, test_fraction = _check_fraction("val_fraction", val_fraction), _check_fraction("test_fraction", test_fraction)
    rx = subject_rule(groups, groups_file)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder '{root}' does not exist or is not a folder. Pass a folder with one sub-folder per class.")
    split_dirs = {s: _find_split_dir(root, s) for s in SPLIT_NAMES}
    has_split_layout = any(split_dirs.values())

    if has_split_layout:
        for required in ("train", "test"):
            if split_dirs[required] is None:
                present = [s for s, d in split_dirs.items() if d]
                raise DataError(
                    f"'{root}' has {'/'.join(p + '/' for p in present)} but no {required}/ folder. "
                    "Use the layout train/<class>/, test/<class>/ (val/ optional), or put class folders directly in the root."
                )
        layout = "train/test" + ("/val" if split_dirs["val"] else "")
        class_dirs = {s: {d.name: d for d in _class_dirs(split_dirs[s])} for s in SPLIT_NAMES if split_dirs[s]}
        classes = sorted(class_dirs["train"])
    else:
        layout = "class folders (split with seed)"
        class_dirs = {"all": {d.name: d for d in _class_dirs(root)}}
        classes = sorted(class_dirs["all"])

    where = split_dirs["train"] if has_split_layout else root
    if not classes:
        raise DataError(f"no class folders in '{where}'. Expected one sub-folder per class (e.g. NORMAL/, PNEUMONIA/).")
    if len(classes) < 2:
        raise DataError(f"only one class folder ('{classes[0]}') in '{where}': a classifier needs at least two classes.")
    for split, dirs in class_dirs.items():
        unknown = sorted(set(dirs) - set(classes))
        if unknown:
            raise DataError(
                f"{split}/ has class folder(s) {unknown} that train/ does not have (train classes: {classes}). "
                "Rename or remove them so every split uses the same class names."
            )
    class_index = {c: i for i, c in enumerate(classes)}

    scanned: dict[str, list[ImageRecord]] = {}
    skipped: list[SkippedFile] = []
    if has_split_layout:
        skipped += _outside_class_folders(root, {d for d in split_dirs.values() if d}, "the data folder", "split")
        for split, dirs in class_dirs.items():
            skipped += _outside_class_folders(split_dirs[split], set(dirs.values()), f"{split_dirs[split].name}/", "class")
    else:
        skipped += _outside_class_folders(root, set(class_dirs["all"].values()), "the data folder", "class")
    for split, dirs in class_dirs.items():
        recs, skip = _read_records(_scan_files(dirs), class_index, max_pixels=max_pixels, progress=progress, label=split)
        scanned[split] = recs
        skipped += skip

    def check_classes(records: list[ImageRecord], split: str) -> None:
        have = Counter(r.label for r in records)
        empty = [c for c in classes if have[class_index[c]] == 0]
        if empty:
            n_skip = sum(1 for s in skipped if s.path.parent.name in empty)
            raise DataError(
                f"class(es) {empty} have no usable images in {split}"
                + (f" ({n_skip} file(s) skipped as unreadable)" if n_skip else "")
                + ". Every class needs images in every split."
            )

    if has_split_layout:
        check_classes(scanned["train"], "train/")
        test = scanned["test"]
        check_classes(test, "test/")
        if "val" in scanned:
            val, train, val_source = scanned["val"], scanned["train"], "val/ folder"
            check_classes(val, "val/")
        else:
            train, val = _stratified(scanned["train"], val_fraction, seed, "validation", classes, rx)
            val_source = _carved_source(scanned["train"], val_fraction, seed, rx)
    else:
        check_classes(scanned["all"], "the data folder")
        rest, test = _stratified(scanned["all"], test_fraction, seed, "test", classes, rx)
        train, val = _stratified(rest, val_fraction, seed, "validation", classes, rx)
        val_source = _carved_source(rest, val_fraction, seed, rx)

    splits = ImageSplits(root, classes, train, val, test, layout, val_source, skipped, groups=groups,
                         groups_file=Path(groups_file) if groups_file is not None else None)
    splits.duplicates = find_cross_split_duplicates(splits)
    splits.conflicting_labels = find_conflicting_labels(splits)
    return splits


def find_cross_split_duplicates(splits: ImageSplits) -> list[tuple[str, Path, str, Path]]:
    """Byte-identical files in two different splits (leakage: the test score is inflated)."""
    first_seen: dict[str, tuple[str, Path]] = {}
    dups = []
    for split in SPLIT_NAMES:
        for r in splits.split(split):
            if r.sha256 in first_seen and first_seen[r.sha256][0] != split:
                dups.append((*first_seen[r.sha256], split, r.path))
            first_seen.setdefault(r.sha256, (split, r.path))
    return dups


def find_conflicting_labels(splits: ImageSplits) -> list[ConflictingLabel]:
    """Byte-identical files filed under different classes, within a split or across splits (a wrong label: at least one
    copy is in the wrong class folder). Each content is listed once, with every copy of it (split, path, class)."""
    copies: dict[str, list[tuple[str, Path, int]]] = {}
    for split in SPLIT_NAMES:
        for r in splits.split(split):
            copies.setdefault(r.sha256, []).append((split, r.path, r.label))
    out = []
    for digest, cs in copies.items():
        if len({label for _, _, label in cs}) > 1:
            out.append(ConflictingLabel(digest, tuple((split, p, splits.classes[label]) for split, p, label in cs)))
    return sorted(out, key=lambda c: str(c.copies[0][1]))


def describe_conflicting_labels(summary: dict[str, Any], *, limit: int = 5) -> list[str]:
    """Lines for a person (the fit summary, the report): how many images carry conflicting labels, up to ``limit`` of
    them with every copy, and what to do. ``summary``: :meth:`ImageSplits.summary` (or config.json's ``data``)."""
    found = summary.get("conflicting_labels") or []
    if not found:
        return []
    lines = [f"{len(found)} image(s) are filed under more than one class (byte-identical copies with different labels), so "
             f"at least one copy of each is mislabelled: {CONFLICTING_LABELS_ADVICE}."]
    for c in found[:limit]:
        lines.append(" == ".join(f"{d['path']} ({d['split']}, class '{d['class']}')" for d in c["copies"]))
    if len(found) > limit:
        lines.append(f"... and {len(found) - limit} more (config.json: data.conflicting_labels)")
    return lines


def load_labelled_folder(
    folder: str | Path, classes: list[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True
) -> tuple[list[ImageRecord], list[SkippedFile]]:
    """Read a folder of class sub-folders against a known class list (for ``evaluate``).

    A ``train/test`` root is accepted too: its ``test/`` folder is used. Unknown class folders
    are an error naming the classes the model knows.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"'{folder}' is not a folder. Pass a folder with one sub-folder per class.")
    test_dir = _find_split_dir(folder, "test")
    if test_dir is not None:
        folder = test_dir
    dirs = {d.name: d for d in _class_dirs(folder)}
    if not dirs:
        raise DataError(f"no class folders in '{folder}'. Expected sub-folders named after the classes: {classes}.")
    unknown = sorted(set(dirs) - set(classes))
    if unknown:
        splits = [d for d in unknown if any(d.lower() in aliases for aliases in _ALIASES.values())]
        hint = (f" They look like split folders, and there is no test/: pass one of them (e.g. '{folder / splits[0]}')."
                if splits else "")
        raise DataError(f"class folder(s) {unknown} in '{folder}' are not classes of this model (it knows {classes}).{hint}")
    class_index = {c: i for i, c in enumerate(classes)}
    outside = _outside_class_folders(folder, set(dirs.values()), f"'{folder.name}/'", "class")
    records, skipped = _read_records(_scan_files(dirs), class_index, max_pixels=max_pixels, progress=progress, label=folder.name)
    return records, outside + skipped
