"""Near-duplicate images across splits (perceptual hash)."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from transferkit.data.leakage import find_near_duplicates


def _texture(path, seed, size=96):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)  # smooth blocks: a structure pHash sees
    Image.fromarray(small).resize((size, size), Image.BICUBIC).save(path)
    return path


def test_finds_reencoded_resized_copy_across_splits_only(tmp_path):
    train = [_texture(tmp_path / f"train{i}.png", i) for i in range(6)]
    # test: a resized, brightened JPEG copy of train[2], plus unrelated images
    copy = tmp_path / "test_copy.jpg"
    img = Image.open(train[2]).resize((150, 150))
    ImageEnhance.Brightness(img).enhance(1.1).save(copy, quality=70)
    test = [copy] + [_texture(tmp_path / f"test{i}.png", 100 + i) for i in range(5)]
    # a same-split duplicate must not be reported (it is not leakage)
    same_split = tmp_path / "train_dup.png"
    Image.open(train[0]).save(same_split)
    pairs = find_near_duplicates({"train": train + [same_split], "test": test}, max_distance=6, progress=False)
    assert [(p.a, p.b) for p in pairs] == [(str(train[2]), str(copy))]
    assert pairs[0].a_split == "train" and pairs[0].b_split == "test" and pairs[0].distance <= 6


def test_unreadable_files_are_ignored_not_fatal(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    good = _texture(tmp_path / "a.png", 0)
    assert find_near_duplicates({"train": [good], "test": [bad]}, progress=False) == []


def _split_folder(tmp_path):
    """train/{a,b} and test/{a,b} of distinct textures, plus the copies each case needs."""
    root = tmp_path / "data"
    for split, offset in (("train", 0), ("test", 50)):
        for c, cls in enumerate("ab"):
            (root / split / cls).mkdir(parents=True)
            for i in range(4):
                _texture(root / split / cls / f"{i}.png", offset + 10 * c + i)
    return root


def test_look_alike_images_under_different_classes_are_found_in_any_split(tmp_path):
    from transferkit.data import load_image_folder
    from transferkit.data.leakage import check_images

    root = _split_folder(tmp_path)
    # a resized JPEG copy of train/a/0 filed under b (same split): no byte check can see it
    Image.open(root / "train/a/0.png").resize((150, 150)).save(root / "train/b/copy_of_a0.jpg", quality=80)
    # a brightened copy of train/b/1 filed under a in test: leakage *and* a label conflict
    ImageEnhance.Brightness(Image.open(root / "train/b/1.png")).enhance(1.1).save(root / "test/a/copy_of_b1.png")
    # same class: a duplicate, not a conflict; byte-identical under two classes: ImageSplits.conflicting_labels' business
    Image.open(root / "train/a/2.png").resize((120, 120)).save(root / "train/a/copy_of_a2.png")
    (root / "train/b/exact_a3.png").write_bytes((root / "train/a/3.png").read_bytes())
    splits = load_image_folder(root, progress=False)
    near, conflicts = check_images(splits, max_distance=6, progress=False)
    found = {(Path(c.a).relative_to(root).as_posix(), c.a_class, Path(c.b).relative_to(root).as_posix(), c.b_class) for c in conflicts}
    expected = {("train/a/0.png", "a", "train/b/copy_of_a0.jpg", "b"), ("train/b/1.png", "b", "test/a/copy_of_b1.png", "a")}
    assert {frozenset([(x[0], x[1]), (x[2], x[3])]) for x in found} == {frozenset([(x[0], x[1]), (x[2], x[3])]) for x in expected}
    assert all(c.distance <= 6 for c in conflicts)
    # the cross-split list is find_near_duplicates' answer, from the same hashes
    assert [(p.a, p.b) for p in near] == [(p.a, p.b) for p in find_near_duplicates(splits, max_distance=6, progress=False)]
    assert any(Path(p.b).name == "copy_of_b1.png" for p in near)


def test_no_look_alikes_among_distinct_images(tmp_path):
    from transferkit.data import load_image_folder
    from transferkit.data.leakage import check_images

    near, conflicts = check_images(load_image_folder(_split_folder(tmp_path), progress=False), max_distance=4, progress=False)
    assert near == [] and conflicts == []
