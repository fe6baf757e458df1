"""The bench scripts' command lines: every ``bench/*.py`` answers ``--help``, and every command quoted in
bench/RESULTS.md still parses with the script's own argument parser (nothing runs: parsing stops the script)."""

from __future__ import annotations

import argparse
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_"))


class _Parsed(Exception):
    def __init__(self, namespace):
        self.namespace = namespace


def quoted_commands(text: str) -> list[tuple[int, str, list[str]]]:
    """(line, script, argv) of each bench command in ``text``: ``python [bench/]X.py ARGS`` anywhere (code blocks, inline
    code, ``cd bench && ... X.py``), or an inline code span that starts with ``bench/X.py ARGS`` (not a bare
    ``bench/X.py [--option]`` named in the prose). Arguments run to the end of the inline code span or the line (with
    ``\\`` continuations); shell comments, ``[...]`` optional marks and ``...`` elisions are dropped."""
    names = "|".join(map(re.escape, SCRIPTS))
    out = []
    for m in re.finditer(rf"(?<![\w/.-])(?:bench/)?({names})\.py\b", text):
        start = text.rfind("\n", 0, m.start()) + 1
        before = text[start:m.start()]
        in_span = before.count("`") % 2 == 1
        is_command = re.search(r"python\S*\s+$", before) or (before.endswith("`") and in_span)
        if not is_command:
            continue
        rest = text[m.end():]
        if in_span or (start > 0 and text[:start].count("`") % 2 == 1 and "`" in rest.split("\n", 1)[0]):
            rest = rest[:rest.find("`")] if "`" in rest else rest
        else:
            end = 0
            while True:  # the code line, with backslash continuations
                nl = rest.find("\n", end)
                if nl < 0:
                    nl = len(rest)
                if rest[:nl].rstrip().endswith("\\") and nl < len(rest):
                    end = nl + 1
                    continue
                rest = rest[:nl]
                break
        rest = rest.replace("\\\n", " ").replace("\n", " ")
        argv = []
        for tok in shlex.split(rest, comments=True):
            if tok in ("&&", ";", "|", "||", "&") or tok.startswith((">", "2>")):
                break
            if tok in ("...", "…"):
                continue
            tok = tok[1:] if tok.startswith("[") else tok  # "[--seeds 0 1 2]": optional arguments
            argv.append(tok[:-1] if tok.endswith("]") and "[" not in tok else tok)
        if not re.search(r"python\S*\s+$", before) and (not argv or (len(argv) == 1 and argv[0].startswith("-"))):
            continue  # `bench/X.py` or `bench/X.py --option` named in the prose, not a command
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1), argv))
    return out


def parse_only(script: str, argv: list[str]) -> argparse.Namespace:
    """Run ``bench/<script>.py argv`` until its parser returns, then stop it; the parsed namespace."""
    real = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        raise _Parsed(real(self, args, namespace))

    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [str(BENCH / f"{script}.py"), *argv]
    sys.path.insert(0, str(BENCH))
    argparse.ArgumentParser.parse_args = stop
    try:
        runpy.run_path(str(BENCH / f"{script}.py"), run_name="__main__")
    except _Parsed as p:
        return p.namespace
    finally:
        argparse.ArgumentParser.parse_args = real
        sys.argv, sys.path[:] = old_argv, old_path
    raise AssertionError(f"{script}.py returned without parsing its arguments")


COMMANDS = quoted_commands((BENCH / "RESULTS.md").read_text(encoding="utf-8"))


def test_results_md_quotes_commands_of_every_kind():
    quoted = {s for _, s, _ in COMMANDS}
    for script in ("selection", "finetune", "text", "frozen_base", "lp_refit_cv", "feature_views_cv", "pooling_cv",
                   "multilayer_features_cv", "train_views_cv"):
        assert script in quoted


@pytest.mark.parametrize("line,script,argv", COMMANDS, ids=[f"L{n}-{s}" for n, s, _ in COMMANDS])
def test_results_md_command_parses(line, script, argv):
    parse_only(script, argv)


def test_docstring_commands_parse():
    """The usage lines in the scripts' own docstrings parse too."""
    for script in SCRIPTS:
        for _, name, argv in quoted_commands((BENCH / f"{script}.py").read_text(encoding="utf-8")):
            parse_only(name, argv)


def test_artifacts_option_defaults_to_todays_folder(tmp_path):
    art = BENCH / "artifacts"
    assert parse_only("selection", []).artifacts == art
    assert parse_only("frozen_base", []).artifacts == art
    assert parse_only("text", []).artifacts == art
    assert parse_only("finetune", ["data"]).artifacts == Path("bench/artifacts")
    for script in ("selection", "frozen_base", "text"):
        assert parse_only(script, ["--artifacts", str(tmp_path)]).artifacts == tmp_path


def test_shared_data_env_overrides_the_data_root(tmp_path):
    env = {**os.environ, "TRANSFERKIT_SHARED_DATA": str(tmp_path)}
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); import _common; print(_common.SHARED); _common.require_data('nope')"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.stdout.strip() == str(tmp_path)
    assert r.returncode == 1 and str(tmp_path / "nope") in r.stderr and "TRANSFERKIT_SHARED_DATA" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_help_exits_zero(script):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), "--help"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:")
