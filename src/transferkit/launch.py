"""Runs started by ``accelerate launch`` (or ``torchrun``) on several processes: how many there are, which one prints
and writes, the work that runs once for all of them, and the commands that are one process's work.

The count and rank come from the environment the launcher sets (``WORLD_SIZE``, ``RANK``), so they are right before
any :class:`accelerate.Accelerator` exists and on CPU-only machines, where a bare ``PartialState()`` reports one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import ConfigError, TransferKitError

T = TypeVar("T")


def process_count() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """True for the process that prints and writes (global rank 0, or no launcher)."""
    return os.environ.get("RANK", "0") == "0"


def refuse_several_processes(what: str, instead: str) -> None:
    """An error (once per process; the CLI prints the main process's) for work that one process does, when launched on several."""
    if process_count() > 1:
        raise ConfigError(f"{what} runs in one process, but `accelerate launch` started {process_count()}: every process would "
                          f"repeat it and write the same files. {instead}")


def on_main_process(work: Callable[[], T], share: Callable[[T], Any] = lambda result: result) -> Any:
    """Run ``work`` on the main process only and give every process ``share(result)`` (the main process gets the whole
    result). A :class:`TransferKitError` raised there is raised on every process. Without several initialised processes
    this is ``work()``. ``share`` picks what travels (pickled between the run's own processes): plain values."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return work()
    result: Any = None
    error: TransferKitError | None = None
    payload: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            result = work()
            payload = [("ok", share(result))]
        except TransferKitError as exc:
            error, payload = exc, [("error", str(exc))]
    dist.broadcast_object_list(payload, src=0)
    status, value = payload[0]
    if status == "error":
        raise error if error is not None else TransferKitError(value)
    return result if dist.get_rank() == 0 else value


__all__ = ["is_main_process", "on_main_process", "process_count", "refuse_several_processes"]
