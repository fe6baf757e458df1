"""Near-duplicate images across splits (perceptual hash)."""

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
