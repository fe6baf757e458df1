"""The progress bars' rate column: recent speed while running, the whole task's average once finished."""

from __future__ import annotations

from types import SimpleNamespace

from transferkit.progress import format_rate


def test_a_finished_task_shows_its_average_rate_not_the_last_instant_steps():
    # a ranking: 10 candidates in 259 s, the last ones skipped at once, so rich's recent window says thousands per second
    task = SimpleNamespace(finished=True, elapsed=259.0, completed=10, speed=2856.7)
    assert format_rate(task, "model") == "25.9 s/model"
    fast = SimpleNamespace(finished=True, elapsed=2.0, completed=750, speed=9000.0)
    assert format_rate(fast, "img") == "375.0 img/s"


def test_a_running_task_shows_the_recent_speed_and_a_dash_before_there_is_one():
    assert format_rate(SimpleNamespace(finished=False, elapsed=3.0, completed=30, speed=12.5), "img") == "12.5 img/s"
    assert format_rate(SimpleNamespace(finished=False, elapsed=0.0, completed=0, speed=None), "img") == "- img/s"
    assert format_rate(SimpleNamespace(finished=False, elapsed=60.0, completed=2, speed=0.05), "epoch") == "20.0 s/epoch"
