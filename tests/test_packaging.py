"""The project carries what it needs: ADBench's data ships inside the package, and
nothing of the project reads outside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.cases.adbench import data_file, golden, read_lstm_input

ROOT = Path(__file__).resolve().parents[1]
# spelled apart, so that this file does not match itself
OUTSIDE = ("../" + "shared", '"shared"' + ' / "data"')


def test_adbench_input_golden_values_and_licence_ship_as_package_data():
    import harness.cases

    package = Path(harness.cases.__file__).parent
    for name in ("lstm_l2_c1024.txt", "golden.json", "LICENSE"):
        path = Path(str(data_file(name)))
        assert path.is_file() and package in path.parents, name
    licence = data_file("LICENSE").read_text()
    assert "MIT License" in licence and "microsoft/ADBench" in licence
    data = read_lstm_input(data_file("lstm_l2_c1024.txt"))
    assert data["main"].shape == (4, 56) and data["sequence"].shape == (1024, 14)
    assert golden()["objective"] == 0.66666518 and len(golden()["gradient"]) == 266


def test_the_wheel_takes_the_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"harness.cases" = ["data/adbench/*"]' in text


def test_no_tracked_file_reads_beside_the_checkout():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:  # not a git checkout (an sdist): look at the sources
        files = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py")]
    else:
        files = tracked.stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix in {".py", ".sh", ".toml", ".cfg", ".ini", ".txt", ""} and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if any(pattern in text for pattern in OUTSIDE):
                offenders.append(name)
    assert offenders == []


def test_every_package_of_the_tree_goes_into_the_wheel():
    """The wheel's package list is found, not written by hand: a new subpackage (cli/,
    report/, bench/) cannot be left out of an install."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = config["packages"]["find"]["include"]
    found = set(find_packages(str(ROOT), include=include))
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("harness", "reference")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk <= found, on_disk - found
