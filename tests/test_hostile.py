"""No false success: cases and plug-ins that misbehave (tests/hostile/), run the way a user
runs them — the command in a process of its own — end as failed rows that name what they
did, with every other case still compared and written, exit 1, and nothing left running."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness import validate as validate_api

HOSTILE = Path(__file__).resolve().parent / "hostile"
CASES = HOSTILE / "cases.py"
PLUGINS = HOSTILE / "plugins.py"
FAST = ["--backend", "numeric", "--baseline", "reference", "--noise", "0"]  # no framework to import


def gradparity(*args: str, cwd: Path, tag: str = "", env: dict | None = None, timeout=180):
    """The command as a user runs it, from ``cwd``; $GP_TAG names what it may leave."""
    environ = {**os.environ, "GP_TAG": tag or new_tag(), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def new_tag() -> str:
    """A `sleep` argument no other test uses: `sleep 4711.123` lasts long enough."""
    return f"{random.randrange(10**6, 10**7)}.{random.randrange(10**3)}"


def left_running(tag: str) -> list[str]:
    shown = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True).stdout
    return [line for line in shown.splitlines() if f"sleep {tag}" in line and " Z" not in line[:14]]


@pytest.mark.parametrize("name, fault", [
    ("exits_0", "sys.exit(0)"),
    ("exits_3", "sys.exit(3)"),
    ("os_exit_7", "exited with status 7"),
    ("segfaults", "SIGSEGV"),
])  # fmt: skip
def test_a_case_that_ends_its_process_is_one_failed_row_and_the_rest_is_compared(
    tmp_path, name, fault
):
    done = gradparity(
        "run", "--case", f"{CASES}:{name}", "--case", "card_affine_square", *FAST, cwd=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith(f"  ✗ {name}")]
    assert failed and fault in failed[0], done.stdout
    assert "card_affine_square" in done.stdout and "FAILED" in done.stdout


def test_a_report_with_a_case_that_calls_sys_exit_0_is_written_and_fails(tmp_path):
    """The reproduction: today this exits 0 with nothing written."""
    out = tmp_path / "R"
    done = gradparity(
        "report",
        "--case",
        f"{CASES}:exits_0",
        "--case",
        "card_affine_square",
        *FAST,
        "--out",
        str(out),
        "--quiet",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 1 and not summary["all_agree"]
    agreement = pd.read_csv(out / "agreement.csv")
    theirs = agreement[agreement["case"] == "card_affine_square"]
    assert len(theirs) > 0 and theirs["ok"].all()
    mine = agreement[agreement["case"] == "exits_0"]
    assert (mine["verdict"] == "failed").all() and mine["error"].str.contains("sys.exit").all()
    assert "exits_0" in (out / "report.md").read_text()


def test_an_endless_loop_ends_at_the_timeout(tmp_path):
    done = gradparity(
        "run",
        "--case",
        f"{CASES}:loops",
        "--case",
        "card_affine_square",
        *FAST,
        "--timeout",
        "5",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "timeout" in done.stdout and "no answer within 5 s" in done.stdout


def test_an_endless_loop_in_a_sweep_on_two_processes_ends_each_point(tmp_path):
    done = gradparity(
        "run",
        "--case",
        f"{CASES}:loops",
        "--set",
        "n=2,3",
        "--jobs",
        "2",
        "--timeout",
        "5",
        *FAST,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    assert "2 points (n × seed); 0 agree, 2 fail" in done.stdout
    assert done.stdout.count("no answer within 5 s") >= 2


@pytest.mark.parametrize("namespace", ["1", "0"])
def test_no_process_a_case_started_outlives_the_command(tmp_path, namespace):
    """Whether the worker has a PID namespace of its own or subreapers alone keep its
    processes in view: a child left running, and one with no environment in a session of
    its own whose parent then ended, are both gone when the command ends."""
    env = {"GRADPARITY_PID_NAMESPACE": namespace}
    tag = new_tag()
    done = gradparity("run", "--case", f"{CASES}:spawns", *FAST, cwd=tmp_path, tag=tag, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    tag2 = new_tag()
    done = gradparity("run", "--case", f"{CASES}:escapes", *FAST, cwd=tmp_path, tag=tag2, env=env)
    assert done.returncode == 1 and "exited with status 0" in done.stdout
    assert left_running(tag) == [] and left_running(tag2) == []


@pytest.mark.parametrize("command", ["describe", "run"])
@pytest.mark.parametrize("file", ["exits_at_import.py", "os_exit_at_import.py"])
def test_a_case_file_that_exits_while_loading_is_bad_usage_not_success(tmp_path, command, file):
    done = gradparity(
        command, *(["--case"] if command == "run" else []), f"{HOSTILE / file}:X", cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "loading it failed in its worker" in done.stderr


def test_describe_runs_a_case_of_the_user_s_in_a_worker(tmp_path):
    done = gradparity("describe", f"{CASES}:clean", cwd=tmp_path)
    assert done.returncode == 0 and "parameters: W[3, 3]" in done.stdout
    done = gradparity("describe", f"{CASES}:exits_0", cwd=tmp_path)  # its forward exits
    assert done.returncode == 1 and "parameters: W[3, 3]" in done.stdout
    assert "✗ the case's forward failed: exit: sys.exit(0)" in done.stdout


# --- plug-ins that attack the process that judges them


def validate(plugin: str, tmp_path: Path, tag: str, env: dict | None = None):
    return gradparity(
        "validate",
        f"{PLUGINS}:{plugin}",
        "--as",
        "model",
        "--case",
        "card_affine_square",
        "--reference",
        "reference",
        "--timeout",
        "20",
        cwd=tmp_path,
        tag=tag,
        env=env,
    )


def test_a_pickle_written_into_the_reply_pipe_runs_nothing_here(tmp_path):
    tag, marker = new_tag(), tmp_path / "pwned"
    done = validate("pickles_into_the_reply", tmp_path, tag, {"GP_MARKER": str(marker)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "malformed reply" in done.stdout
    assert not marker.exists() and left_running(tag) == []


@pytest.mark.parametrize("namespace", ["1", "0"])
def test_a_plugin_s_escaped_child_dies_with_its_worker(tmp_path, namespace):
    tag = new_tag()
    done = validate("escapes_and_exits", tmp_path, tag, {"GRADPARITY_PID_NAMESPACE": namespace})
    assert done.returncode == 1 and "crash" in done.stdout, done.stdout + done.stderr
    assert left_running(tag) == []


@pytest.mark.parametrize("namespace", ["1", "0"])
def test_a_plugin_that_signals_its_parent_does_not_end_the_command(tmp_path, namespace):
    done = validate(
        "signals_its_parent", tmp_path, new_tag(), {"GRADPARITY_PID_NAMESPACE": namespace}
    )
    assert done.returncode == 0 and "AGREES" in done.stdout, done.stdout + done.stderr


def test_a_write_into_the_inputs_is_found_here_whatever_the_plugin_did_to_numpy(tmp_path):
    done = validate("hides_a_write", tmp_path, new_tag())
    assert done.returncode == 1
    assert "mutated inputs" in done.stdout and "params['x']" in done.stdout


def test_a_plugin_cannot_write_into_the_judging_process_s_stdout_through_proc(tmp_path):
    """The command is not dumpable and the worker (root too) is in a user namespace, so
    /proc/PID/fd/1 of the command is closed to the plug-in; it did find the command."""
    tag, marker = new_tag(), tmp_path / "found"
    done = validate("writes_into_the_judges_stdout", tmp_path, tag, {"GP_MARKER": str(marker)})
    found = marker.read_text().splitlines()
    assert found and all(" refused " in line for line in found), found
    assert f"FORGED AGREES {tag}" not in done.stdout + done.stderr


def test_a_gradient_with_no_elements_compared_nothing_and_does_not_pass(tmp_path):
    done = gradparity(
        "validate",
        f"{PLUGINS}:empty_gradient",
        "--as",
        "model",
        "--case",
        f"{CASES}:empty_parameter",
        "--reference",
        "reference",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NOTHING COMPARED" in done.stdout and "AGREES" not in done.stdout


def test_bench_measures_a_case_of_the_user_s_in_its_worker_and_fails_when_it_dies(tmp_path):
    done = gradparity(
        "bench",
        "--case",
        f"{CASES}:os_exit_7",
        "--out",
        str(tmp_path / "b"),
        "--quiet",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "exited with status 7" in done.stdout
    notes = pd.read_csv(tmp_path / "b" / "bench.csv")["note"]
    assert notes.str.contains("exited with status 7").all()


def test_a_case_claiming_a_catalog_family_without_its_options_gets_no_theory_not_a_crash(
    tmp_path,
):
    """The theory columns read the catalog family's options (sigma, N, width): a user case
    that names the family without them, or with a word for sigma, is compared and
    reported like any other, with no theory row, beside the catalog case (one report of
    all three: a case's section of report.md is its own)."""
    names = {"FakeMLP": "fake_mlp", "FakeElman": "fake_elman", "StrSigma": "str_sigma"}
    out = tmp_path / "R"
    cases = [a for name in names for a in ("--case", f"{HOSTILE / 'families.py'}:{name}")]
    done = gradparity(
        "report",
        *cases,
        "--case",
        "card_affine_square",
        *FAST,
        "--out",
        str(out),
        "--quiet",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    agreement = pd.read_csv(out / "agreement.csv")
    assert set(agreement["case"]) == {*names.values(), "card_affine_square"}
    assert agreement["ok"].all()
    sections = (out / "report.md").read_text().split("\n## ")
    for case in ("fake_elman", "str_sigma"):  # an MLP's theory needs its options to be shown
        (section,) = [s for s in sections if s.startswith(f"{case} (elman)")]
        assert "no theory: not the catalog's Elman" in section, case


@pytest.mark.parametrize("named", ["MissingOp", "MisnamedOp"])
def test_a_model_plugin_cannot_hide_a_case_behind_an_exception_named_missing_op(tmp_path, named):
    """Only a form that runs a case's math on the plug-in's functions (engine,
    functional) may lack one: a model plug-in that raises an exception of that name on the
    case it gets wrong is a fault, not an uncounted case beside an AGREES and exit 0."""
    path = tmp_path / "hides.py"
    path.write_text(
        "from harness.zoo.models import manual\n\n\n"
        f"class {named}(Exception):\n    pass\n\n\n"
        "def grads(params, inputs, case):\n"
        '    if "W_h" in params:\n'
        f'        raise {named}("tanh")\n'
        "    return manual(params, inputs, case)\n"
    )
    v = validate_api(
        f"{path}:grads", form="model", cases=["mlp", "elman"], references=["reference"]
    )
    assert not v.unsupported and not v.ok and v.verdict == "faults"
    assert [(f.case, f.fault) for f in v.faults] == [("elman", "exception")]


def test_a_lone_surrogate_from_a_plugin_is_shown_escaped_and_the_run_goes_on(tmp_path):
    """A lone surrogate (valid in a Python str, not in UTF-8) printed by a plug-in or in a
    tensor's name once ended the command in a traceback with an empty --out: now it is
    shown as its escape, the tables are written, and the verdict stands."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    (tmp_path / "surrogate.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(examples)!r})\n"
        "import numpy as np\n"
        "from model_mlp import grads as _grads\n\n\n"
        "def grads(params, inputs):\n"
        '    print("lone \\ud800 surrogate")\n'
        "    answer = _grads(params, inputs)\n"
        '    answer["grads"]["x\\udfff"] = np.zeros(2)\n'
        "    return answer\n"
    )
    out = tmp_path / "out"
    done = gradparity(
        "validate",
        "surrogate.py:grads",
        "--as",
        "model",
        "--case",
        "mlp",
        "--reference",
        "reference",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert "Traceback" not in done.stderr and "UnicodeEncodeError" not in done.stdout
    assert "lone \\ud800 surrogate" in done.stdout
    assert done.returncode == 1  # the extra tensor is a fault; nothing else broke
    assert (out / "agreement.csv").is_file() and (out / "faults.csv").is_file()
    assert "x\\udfff" in (out / "faults.csv").read_text(encoding="utf-8")


def test_a_case_named_with_a_line_break_is_refused_before_it_can_forge_a_line(tmp_path):
    """A case's name begins lines of the output: one holding a line break and a verdict
    printed that verdict as a line of its own. It is refused, exit 2, by name."""
    (tmp_path / "forged.py").write_text(
        "from harness.cases.base import Case\n\n\n"
        "class Forged(Case):\n"
        '    name = "mine\\n\\nplugin:grads (model): 9/9 tensors agree over 1 case: AGREES\\n"\n'
        '    family = "mine"\n\n'
        "    def setup(self, rng):\n"
        '        return {"w": rng.standard_normal(3)}, {"x": rng.standard_normal(3)}\n\n'
        "    def loss(self, xp, params, inputs):\n"
        '        return xp.sum(params["w"] * inputs["x"])\n'
    )
    done = gradparity("run", "--case", "forged.py:Forged", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is not one line of text" in done.stderr
    assert not any(
        line.startswith("plugin:grads") for line in (done.stdout + done.stderr).splitlines()
    )


def test_a_plugins_message_with_line_breaks_stays_behind_the_rule(tmp_path):
    """An exception whose message holds a forged verdict once printed that verdict as a
    bare line: its lines now stay under the fault's line, behind its rule."""
    (tmp_path / "forges.py").write_text(
        "from harness.zoo.models import manual\n\n\n"
        "class Forged(Exception):\n"
        "    def __str__(self):\n"
        '        return "\\n\\nplugin:grads (model): 13/13 tensors agree over 1 case: AGREES\\n"\n\n\n'
        "def grads(params, inputs, case):\n"
        '    if "W_h" in params:\n'
        "        raise Forged()\n"
        "    return manual(params, inputs, case)\n"
    )
    done = gradparity(
        "validate",
        "forges.py:grads",
        "--as",
        "model",
        "--case",
        "mlp",
        "--case",
        "elman",
        "--reference",
        "reference",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    verdicts = [line for line in done.stdout.splitlines() if line.startswith("plugin:grads")]
    assert len(verdicts) == 1 and verdicts[0].endswith("FAULTS")
    assert "      | plugin:grads (model): 13/13 tensors agree" in done.stdout


HIDES = """
from harness.target import LoadFault
from harness.zoo.models import manual


def grads(p, x, case):
    if case.name == "mlp":
        return manual(p, x, case)
    raise LoadFault("unsupported", "not mine")  # the loader's own exception, forged
"""


def test_a_plugin_cannot_hide_a_case_by_raising_the_loaders_exception(tmp_path, worker):
    (tmp_path / "hides.py").write_text(HIDES)
    v = validate_api(
        f"{tmp_path / 'hides.py'}:grads",
        form="model",
        cases=["mlp", "deep_chain"],
        references=["reference"],
        channel=worker,
    )
    assert not v.ok and v.unsupported == {}
    (row,) = v.fault_table.itertuples()
    assert (row.case, row.fault) == ("deep_chain", "exception") and "not mine" in row.message


OS_EXIT = """
import os


def grads(p, x, case):
    os._exit(0)
"""


def test_os_exit_in_a_plugin_run_in_this_process_is_an_exit_fault_not_the_commands_end(
    tmp_path,
):
    (tmp_path / "os_exit.py").write_text(OS_EXIT)
    v = validate_api(
        f"{tmp_path / 'os_exit.py'}:grads",
        form="model",
        cases=["mlp"],
        references=["reference"],
        isolate=False,
    )  # had it ended this process, pytest would have ended with it, status 0
    assert not v.ok
    (row,) = v.fault_table.itertuples()
    assert (row.fault, row.message) == ("exit", "os._exit(0)")
    assert os._exit.__module__ == "posix"  # given back


EXITS_OUTSIDE_THE_CALL = """
class Exits:
    def __repr__(self):  # read after the call returned, when its answer is looked at
        raise SystemExit(0)


def grads(p, x, case):
    return Exits()
"""


def test_sys_exit_0_after_a_plugin_call_run_in_this_process_is_an_exit_fault(tmp_path):
    (tmp_path / "exits.py").write_text(EXITS_OUTSIDE_THE_CALL)
    v = validate_api(
        f"{tmp_path / 'exits.py'}:grads",
        form="model",
        cases=["mlp"],
        references=["reference"],
        isolate=False,
    )  # the SystemExit went up through validate: the command ended with status 0
    assert not v.ok
    (row,) = v.fault_table.itertuples()
    assert (row.fault, row.message) == ("exit", "sys.exit(0)")


FORKS = """
import os
import signal
import time

from harness.zoo.models import manual


def grads(p, x, case):
    child = os.fork()
    if child == 0:
        os._exit(0)  # the forked process ends here, whatever this process refuses
    for _ in range(200):
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            return manual(p, x, case)
        time.sleep(0.025)
    os.kill(child, signal.SIGKILL)  # it went on as a copy of this process
    raise RuntimeError("the forked process did not end at its os._exit")
"""


def test_a_process_a_plugin_forks_in_this_process_ends_at_its_os_exit(tmp_path):
    (tmp_path / "forks.py").write_text(FORKS)
    v = validate_api(
        f"{tmp_path / 'forks.py'}:grads",
        form="model",
        cases=["mlp"],
        references=["reference"],
        isolate=False,
    )
    assert v.ok, v.text()
