"""``gradparity validate --jobs N`` / ``validate(jobs=N)``: the cases shared among processes,
with the tables, the faults, the text and the exit code of ``jobs=1``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from harness import validate
from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
REFS = ["reference"]  # no framework to import in the pool's process: fast
CASES = ["card_sigmoid_unit", "fan_out_fan_in", "every_primitive", "mlp"]


def plain(text: str) -> str:
    """A crash's stack dump names the thread by its address, which no two runs share."""
    return re.sub(r"thread 0x[0-9a-f]+", "thread 0x…", text)


def same(one, two) -> None:
    """Two validations that must not differ in anything they report."""
    pd.testing.assert_frame_equal(one.agreement, two.agreement)
    pd.testing.assert_frame_equal(
        one.fault_table.drop(columns="traceback"), two.fault_table.drop(columns="traceback")
    )
    runs = ["case", "backend", "status", "error"]
    pd.testing.assert_frame_equal(one.comparison.runs[runs], two.comparison.runs[runs])
    assert [plain(f.line()) for f in one.findings] == [plain(f.line()) for f in two.findings]
    assert (one.ok, plain(one.text())) == (two.ok, plain(two.text()))


@pytest.mark.parametrize(
    "target, broken",
    [
        ("examples/engine_tiny.py:TinyEngine", False),
        (
            "harness.zoo.engines:OverwriteNotAdd",
            True,
        ),  # a value used twice keeps one path's gradient
    ],
)
def test_jobs_2_gives_the_tables_of_jobs_1(target, broken, monkeypatch):
    monkeypatch.chdir(ROOT)
    calls: dict[int, list] = {1: [], 2: []}
    one, two = (
        validate(
            target,
            form="engine",
            cases=CASES,
            references=REFS,
            jobs=j,
            progress=lambda case, backend, j=j: calls[j].append((case, backend)),
        )
        for j in (1, 2)
    )
    same(one, two)
    assert one.ok is not broken
    assert len(dict.fromkeys(two.agreement["case"])) == len(CASES)
    assert calls[2] == calls[1] and len(calls[1]) == len(CASES) * 2  # progress: same calls
    if broken:
        assert "fan_out_fan_in" in {f.case for f in two.findings if f.bad}


# A model plug-in that is right on some cases and, on others, crashes its process or hangs;
# it writes down which process started its worker (the worker's argv says), case by case.
FAULTY = """
import os, sys, time
from harness.validation.forms.tensor_engine import run_engine
from harness.zoo.tiny_engine import TinyEngine

def grads(params, inputs, case):
    with open(os.environ["GP_JOBS_LOG"], "a") as log:
        log.write(f"{sys.argv[2]} {case.name}\\n")  # the pid of the process that started the worker
    if case.name == "fan_out_fan_in":
        os.abort()
    if case.name == "card_sigmoid_unit":
        time.sleep(60)
    return run_engine(TinyEngine, case, params, inputs)
"""


def test_a_crash_or_a_hang_in_one_case_leaves_the_other_cases_rows(tmp_path, monkeypatch):
    (tmp_path / "faulty.py").write_text(FAULTY)
    log = tmp_path / "ran.log"
    monkeypatch.setenv("GP_JOBS_LOG", str(log))
    cases = [*CASES, "deep_chain"]
    runs = {}
    for jobs in (1, 2):
        log.unlink(missing_ok=True)
        runs[jobs] = validate(
            f"{tmp_path / 'faulty.py'}:grads",
            form="model",
            cases=cases,
            references=REFS,
            timeout=2,
            jobs=jobs,
        )
    two = runs[2]
    faults = {f.case: f.fault for f in two.faults}
    assert faults == {"fan_out_fan_in": "crash", "card_sigmoid_unit": "timeout"}
    mine = two.mine
    for case in ("every_primitive", "mlp", "deep_chain"):  # every other case compared, and agreeing
        rows = mine[mine["case"] == case]
        assert len(rows) > 0 and rows["ok"].all(), case
    same(runs[1], two)
    # under jobs=2 the cases really were shared: the plug-in's workers had two parents
    parents = {line.split()[0] for line in log.read_text().splitlines()}
    assert str(os.getpid()) in parents and len(parents) == 2, log.read_text()


@pytest.mark.parametrize(
    "target, expected",
    [
        ("examples/engine_tiny.py:TinyEngine", 0),
        ("harness.zoo.engines:SigmoidFromInput", 1),  # σ' taken from the input
    ],
)
def test_the_command_exits_as_with_one_job(target, expected, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    argv = [
        "validate",
        target,
        "--as",
        "engine",
        "--reference",
        "reference",
        *(a for c in CASES for a in ("--case", c)),
    ]
    codes, outs = [], []
    for jobs in ("1", "2"):
        codes.append(main([*argv, "--jobs", jobs]))
        outs.append(capsys.readouterr().out)
    assert codes == [expected, expected]
    assert outs[0] == outs[1]


@pytest.mark.parametrize("jobs", ["0", "-2"])
def test_jobs_below_1_is_bad_usage(jobs, capsys):
    with pytest.raises(SystemExit) as refused:  # as the options are parsed
        main(["validate", "examples/engine_tiny.py:TinyEngine", "--jobs", jobs])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "--jobs takes a whole number of processes from 1 to 256" in err and repr(jobs) in err
    with pytest.raises(ValueError, match="jobs"):
        validate("examples/engine_tiny.py:TinyEngine", jobs=int(jobs))


def test_where_the_cases_cannot_be_shared_they_run_one_after_another_and_it_says_so():
    from harness.zoo.tiny_engine import TinyEngine

    one = validate(TinyEngine, form="engine", cases=CASES[:2], references=REFS, isolate=False)
    two = validate(
        TinyEngine, form="engine", cases=CASES[:2], references=REFS, isolate=False, jobs=2
    )
    pd.testing.assert_frame_equal(one.agreement, two.agreement)
    assert any("jobs=2" in n and "one after another" in n for n in two.notes)
    assert not any("jobs" in n for n in one.notes)
    stage = validate("harness.zoo.stages:Linear", references=REFS, jobs=2)  # one case: no pool
    assert stage.ok and not stage.notes


def test_a_plugin_that_keeps_state_between_calls_is_said_to_depend_on_the_sharing():
    cases = ["mlp", "mlp_sigmoid_xent", "mlp_relu_xent"]
    runs = {
        j: validate(
            "harness.zoo.models:grads_not_reset", form="model", cases=cases, references=REFS, jobs=j
        )
        for j in (1, 2)
    }
    assert not runs[1].ok and not runs[2].ok
    assert not any("state" in n for n in runs[1].notes)
    assert any("keeps state" in n and "jobs=1" in n for n in runs[2].notes)
