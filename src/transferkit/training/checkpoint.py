"""Training checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint is a folder ``checkpoints/epoch-0003[-step-0012]/`` holding

* ``model.safetensors``     the model's weights;
* ``optimizer.safetensors`` the optimizer's per-parameter tensors (AdamW moments, step);
* ``state.json``            optimizer hyper-parameters, scheduler state, RNG states, trainer
                            counters and history.

It is written under a temporary name and renamed into place; ``checkpoints/latest.json`` is
then replaced atomically to point at it. A crash (even ``kill -9``) at any moment leaves the
previous checkpoint intact and pointed to.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import TransferKitError

LATEST = "latest.json"


class CheckpointError(TransferKitError, ValueError):
    """A checkpoint folder that is missing or unreadable."""


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ---- optimizer state <-> (tensors, json) ------------------------------------------------------
def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}/{k}"] = v.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, k = key.split("/", 1)
        state.setdefault(int(pid), {})[k] = v
    for pid, st in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(st)
    return {"state": state, "param_groups": meta["param_groups"]}


# ---- RNG states ----------------------------------------------------------------------------
def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    np_state = np.random.get_state()
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda{i}"] = s
    meta = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda"))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))


# ---- save / load ---------------------------------------------------------------------------
def save_checkpoint(
    directory: str | os.PathLike,
    name: str,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    state: dict[str, Any] | None = None,
    keep: int = 1,
) -> Path:
    """Write checkpoint ``name`` atomically, point ``latest.json`` at it, keep the newest ``keep``."""
    from safetensors.torch import save_file, save_model

    from ..safetensors_files import match_umask

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    tmp = directory / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    meta: dict[str, Any] = {"format": "transferkit.checkpoint", "version": 1, "trainer": state or {}}
    rng_tensors, meta["rng"] = rng_state()
    save_file(rng_tensors, str(tmp / "rng.safetensors"))
    if optimizer is not None:
        opt_tensors, meta["optimizer"] = optimizer_to_flat(optimizer)
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    if scheduler is not None:
        meta["scheduler"] = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1, default=_json_default))
    for f in tmp.iterdir():  # data on disk before the rename makes it visible
        match_umask(f)  # safetensors writes 0600
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(directory / LATEST, json.dumps({"checkpoint": name}))
    older = sorted((p for p in directory.iterdir() if p.is_dir() and p.name.startswith("epoch-") and p.name != name), key=lambda p: p.stat().st_mtime)
    for p in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    directory = Path(directory)
    pointer = directory / LATEST
    if not pointer.is_file():
        return None
    try:
        path = directory / json.loads(pointer.read_text())["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:  # written atomically, so only damage or an edit does this
        kept = sorted(p.name for p in directory.glob("epoch-*") if (p / "state.json").is_file())
        raise CheckpointError(f"'{pointer}' cannot be read ({type(exc).__name__}): it names the checkpoint to resume from. Delete it "
                              "to start fine-tuning over" + (f", or write {{\"checkpoint\": \"{kept[-1]}\"}} into it to resume from the "
                              "newest one kept" if kept else "") + ".") from None
    return path if (path / "state.json").is_file() else None


def load_checkpoint(
    path: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, restore_rng: bool = True
) -> dict[str, Any]:
    """Restore what :func:`save_checkpoint` wrote; returns the trainer state dict."""
    from safetensors.torch import load_file, load_model

    path = Path(path)
    try:
        meta = json.loads((path / "state.json").read_text())
        load_model(model, str(path / "model.safetensors"), strict=True)
        if optimizer is not None and "optimizer" in meta:
            optimizer.load_state_dict(optimizer_from_flat(load_file(str(path / "optimizer.safetensors")), meta["optimizer"]))
        if scheduler is not None and "scheduler" in meta:
            scheduler.load_state_dict({**meta["scheduler"], "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
        if restore_rng:
            set_rng_state(load_file(str(path / "rng.safetensors")), meta["rng"])
    except Exception as exc:  # noqa: BLE001 - safetensors' SafetensorError (a truncated file) is none of the usual kinds
        raise CheckpointError(f"cannot restore checkpoint '{path}' ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). "
                              "Delete it (and checkpoints/latest.json) to start over.") from None
    return meta["trainer"]


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if torch.is_tensor(o):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
