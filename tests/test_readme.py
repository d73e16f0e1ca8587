"""The README's commands are true: every `gradparity …` line it shows parses with the
command's own parser and names files that exist, and the quick start's two commands are
the ones .ci/run runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli import parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S)


def commands() -> list[str]:
    found = []
    for block in BLOCKS:
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip().removeprefix("$ ")
            if line.startswith("gradparity "):
                found.append(line)
    return found


def test_the_readme_shows_commands():
    assert len(commands()) >= 15


@pytest.mark.parametrize("line", commands())
def test_every_gradparity_command_in_the_readme_parses_and_its_files_exist(line):
    argv = shlex.split(line)[1:]
    args = parser().parse_args(argv)  # SystemExit (a failed test) on an unknown option
    target = getattr(args, "target", None)
    if target and ".py:" in target:
        assert (ROOT / target.split(":")[0]).is_file(), target


def test_the_quick_start_is_what_ci_runs_in_a_fresh_clone():
    ci = (ROOT / ".ci" / "run").read_text()
    for marker in ("main-command", "test-command"):
        block = re.search(
            f"<!-- {marker} -->\\n```\\n(.*?)\\n```\\n<!-- /{marker} -->", README, re.S
        )
        assert block, marker
        assert ". .venv/bin/activate" in block[1]  # later commands work as written
        assert f"readme_command {marker}" in ci
    assert "git clone" in ci and "shared" in ci


def test_the_import_paths_the_readme_documents_work():
    """Every `from … import …` line of the README's Python blocks imports what it names, and
    `validate` and `compare_backends` are the functions, not modules."""
    lines = [
        line.strip()
        for block in re.findall(r"```python\n(.*?)```", README, flags=re.S)
        for line in block.splitlines()
        if line.strip().startswith(("from harness", "import harness", "from reference"))
    ]
    assert lines
    scope: dict = {}
    for line in lines:
        exec(line, scope)  # the README's own import lines
    import harness

    assert callable(harness.validate) and callable(harness.compare_backends)
    assert harness.validate.__module__ == "harness.validation.validator"
