"""The JSON files a run writes (config.json, metrics.json, report.json...): strict and atomic.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which are not JSON: other readers
(browsers, ``jq``, pandas with a strict parser) reject the whole file. A metric that is
undefined on a split (ROC-AUC when a class is missing) is ``NaN`` in memory and ``null`` on
disk; the metrics say why under ``undefined`` (see :func:`transferkit.evaluation.undefined_metrics`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def to_strict_json(obj: Any) -> Any:
    """A copy of ``obj`` with every non-finite float (NaN, ±inf, numpy's too) replaced by ``None``."""
    if isinstance(obj, float):  # numpy float64 is a float subclass
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: to_strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_strict_json(v) for v in obj]
    if type(obj).__module__ == "numpy":
        if getattr(obj, "ndim", None) == 0:
            return to_strict_json(obj.item())
        if hasattr(obj, "tolist"):
            return to_strict_json(obj.tolist())
    return obj


def dumps_strict(obj: Any, *, indent: int | None = 2) -> str:
    """``json.dumps`` that never writes NaN/Infinity (they become ``null``); other objects via ``str``."""
    return json.dumps(to_strict_json(obj), indent=indent, default=str, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically (a temporary file, then ``os.replace``)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(dumps_strict(obj))
    os.replace(tmp, path)
    return path
