"""The layout is a checked contract: import-linter's contracts (pyproject.toml) hold, and
no comment or docstring names the history (an issue number) instead of the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_comment_names_an_issue_number():
    pattern = re.compile(r"\bissue\s*#?\d+", re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("harness", "reference", "tests", "examples", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_the_finite_difference_constants_are_defined_once():
    """The stencil's steps and limits live in harness/finite_differences.py alone: the
    numeric backend and the stage form's check of a plug-in's own forward read them there."""
    names = ("EPS", "SMOOTH_STEP", "KINK_STEP", "MAX_ELEMENTWISE", "DIRECTIONS", "MAX_SHRINKS")
    pattern = re.compile(rf"^({'|'.join(names)})\s*=", re.MULTILINE)
    defined = {
        str(path.relative_to(ROOT)): sorted(set(pattern.findall(path.read_text(encoding="utf-8"))))
        for path in (ROOT / "harness").rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    }
    assert defined == {"harness/finite_differences.py": sorted(names)}
