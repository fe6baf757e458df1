"""safetensors files written like every other file transferkit writes: atomically, with the permissions the umask gives.

safetensors' writer creates its files with mode 0600 (owner only), whatever the umask. A model folder copied to a
shared disk, or served by another account, then had a readable ``config.json`` beside unreadable weights (and feature
cache shards and checkpoints were private where the rest of the cache and the run were not).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _umask() -> int:
    try:  # Linux says it without changing it (no window in which another thread creates files under another mask)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere, reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def match_umask(path: str | os.PathLike) -> None:
    """Give ``path`` the mode ``open()`` (a file: 0666) or ``mkdir()`` (a folder: 0777) would give it, less the umask."""
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~_umask())


def save_model_file(module: Any, path: str | os.PathLike) -> Path:
    """``safetensors.torch.save_model`` to ``path`` atomically (a ``.tmp`` file, then ``os.replace``)."""
    from safetensors.torch import save_model

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_model(module, str(tmp))
    match_umask(tmp)
    os.replace(tmp, path)
    return path


def save_tensors_file(tensors: dict[str, Any], path: str | os.PathLike, *, metadata: dict[str, str] | None = None) -> Path:
    """torch tensors or numpy arrays (all of one kind) to ``path`` atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if all(type(v).__module__ == "numpy" for v in tensors.values()):
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file
    save_file(tensors, str(tmp), metadata=metadata)
    match_umask(tmp)
    os.replace(tmp, path)
    return path
