"""`transferkit cache info | clear`: what the feature cache holds, and freeing its space."""

from __future__ import annotations

import fnmatch
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .app import app, console, err

cache_app = typer.Typer(help="Show or clear the feature cache (frozen-backbone features, computed once per file content).",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")

_CACHE_DIR_HELP = "Feature cache folder (default: $TRANSFERKIT_CACHE/features, else ~/.cache/transferkit/features)."


def _size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    raise AssertionError("unreachable")


def _open(cache_dir: Optional[Path]):
    from ..features import FeatureCache

    return FeatureCache(cache_dir)


@cache_app.command(epilog="Example: transferkit cache info --json")
def info(
    cache_dir: Annotated[Optional[Path], typer.Option(help=_CACHE_DIR_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the feature spaces in the cache: backbone, weights, vectors, size on disk, last written."""
    cache = _open(cache_dir)
    rows = cache.spaces()
    if as_json:
        console.print_json(json.dumps({"cache_dir": str(cache.cache_dir), "spaces": rows,
                                       "total_bytes": sum(r["bytes"] for r in rows)}))
        return
    if not rows:
        console.print(f"The feature cache {escape(str(cache.cache_dir))} is empty.")
        return
    table = Table(title=f"feature cache: {escape(str(cache.cache_dir))}", header_style="bold")
    for c in ("key", "backbone", "weights", "vectors", "size", "last written"):
        wraps = c in ("backbone", "weights")
        table.add_column(c, justify="right" if c in ("vectors", "size") else "left", no_wrap=not wraps,
                         overflow="fold" if wraps else "ellipsis", min_width=8 if wraps else None)
    for r in rows:
        table.add_row(r["key"][:12], escape(str(r["backbone"] or "?")), escape(str(r["weights_source"] or "?")),
                      str(r["num_vectors"]), _size(r["bytes"]),
                      datetime.fromtimestamp(r["last_written"]).strftime("%Y-%m-%d %H:%M"))
    console.print(table)
    console.print(f"{len(rows)} feature space(s), {_size(sum(r['bytes'] for r in rows))} in all. "
                  "`transferkit cache clear` frees them; features are computed again when next needed.")


@cache_app.command(epilog="Examples: transferkit cache clear --backbone 'tf_efficientnet_*' --yes\n\n"
                          "transferkit cache clear --older-than 30 --yes")
def clear(
    backbone: Annotated[Optional[str], typer.Option(help="Only feature spaces of backbones matching this shell-style pattern.")] = None,
    older_than: Annotated[Optional[float], typer.Option(min=0, help="Only feature spaces not written for this many days.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(help=_CACHE_DIR_HELP)] = None,
) -> None:
    """Delete cached features: all, or those of some backbones or not written lately. Weights, runs and models stay."""
    import time

    cache = _open(cache_dir)
    rows = cache.spaces()
    if backbone is not None:
        rows = [r for r in rows if fnmatch.fnmatchcase(str(r["backbone"]), backbone)]
    if older_than is not None:
        rows = [r for r in rows if r["last_written"] < time.time() - older_than * 86400]
    if not rows:
        console.print("Nothing to clear: no feature space in " f"{escape(str(cache.cache_dir))}"
                      + (" matches." if backbone is not None or older_than is not None else " (it is empty)."))
        return
    what = f"{len(rows)} feature space(s), {_size(sum(r['bytes'] for r in rows))}, from {escape(str(cache.cache_dir))}"
    if not yes:
        if not sys.stdin.isatty():
            err.print(f"[bold red]error:[/] this would delete {what}; nobody is at the terminal to confirm. Pass --yes.")
            raise typer.Exit(code=1)
        typer.confirm(f"Delete {what}?", abort=True)
    freed = 0
    for r in rows:
        try:
            freed += cache.remove(r["key"])
        except (KeyError, OSError) as exc:
            err.print(f"[yellow]note:[/] could not delete {escape(r['key'])}: {escape(str(exc))}")
    console.print(f"Deleted {_size(freed)} of cached features. They are computed again when next needed.")
