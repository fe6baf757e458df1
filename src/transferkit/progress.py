"""Rich progress bars with rate and ETA, shared by every long loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


class _RateColumn(TextColumn):
    def __init__(self, unit: str):
        super().__init__("")
        self.unit = unit

    def render(self, task):  # type: ignore[override]
        from rich.text import Text

        return Text(format_rate(task, self.unit), style="progress.data.speed")


def format_rate(task, unit: str) -> str:
    """The rate of a rich task: while it runs, rich's recent-window speed (what the ETA uses); once finished, the
    average over the whole task (a window would show the last few, maybe instant, steps: e.g. candidates skipped for
    missing weights at the end of a ranking). Slow tasks read as seconds per item."""
    if task.finished and task.elapsed and task.completed:
        speed = task.completed / task.elapsed
    else:
        speed = task.speed
    if not speed:
        return f"- {unit}/s"
    return f"{speed:,.1f} {unit}/s" if speed >= 1 else f"{1 / speed:,.1f} s/{unit}"


@contextmanager
def track(description: str, total: int | None, *, unit: str = "it", enabled: bool = True) -> Iterator[Callable[..., None]]:
    """``with track("features", n, unit="img") as advance: ... advance(k)``; a no-op when disabled."""
    if not enabled:
        yield lambda *args, **kwargs: None
        return
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            progress.update(task, advance=n, **({"info": info} if info is not None else {}))

        yield advance
