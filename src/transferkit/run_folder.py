"""A run folder (``fit --out RUN``, ``fit-text --out RUN``): the outputs a run writes there, and starting a new run
in a folder that already holds one.

A new run in the same folder replaces the earlier run's outputs as a whole. Keeping some of them would leave a report,
predictions or checkpoints that describe another model beside the new one (and a later ``--resume`` could continue from
the old run's checkpoints). Only the names a run writes are removed, and only when ``RUN/config.json`` shows that a
transferkit run was there: other files in the folder are left alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# what `fit` / `fit-text` write in RUN (the report adds report.html, report.json and report/)
RUN_OUTPUTS = ("config.json", "metrics.json", "splits.json", "ranking.json", "model", "checkpoints", "predictions", "report",
               "report.html", "report.json")


def check_run_folder(out: str | Path) -> None:
    """``out`` can hold a run: a folder, or a path not made yet (checked before any data are read or weights loaded)."""
    from .errors import DataError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out '{out}' is a file, not a folder: pass a folder for the run (it is made when missing).")


def holds_run(run_dir: str | Path) -> bool:
    """True when ``run_dir/config.json`` was written by ``transferkit fit`` or ``fit-text``."""
    try:
        saved = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and ("fit" in saved or "fit_text" in saved)


def clear_previous_run(run_dir: str | Path) -> list[str]:
    """Remove an earlier run's outputs from ``run_dir`` before a new run starts there; the names removed (folders end
    in ``/``). Nothing is removed when ``run_dir`` holds no transferkit run."""
    run_dir = Path(run_dir)
    if not holds_run(run_dir):
        return []
    removed = []
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed.append(name + "/")
        elif path.exists() or path.is_symlink():
            path.unlink()
            removed.append(name)
    return removed
