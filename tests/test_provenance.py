"""What ran is said: the resolved path and SHA-256 of every file of the user's code (a
case's, a plug-in's) in the output's header, summary.json and runs.csv."""

from __future__ import annotations

import csv
import hashlib
import json

import pandas as pd
import pytest

from harness.cli import main
from harness.provenance import RUNS_COLUMNS, Source, with_sources
from harness.sandbox.channel import InProcess
from harness.selection import build_cases
from harness.target import parse_target, source_file
from harness.validation.validator import validate

MINE = """
from harness.cases.base import Case


class Tiny(Case):
    name = "tiny_provenance"
    family = "mine"

    def setup(self, rng):
        return {"w": rng.standard_normal(3)}, {"x": rng.standard_normal(3)}

    def loss(self, xp, params, inputs):
        return xp.sum(params["w"] * inputs["x"])


def grads(params, inputs, case):
    return {"w": inputs["x"].copy()}
"""


@pytest.fixture(scope="module")
def mine(tmp_path_factory):
    path = tmp_path_factory.mktemp("provenance") / "mine.py"
    path.write_text(MINE)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_validate_says_which_files_ran_in_its_header_runs_csv_and_summary(mine, tmp_path):
    path, sha = mine
    cases = build_cases([f"{path}:Tiny"], {})
    v = validate(
        f"{path}:grads", form="model", cases=cases, references=["reference"], channel=InProcess()
    )
    assert v.sources == [
        Source("case", "tiny_provenance", str(path.resolve()), sha),
        Source("plugin", "plugin:grads", str(path.resolve()), sha),
    ]
    lines = v.text().splitlines()
    assert lines[:2] == [
        f"case tiny_provenance: {path.resolve()} sha256 {sha}",
        f"plugin plugin:grads: {path.resolve()} sha256 {sha}",
    ]
    v.write(tmp_path / "out")
    rows = {r["backend"]: r for r in csv.DictReader(open(tmp_path / "out" / "runs.csv"))}
    assert rows["plugin:grads"]["plugin_sha256"] == sha == rows["reference"]["case_sha256"]
    assert rows["plugin:grads"]["plugin_file"] == str(path.resolve())
    assert rows["reference"]["plugin_file"] == ""
    facts = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(s["role"], s["sha256"]) for s in facts["sources"]] == [("case", sha), ("plugin", sha)]


def test_run_says_which_case_file_ran(mine, capsys):
    path, sha = mine
    code = main(
        [
            "run",
            "--case",
            f"{path}:Tiny",
            "--backend",
            "reference",
            "--backend",
            "numeric",
            "--quiet",
            "--noise",
            "0",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"case tiny_provenance: {path.resolve()} sha256 {sha}"
    )


def test_a_run_of_catalog_cases_alone_keeps_its_runs_table():
    runs = pd.DataFrame({"case": ["mlp"], "backend": ["torch"]})
    assert with_sources(runs, []) is runs
    found = [Source("case", "mine", "/x.py", "ab")]
    assert list(with_sources(runs, found).columns) == ["case", "backend", *RUNS_COLUMNS]


def test_a_module_targets_file_is_found_without_importing_it():
    import harness.compare

    assert source_file(parse_target("harness.compare:Verdict")) == harness.compare.__file__


def test_a_line_break_in_a_files_name_cannot_start_a_line_of_the_header():
    from harness.provenance import header

    (line,) = header([Source("case", "c", "/tmp/a\nplugin:p (model): 1/1 agree: AGREES.py", "ab")])
    assert "\n" not in line and line.startswith("case c: /tmp/a\\x0aplugin:p")


REWRITES = """
from pathlib import Path

from harness.cases.base import Case

_me = Path(__file__)
if "#" + " rewritten" not in _me.read_text():  # the first import rewrites the file
    _me.write_text(_me.read_text() + "\\n#" + " rewritten\\n")


class Tiny(Case):
    name = "tiny_rewrites"
    family = "mine"

    def setup(self, rng):
        return {"w": rng.standard_normal(3)}, {"x": rng.standard_normal(3)}

    def loss(self, xp, params, inputs):
        return xp.sum(params["w"] * inputs["x"])


def grads(params, inputs):
    return {"w": inputs["x"].copy()}
"""


def test_a_plugin_that_rewrites_its_file_on_import_is_named_by_what_ran(tmp_path):
    path = tmp_path / "rewrites.py"
    path.write_text(REWRITES)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    v = validate(f"{path}:grads", form="model", cases=["mlp"], references=["reference"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() != sha  # it did rewrite itself
    assert [s.sha256 for s in v.sources] == [sha]  # what was imported: the file before
    assert not v.ok and "source changed" in set(v.fault_table["fault"])


def test_a_case_file_that_rewrites_itself_on_import_is_named_by_what_ran(tmp_path):
    path = tmp_path / "rewrites.py"
    path.write_text(REWRITES)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    (case,) = build_cases([f"{path}:Tiny"], {})
    assert hashlib.sha256(path.read_bytes()).hexdigest() != sha
    from harness.provenance import sources

    assert [s.sha256 for s in sources([case])] == [sha]
