"""Reading one image file: any Pillow mode -> 8-bit RGB, every bad file -> a clear reason.

Handled: EXIF orientation, CMYK, 16-bit and 32-bit grayscale, RGBA/LA (composited on white),
palette images (with or without transparency), 1-bit, grayscale; missing, truncated, corrupt,
zero-byte and non-image files; decompression bombs (a pixel limit checked from the header,
before any pixel is decoded).

The one reader for training (:mod:`transferkit.data`) and for exported models on a device
(:mod:`transferkit.runtime`): it imports only numpy and Pillow, so the runtime stays
torch-free and both see exactly the same pixels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import TransferKitError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default bomb threshold
MIN_SIDE = 8  # images with a side under this (1x1 tracking pixels, slivers) are refused; 28-32 px data sets are fine


class ImageReadError(TransferKitError, ValueError):
    """An image that cannot be used; ``reason`` is short and human-readable."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def to_rgb(img: Image.Image) -> Image.Image:
    """Normalise any Pillow mode to 8-bit RGB (the same rules as training used)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.min(arr)), float(np.max(arr))
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open, fully decode and normalise an image file to RGB, or raise :class:`ImageReadError`."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "empty file (0 bytes)")
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if min(width, height) < MIN_SIDE:  # a tracking pixel or a sliver: a flat smear once resized to the input
                    raise ImageReadError(path, f"too small ({width}x{height}; under {MIN_SIDE} px on a side, nothing to classify)")
                if width * height > max_pixels:
                    raise ImageReadError(path, f"too large ({width}x{height} = {width * height:,} pixels > limit {max_pixels:,})")
                img.load()  # decode now: truncated data fails here, not later in a worker
                img = ImageOps.exif_transpose(img)
                return to_rgb(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(path, f"corrupt or truncated image ({exc})") from None


def system_clutter(relative: Path) -> str | None:
    """The first name in ``relative`` (a path below a data folder) that marks system clutter, else None: hidden names
    ('.ipynb_checkpoints', '.DS_Store', macOS '._x.jpg' resource forks) and '__MACOSX' folders from zips made on a Mac.
    Jupyter's checkpoint folders hold copies of real images, which would otherwise be read twice."""
    return next((part for part in relative.parts if part.startswith(".") or part == "__MACOSX"), None)


def walk_files(folder: Path) -> list[Path]:
    """Every file below ``folder``, sorted, following links to folders (``Path.rglob`` does not, on Python 3.11, so the
    images of a linked sub-folder vanished); a link that leads back into a folder already walked is not followed twice.
    Links whose target is gone are included (callers count them)."""
    import os

    out: list[Path] = []
    seen: set[str] = set()
    for here, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        out += [Path(here) / n for n in names]
    return sorted(out)


def list_images(paths, skipped: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Files as given, folders expanded (recursively, sorted, through linked folders) to their image files, system clutter
    left out. Other files found in a folder (not an image extension, a link whose target is gone) are appended to
    ``skipped`` as (path, reason), for the caller to report."""
    files: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            files.append(p)
            continue
        for f in walk_files(p):
            if system_clutter(f.relative_to(p)) is not None:
                continue
            if not f.exists():
                reason = "broken link (its target is missing)"
            elif f.suffix.lower() not in IMAGE_EXTENSIONS:
                reason = f"not an image file (extension '{f.suffix or 'none'}')"
            else:
                files.append(f)
                continue
            if skipped is not None:
                skipped.append((f, reason))
    return files
