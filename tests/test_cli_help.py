"""`--help` of every CLI command shows an example invocation, and the examples only use real options.

The commands are enumerated from the typer app (so a new command without an example fails here);
tests/test_cli.py already checks the rendered help of fit, evaluate, predict and models.
"""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from transferkit.cli.app import app

ALREADY_IN_TEST_CLI = {"fit", "evaluate", "predict", "models"}  # tests/test_cli.py::test_help_shows_an_example


def _commands() -> dict:
    """Every command by its full name; a group's sub-commands as "group sub" (e.g. "cache clear")."""
    out = {}
    for name, command in typer.main.get_command(app).commands.items():
        subcommands = getattr(command, "commands", None)  # a group (typer ships its own copy of click: no isinstance)
        out.update({f"{name} {sub}": c for sub, c in subcommands.items()} if subcommands else {name: command})
    return out


COMMANDS = sorted(_commands())


def _help(name: str) -> str:
    result = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.split())


def _examples(name: str) -> list[str]:
    """Each `transferkit NAME ...` invocation in the command's epilog, up to the next invocation or line break."""
    epilog = _commands()[name].epilog or ""
    starts = [m.start() for m in re.finditer(r"transferkit ", epilog)]
    segments = [epilog[a:b] for a, b in zip(starts, starts[1:] + [len(epilog)])]
    return [s.split("\n")[0] for s in segments if s.startswith(f"transferkit {name} ")]


def test_the_app_has_the_documented_commands():
    # the enumeration really sees the commands registered by every feature module
    assert {"rank", "fit", "fit-text", "evaluate", "evaluate-text", "predict", "predict-text", "export", "benchmark",
            "report", "models", "cache info", "cache clear"} <= set(COMMANDS)


@pytest.mark.parametrize("name", [c for c in COMMANDS if c not in ALREADY_IN_TEST_CLI])
def test_help_shows_an_example_invocation(name):
    text = _help(name)
    assert "Example" in text, f"`transferkit {name} --help` has no example"
    after = text[text.index("Example"):]
    assert re.search(rf"transferkit {re.escape(name)} \S", after), f"`transferkit {name} --help` shows no `transferkit {name} ...` invocation"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_used_in_an_example_exists(name):
    """An example is only useful if it runs: every -x/--xyz it uses is an option of that command."""
    examples = _examples(name)
    assert examples, f"the epilog of `{name}` has no `transferkit {name} ...` example"
    command = _commands()[name]
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for example in examples:
        used = {tok.rstrip(".,;") for tok in example.split() if re.fullmatch(r"--?[A-Za-z][\w-]*[.,;]?", tok)}
        unknown = used - known - {"--help"}
        assert not unknown, f"example `{example}` uses options `{name}` does not have: {sorted(unknown)}"
        assert len(example.split()) > 2, f"example `{example}` passes no arguments"
