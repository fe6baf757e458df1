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

        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} {self.unit}/s" if speed else f"- {self.unit}/s", style="progress.data.speed")


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
