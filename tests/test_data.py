"""Image folders -> splits: both layouts, every bad file kind, clear errors, leakage check."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_image_folder, write_class_image
from transferkit.data import BadImageError, load_image_folder, load_labelled_folder, open_image
from transferkit.errors import DataError

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _paths(records) -> set[str]:
    return {r.path.name for r in records}


# ---- layouts -------------------------------------------------------------------------------


def test_train_test_layout_carves_stratified_val_from_train(tmp_path):
    root = make_image_folder(tmp_path / "d", classes=("cat", "dog"), per_class=20)
    splits = load_image_folder(root, val_fraction=0.25, seed=0, progress=False)
    assert splits.classes == ["cat", "dog"]
    assert splits.layout == "train/test"
    assert "carved from train" in splits.val_source
    counts = splits.counts()
    # 40 train images -> 10 validation, 5 per class (stratified); the test folder is untouched
    assert counts["val"] == {"cat": 5, "dog": 5}
    assert counts["train"] == {"cat": 15, "dog": 15}
    assert counts["test"] == {"cat": 10, "dog": 10}
    # val comes from train/ only, and never overlaps train
    assert all(r.path.parent.parent.name == "train" for r in splits.val)
    assert not _paths(splits.train) & _paths(splits.val)
    # labels follow the class folders
    assert all(splits.classes[r.label] == r.path.parent.name for r in splits.train + splits.val + splits.test)


def test_explicit_val_folder_is_used(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class=8, splits=("train", "val", "test"))
    splits = load_image_folder(root, progress=False)
    assert splits.layout == "train/test/val"
    assert splits.val_source == "val/ folder"
    assert all(r.path.parent.parent.name == "val" for r in splits.val)
    assert len(splits.train) == 16 and len(splits.val) == 8 and len(splits.test) == 8


def test_flat_class_folders_are_split_stratified_and_reproducibly(tmp_path):
    root = tmp_path / "flat"
    rng = np.random.default_rng(0)
    for ci, cls in enumerate(("a", "b", "c")):
        for i in range(20):
            write_class_image(root / cls / f"{cls}{i}.png", ci, rng, size=16)
    s0 = load_image_folder(root, test_fraction=0.2, val_fraction=0.25, seed=0, progress=False)
    assert s0.layout.startswith("class folders")
    assert s0.classes == ["a", "b", "c"]
    counts = s0.counts()
    assert counts["test"] == {"a": 4, "b": 4, "c": 4}  # 20 % of 60, stratified
    assert counts["val"] == {"a": 4, "b": 4, "c": 4}  # 25 % of the remaining 48
    assert sum(counts["train"].values()) == 36
    all_names = [_paths(s0.split(s)) for s in ("train", "val", "test")]
    assert sum(map(len, all_names)) == 60 and not (all_names[0] & all_names[1] or all_names[0] & all_names[2] or all_names[1] & all_names[2])

    again = load_image_folder(root, test_fraction=0.2, val_fraction=0.25, seed=0, progress=False)
    other = load_image_folder(root, test_fraction=0.2, val_fraction=0.25, seed=1, progress=False)
    assert [r.path for r in again.test] == [r.path for r in s0.test]
    assert [r.path for r in again.val] == [r.path for r in s0.val]
    assert _paths(other.test) != _paths(s0.test)


def test_split_folder_aliases_and_case(tmp_path):
    root = tmp_path / "d"
    make_image_folder(root, per_class=6, splits=("train", "test"))
    (root / "train").rename(root / "Training")
    (root / "test").rename(root / "Testing")
    splits = load_image_folder(root, progress=False)
    assert splits.layout == "train/test" and len(splits.test) == 8  # max(4, 6 // 2) per class


# ---- bad and odd files ---------------------------------------------------------------------


def _write_bad_and_odd_files(folder: Path) -> dict[str, str]:
    """Writes one file of every kind into ``folder``; returns name -> expected outcome."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rgb = (rng.random((40, 30, 3)) * 255).astype(np.uint8)
    # bad files
    Image.fromarray(rgb).save(folder / "full.jpg", quality=90)
    data = (folder / "full.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "full.jpg").unlink()
    (folder / "corrupt.png").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(rgb).resize((120, 100)).save(folder / "huge.png")  # 12 000 px > the test limit
    # odd but good files
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    Image.fromarray((np.arange(30 * 20).reshape(20, 30) * 100).astype(np.uint16)).save(folder / "gray16.png")
    rgba = Image.fromarray(rgb).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "rgba.png")
    pal = Image.new("P", (30, 20))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.save(folder / "palette.png")
    pal.save(folder / "palette_transparent.png", transparency=0)
    rotated = Image.fromarray(rgb)  # 30 wide x 40 high, stored with "rotate 90" in EXIF
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(folder / "exif6.jpg", exif=exif)
    Image.fromarray(rgb[..., 0]).save(folder / "gray8.png")
    return {
        "truncated.jpg": "corrupt or truncated",
        "corrupt.png": "not an image",
        "empty.jpg": "empty file",
        "notes.txt": "not an image file",
        "huge.png": "too large",
    }


def test_bad_files_are_skipped_counted_and_listed_odd_modes_become_rgb(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class=8)
    expected_bad = _write_bad_and_odd_files(root / "train" / "cat")
    splits = load_image_folder(root, max_pixels=10_000, progress=False)

    skipped = {s.path.name: s.reason for s in splits.skipped}
    assert set(skipped) == set(expected_bad)
    for name, fragment in expected_bad.items():
        assert fragment in skipped[name], (name, skipped[name])

    summary = splits.summary()
    assert summary["num_skipped"] == len(expected_bad)
    assert sum(summary["skipped_by_reason"].values()) == len(expected_bad)
    assert {s["path"] for s in summary["skipped"]} == {str(root / "train" / "cat" / n) for n in expected_bad}

    # every odd-mode file was kept (in train or the carved val) with the right label
    kept = {r.path.name: r for r in splits.train + splits.val}
    odd = ["cmyk.jpg", "gray16.png", "rgba.png", "palette.png", "palette_transparent.png", "exif6.jpg", "gray8.png"]
    for name in odd:
        assert name in kept, name
        assert splits.classes[kept[name].label] == "cat"
        img = open_image(kept[name].path)
        assert img.mode == "RGB", name
    assert len(splits.train) + len(splits.val) == 16 + len(odd)


def test_odd_modes_are_normalised_correctly(tmp_path):
    _write_bad_and_odd_files(tmp_path)
    assert open_image(tmp_path / "exif6.jpg").size == (40, 30)  # stored 30x40, orientation 6 -> rotated
    assert Image.open(tmp_path / "exif6.jpg").size == (30, 40)
    r, g, b = open_image(tmp_path / "cmyk.jpg").getpixel((5, 5))
    assert r > 200 and g < 60 and b < 60  # cyan-free, magenta+yellow = red
    g16 = np.asarray(open_image(tmp_path / "gray16.png"))
    assert g16.min() == 0 and g16.max() == 255  # the 16-bit range is stretched, not clipped to white
    assert (g16[..., 0] == g16[..., 1]).all()
    assert open_image(tmp_path / "palette.png").getpixel((0, 0)) == (255, 0, 0)
    assert open_image(tmp_path / "palette_transparent.png").getpixel((0, 0)) == (255, 255, 255)  # on white
    px = np.asarray(open_image(tmp_path / "rgba.png"), dtype=float)
    src = np.asarray(Image.open(tmp_path / "rgba.png").convert("RGB"), dtype=float)
    assert np.allclose(px, src * (128 / 255) + 255 * (127 / 255), atol=2)  # half-transparent over white


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("truncated.jpg", "truncated"), ("corrupt.png", "not an image"), ("empty.jpg", "empty"), ("huge.png", "too large")],
)
def test_open_image_raises_bad_image_error_with_reason(tmp_path, name, fragment):
    _write_bad_and_odd_files(tmp_path)
    with pytest.raises(BadImageError) as info:
        open_image(tmp_path / name, max_pixels=10_000)
    assert fragment in info.value.reason
    assert info.value.path == tmp_path / name


def test_images_under_eight_pixels_on_a_side_are_skipped_as_too_small(tmp_path):
    """A 1x1 tracking pixel or a 3-pixel sliver becomes a flat smear at the input size: skipped and counted, never trained
    on. 8 px is kept (small-image data sets are legitimate)."""
    root = make_image_folder(tmp_path / "d", per_class=8)
    dog = root / "train" / "dog"
    Image.new("RGB", (1, 1), (200, 30, 30)).save(dog / "pixel.png")
    Image.new("RGB", (3, 120), (20, 30, 200)).save(dog / "sliver.png")
    Image.new("RGB", (8, 8), (20, 200, 30)).save(dog / "small_but_fine.png")
    splits = load_image_folder(root, progress=False)
    used = {r.path.name for r in splits.train + splits.val}
    assert "small_but_fine.png" in used and not {"pixel.png", "sliver.png"} & used
    skipped = {Path(s.path).name: s.reason for s in splits.skipped}
    assert skipped["pixel.png"].startswith("too small (1x1") and skipped["sliver.png"].startswith("too small (3x120")
    assert splits.summary()["skipped_by_reason"] == {"too small": 2}


def test_missing_file_is_a_bad_image_not_an_oserror(tmp_path):
    with pytest.raises(BadImageError, match="no such file"):
        open_image(tmp_path / "nope.png")


def test_skip_reasons_are_grouped_by_kind(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class=8)
    for i, size in enumerate((120, 150)):
        Image.new("RGB", (size, 100)).save(root / "train" / "dog" / f"big{i}.png")
    (root / "train" / "dog" / "e1.jpg").write_bytes(b"")
    (root / "test" / "dog" / "e2.jpg").write_bytes(b"")
    summary = load_image_folder(root, max_pixels=10_000, progress=False).summary()
    assert summary["num_skipped"] == 4
    assert Counter(summary["skipped_by_reason"]) == Counter({"too large": 2, "empty file": 2})


def test_system_clutter_and_broken_links_are_skipped_and_counted_not_trained_on(tmp_path):
    """A Jupyter checkpoint copy, macOS metadata and a dangling link in a class folder: none becomes a training image
    (the checkpoint copy would train twice and could land in the validation carve), and each is named in the summary."""
    root = make_image_folder(tmp_path / "d", per_class=8)
    dog = root / "train" / "dog"
    real = sorted(dog.iterdir())[0]
    (dog / ".ipynb_checkpoints").mkdir()
    shutil.copy(real, dog / ".ipynb_checkpoints" / f"{real.stem}-checkpoint{real.suffix}")
    (dog / "__MACOSX").mkdir()
    shutil.copy(real, dog / "__MACOSX" / real.name)
    (dog / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (dog / "gone.png").symlink_to(tmp_path / "deleted.png")
    (dog / "nested").mkdir()
    shutil.copy(real, dog / "nested" / "kept.png")  # an ordinary sub-folder still counts: only clutter is left out
    splits = load_image_folder(root, progress=False)
    used = [r.path for r in splits.train + splits.val]
    assert dog / "nested" / "kept.png" in used
    assert not any(".ipynb_checkpoints" in p.parts or "__MACOSX" in p.parts for p in used)
    summary = splits.summary()
    assert Counter(summary["skipped_by_reason"]) == Counter({"hidden or system file": 3, "broken link": 1})
    assert {Path(s["path"]).name for s in summary["skipped"]} == {f"{real.stem}-checkpoint{real.suffix}", real.name, ".DS_Store", "gone.png"}
    assert sum(summary["counts"]["train"].values()) + sum(summary["counts"]["val"].values()) == 2 * 8 + 1


def _mac_zip_folder(folder: Path, cls: str, *, real: bool) -> None:
    """What unzipping a zip made on a Mac leaves beside the class folders: __MACOSX/<class>/ with a '._x' resource fork
    per image (not an image), and with ``real`` a copy of some images too."""
    mac = folder / "__MACOSX" / cls
    mac.mkdir(parents=True)
    for f in sorted((folder / cls).iterdir())[:3]:
        (mac / f"._{f.name}").write_bytes(b"\0\5\26\7Mac OS X        ATTR")
        if real:
            shutil.copy(f, mac / f.name)


@pytest.mark.parametrize("real", [True, False], ids=["with-copies", "resource-forks-only"])
def test_a_macosx_folder_beside_the_class_folders_is_no_class_but_counted(tmp_path, real):
    """__MACOSX/ beside the class folders became a class: trained on silently with copies in it, or "class(es)
    ['__MACOSX'] have no usable images" with only resource forks (a real Mac zip). It is clutter: skipped and counted."""
    flat = make_image_folder(tmp_path / "flat", classes=("healthy", "spot"), per_class=8, splits=("train",)) / "train"
    _mac_zip_folder(flat, "spot", real=real)
    splits = load_image_folder(flat, progress=False)
    assert splits.classes == ["healthy", "spot"]
    summary = splits.summary()
    assert summary["skipped_by_reason"] == {"hidden or system file": 6 if real else 3}
    assert all("__MACOSX" in Path(s["path"]).parts for s in summary["skipped"])
    assert not any("__MACOSX" in r.path.parts for s in ("train", "val", "test") for r in splits.split(s))

    root = make_image_folder(tmp_path / "split", classes=("healthy", "spot"), per_class=8)
    _mac_zip_folder(root / "train", "spot", real=real)  # train/__MACOSX/spot/
    (root / "__MACOSX" / "test" / "healthy").mkdir(parents=True)  # and one beside the split folders
    (root / "__MACOSX" / "test" / "healthy" / "._x.png").write_bytes(b"\0\5\26\7")
    splits = load_image_folder(root, progress=False)
    assert splits.classes == ["healthy", "spot"]
    assert splits.summary()["skipped_by_reason"] == {"hidden or system file": (6 if real else 3) + 1}
    # evaluate's reader: __MACOSX/ is not "a class this model does not know"
    records, skipped = load_labelled_folder(root / "train", ["healthy", "spot"], progress=False)
    assert len(records) == 16 and len(skipped) == (6 if real else 3)
    assert all(s.reason.startswith("hidden or system file") for s in skipped)


# ---- data set errors -----------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere", progress=False)


def test_empty_class_folder_is_a_clear_error(tmp_path):
    root = make_image_folder(tmp_path / "d", classes=("cat", "dog"), per_class=6)
    (root / "train" / "bird").mkdir()
    (root / "test" / "bird").mkdir()
    with pytest.raises(DataError) as info:
        load_image_folder(root, progress=False)
    assert "bird" in str(info.value) and "no usable images" in str(info.value)


def test_class_with_only_unreadable_files_names_the_skips(tmp_path):
    root = make_image_folder(tmp_path / "d", classes=("cat", "dog"), per_class=6)
    for i in range(3):
        (root / "train" / "bird" / f"b{i}.jpg").parent.mkdir(parents=True, exist_ok=True)
        (root / "train" / "bird" / f"b{i}.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError) as info:
        load_image_folder(root, progress=False)
    msg = str(info.value)
    assert "bird" in msg and "3 file(s) skipped" in msg


def test_single_class_is_a_clear_error(tmp_path):
    root = make_image_folder(tmp_path / "d", classes=("cat",), per_class=6)
    with pytest.raises(DataError) as info:
        load_image_folder(root, progress=False)
    assert "only one class" in str(info.value) and "cat" in str(info.value) and "two classes" in str(info.value)


def test_no_class_folders_is_a_clear_error(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="no class folders"):
        load_image_folder(tmp_path / "d", progress=False)


@pytest.mark.parametrize("missing", ["test", "train"])
def test_missing_split_is_a_clear_error(tmp_path, missing):
    root = make_image_folder(tmp_path / "d", per_class=6, splits=("train", "val", "test"))
    shutil.rmtree(root / missing)
    with pytest.raises(DataError) as info:
        load_image_folder(root, progress=False)
    msg = str(info.value)
    assert f"no {missing}/ folder" in msg and "train/<class>/" in msg


def test_unknown_class_in_test_is_a_clear_error(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class=6)
    write_class_image(root / "test" / "horse" / "h.png", 0, np.random.default_rng(0))
    with pytest.raises(DataError) as info:
        load_image_folder(root, progress=False)
    msg = str(info.value)
    assert "test/" in msg and "horse" in msg and "cat" in msg and "dog" in msg


def test_too_few_images_to_carve_validation(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class=1)  # 1 train image per class
    with pytest.raises(DataError, match="fewer than 2 usable images"):
        load_image_folder(root, progress=False)


# ---- leakage -------------------------------------------------------------------------------


def test_exact_cross_split_duplicates_are_reported(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class=8)
    leaked = sorted((root / "train" / "dog").glob("*.png"))[0]
    shutil.copy(leaked, root / "test" / "dog" / "copy_of_train.png")
    splits = load_image_folder(root, progress=False)
    assert len(splits.duplicates) == 1
    a_split, a_path, b_split, b_path = splits.duplicates[0]
    assert {a_path.name, b_path.name} == {leaked.name, "copy_of_train.png"}
    assert a_split in ("train", "val") and b_split == "test"
    assert splits.summary()["cross_split_duplicates"][0]["b"].endswith("copy_of_train.png")


def test_no_duplicates_reported_on_distinct_files(image_folder):
    assert load_image_folder(image_folder, progress=False).duplicates == []


def test_identical_images_under_different_classes_are_conflicting_labels(tmp_path):
    """The same image under two class folders got no warning at all (within a split), or only a plain leakage line
    (across splits). Both are a wrong label: counted, listed with every copy and its class, and said what to do."""
    from transferkit.data import describe_conflicting_labels

    root = make_image_folder(tmp_path / "d", classes=("healthy", "spot"), per_class=8, splits=("train", "val", "test"))
    healthy = sorted((root / "train" / "healthy").glob("*.png"))
    shutil.copy(healthy[0], root / "train" / "spot" / "also_spot.png")  # within train
    shutil.copy(healthy[1], root / "test" / "spot" / "test_spot.png")  # across splits, another label
    shutil.copy(healthy[2], root / "test" / "healthy" / "test_healthy.png")  # across splits, same label: leakage only
    splits = load_image_folder(root, progress=False)
    assert [{c[1].name for c in conflict.copies} for conflict in splits.conflicting_labels] == [
        {healthy[0].name, "also_spot.png"}, {healthy[1].name, "test_spot.png"}]
    assert all(conflict.classes == ["healthy", "spot"] for conflict in splits.conflicting_labels)
    summary = splits.summary()
    assert summary["num_conflicting_labels"] == 2
    assert {(d["split"], Path(d["path"]).name, d["class"]) for d in summary["conflicting_labels"][1]["copies"]} == {
        ("train", healthy[1].name, "healthy"), ("test", "test_spot.png", "spot")}
    leaks = {Path(d["b"]).name: d for d in summary["cross_split_duplicates"]}  # both cross-split copies stay leakage
    assert set(leaks) == {"test_spot.png", "test_healthy.png"}
    assert leaks["test_spot.png"]["conflicting"] and (leaks["test_spot.png"]["a_class"], leaks["test_spot.png"]["b_class"]) == ("healthy", "spot")
    assert not leaks["test_healthy.png"]["conflicting"]
    lines = describe_conflicting_labels(summary)
    assert lines[0].startswith("2 image(s) are filed under more than one class") and "relabel" in lines[0]
    assert "also_spot.png (train, class 'spot')" in lines[1] and len(lines) == 3
    # a flat folder: the copies may land in one split or two, and are a conflict either way
    flat = make_image_folder(tmp_path / "flat", classes=("healthy", "spot"), per_class=10, splits=("train",)) / "train"
    shutil.copy(sorted((flat / "healthy").glob("*.png"))[0], flat / "spot" / "copy.png")
    assert load_image_folder(flat, progress=False).summary()["num_conflicting_labels"] == 1


def test_distinct_images_have_no_conflicting_labels(image_folder):
    summary = load_image_folder(image_folder, progress=False).summary()
    assert summary["num_conflicting_labels"] == 0 and summary["conflicting_labels"] == []


# ---- evaluation folders --------------------------------------------------------------------


def test_labelled_folder_against_known_classes(tmp_path):
    root = make_image_folder(tmp_path / "d", per_class=6)
    (root / "test" / "cat" / "bad.jpg").write_bytes(b"")
    records, skipped = load_labelled_folder(root, ["cat", "dog"], progress=False)  # a root: its test/ is used
    assert len(records) == 8 and [s.path.name for s in skipped] == ["bad.jpg"]
    records, _ = load_labelled_folder(root / "test", ["dog", "cat"], progress=False)  # the model's class order
    assert all(["dog", "cat"][r.label] == r.path.parent.name for r in records)
    with pytest.raises(DataError, match="not classes of this model"):
        load_labelled_folder(root / "test", ["cat", "bird"], progress=False)


def test_images_outside_class_folders_and_in_linked_folders_are_not_lost(tmp_path):
    """A linked sub-folder's images vanished (Path.rglob does not follow folder links on Python 3.11), and so did images
    lying beside the class folders or in a folder that is no split: all without a line in the summary."""
    import os

    from conftest import make_image_folder, write_class_image

    root = make_image_folder(tmp_path / "d", per_class=6)
    rng = np.random.default_rng(1)
    elsewhere = [write_class_image(tmp_path / "more" / f"m{i}.png", 0, rng) for i in range(3)]
    os.symlink(tmp_path / "more", root / "train" / "cat" / "more")
    os.symlink(root / "train" / "cat", root / "train" / "cat" / "loop")  # a link back up: walked once, not forever
    stray = write_class_image(root / "train" / "stray.png", 0, rng)
    loose = write_class_image(root / "loose.png", 1, rng)
    extra = write_class_image(root / "extra" / "dog" / "e.png", 1, rng)
    (root / "README.md").write_text("where the images come from")  # not an image: not data, not a skip
    write_class_image(root / "train" / "cat" / "photo.JFIF", 0, rng)
    splits = load_image_folder(root, progress=False)
    train_val = [r.path for r in splits.train + splits.val]
    assert sum(p.parent.name == "more" for p in train_val) == len(elsewhere)
    assert any(p.name == "photo.JFIF" for p in train_val)
    assert splits.counts()["train"]["cat"] + splits.counts()["val"]["cat"] == 6 + 3 + 1
    reasons = {s.path.name: s.reason for s in splits.skipped}
    assert reasons == {"stray.png": "not inside a class folder of train/", "loose.png": "not inside a split folder of the data folder",
                       "e.png": "in 'extra/', which is not a split folder of the data folder"}
    assert {stray, loose, extra} == {s.path for s in splits.skipped}


def test_two_validation_folders_are_an_error_not_a_silent_choice(tmp_path):
    from conftest import make_image_folder

    root = make_image_folder(tmp_path / "d", per_class=6, splits=("train", "val", "test"))
    shutil.copytree(root / "val", root / "validation")
    with pytest.raises(DataError, match=r"2 val folders \(val/, validation/\): keep one"):
        load_image_folder(root, progress=False)


def test_fractions_outside_the_configs_bounds_are_refused_and_split_names_are_checked(tmp_path):
    """val_fraction=-0.5 or 0 and test_fraction=0 were accepted (test_fraction=0 still carved a 2-image test split)
    while fit refuses them through its config; split('bogus') was a raw AttributeError."""
    root = tmp_path / "flat"
    rng = np.random.default_rng(0)
    for ci, cls in enumerate(("a", "b")):
        for i in range(10):
            write_class_image(root / cls / f"{cls}{i}.png", ci, rng, size=16)
    for kw, message in (({"val_fraction": -0.5}, "val_fraction must be a number > 0 and < 1"),
                        ({"val_fraction": 0}, "val_fraction must be a number > 0 and < 1 .*got 0"),
                        ({"val_fraction": 1.0}, "val_fraction must be a number > 0 and < 1"),
                        ({"test_fraction": 0}, "test_fraction must be a number > 0 and < 1 \\(share held out for test"),
                        ({"test_fraction": "x"}, "test_fraction must be a number")):
        with pytest.raises(DataError, match=message):
            load_image_folder(root, progress=False, **kw)
    splits = load_image_folder(root, test_fraction=0.2, val_fraction=0.25, progress=False)
    assert len(splits.test) == 4 and len(splits.split("val")) == 4
    for name in ("bogus", "classes", "root"):
        with pytest.raises(DataError, match="no split .*: the splits are 'train', 'val', 'test'"):
            splits.split(name)
