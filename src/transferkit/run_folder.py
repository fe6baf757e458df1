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


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_folder(out: str | Path, option: str = "--out") -> Path:
    """``out`` can become an output folder: a folder that can be written, or a path that can be made (its nearest
    existing parent is a writable folder). Checked before any work, so a bad path fails in one line, not after minutes
    of features and training. Returns the path with ``~`` expanded."""
    import os

    from .errors import DataError

    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise DataError(f"{option} '{out}' is a file, not a folder: pass a folder (it is made when missing).")
    base = _nearest_existing(out)
    if not base.is_dir():
        raise DataError(f"{option} '{out}': '{base}' is a file, so no folder can be made below it. Pass another path.")
    if not os.access(base, os.W_OK | os.X_OK):
        raise DataError(f"{option} '{out}': cannot write in '{base}' (permission denied). Pass a folder you can write to.")
    return out


def check_writable_file(path: str | Path, option: str) -> Path:
    """``path`` can be written as a file: not a folder, and its folder exists or can be made and written."""
    from .errors import DataError

    import os

    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{option} '{path}' is a folder: pass a file name (e.g. {path / 'ranking.json'}).")
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise DataError(f"{option} '{path}': '{base}' is a file, so no folder can be made below it. Pass another path.")
    if not os.access(base, os.W_OK | os.X_OK):
        raise DataError(f"{option} '{path}': cannot write in '{base}' (permission denied). Pass a path you can write to.")
    return path


def seeds_hint(directory: Path) -> str:
    """When ``directory`` is the parent of ``fit --seeds`` runs: a sentence naming one of them, else ''."""
    if not directory.is_dir():
        return ""
    runs = sorted(p.name for p in directory.glob("seed-*") if (p / "model" / "config.json").is_file())
    return f" It holds the runs of `fit --seeds`: pass one of them, e.g. '{directory / runs[0]}'." if runs else ""


def check_run_folder(out: str | Path) -> Path:
    """``out`` can hold a run: writable (see :func:`check_writable_folder`), and new, empty, or holding transferkit's own
    outputs (an earlier run, which the new one replaces, or ``fit --seeds`` runs). A folder of other files is refused: a
    run would overwrite its config.json or metrics.json and mix its model/ and report/ with what is there."""
    from .errors import DataError

    out = check_writable_folder(out, "--out")
    if out.is_dir() and not holds_transferkit_outputs(out):
        others = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise DataError(f"--out '{out}' holds other files ({shown}) and no transferkit run: a run there would overwrite or mix "
                            "with them. Pass a new or empty folder.")
    return out


def holds_transferkit_outputs(folder: str | Path) -> bool:
    """True when ``folder`` holds a run (:func:`holds_run`) or the runs of ``fit --seeds`` (``seeds.json``, ``seed-*/``)."""
    folder = Path(folder)
    return holds_run(folder) or (folder / "seeds.json").is_file() or any(holds_run(p) for p in folder.glob("seed-*"))


def holds_run(run_dir: str | Path) -> bool:
    """True when ``run_dir/config.json`` was written by ``transferkit fit`` or ``fit-text``."""
    try:
        saved = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and ("fit" in saved or "fit_text" in saved)


def clear_previous_run(run_dir: str | Path, *, keep: tuple[str, ...] = ()) -> list[str]:
    """Remove an earlier run's outputs from ``run_dir`` before a new run starts there; the names removed (folders end
    in ``/``). An earlier ``fit --seeds`` there goes too (``seeds.json`` and its ``seed-*/`` runs), except the names in
    ``keep`` (the seeds' runs a new ``--seeds`` has just written). Nothing is removed when ``run_dir`` holds no
    transferkit output."""
    run_dir = Path(run_dir)
    if not holds_transferkit_outputs(run_dir):
        return []
    removed = []
    seed_runs = sorted(p.name for p in run_dir.glob("seed-*") if p.name not in keep and holds_run(p))
    for name in (*RUN_OUTPUTS, "seeds.json", *seed_runs):
        if name in keep:
            continue
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed.append(name + "/")
        elif path.exists() or path.is_symlink():
            path.unlink()
            removed.append(name)
    return removed
