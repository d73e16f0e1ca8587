"""Fault isolation: every way a plug-in can misbehave becomes a named fault row, and the
run goes on. One table of faulty plug-ins, fed through one validation path."""

from __future__ import annotations

import numpy as np
import pytest

from harness.cases import CATALOG
from harness.sandbox.channel import GiB
from harness.target import BadTarget
from harness.validation.checks import check_leaf
from harness.validation.plugin_calls import plain
from harness.validation.validator import validate

FAULTY = """
import os
import sys

import numpy as np

import reference.manual


def good(p, x, case):
    loss, cache = reference.manual.mlp_forward(p, x["X"], x["Y"], case.act, case.objective)
    return reference.manual.mlp_backward(cache)[0]


def raises(p, x, case):
    return np.ones(3) @ np.ones(4)


def returns_none(p, x, case):
    good(p, x, case)


def returns_list(p, x, case):
    return list(good(p, x, case).values())


def list_grads(p, x, case):
    return {k: v.tolist() for k, v in good(p, x, case).items()}


def wrong_shape(p, x, case):
    g = good(p, x, case)
    g["b1"] = np.repeat(g["b1"][None, :], len(x["X"]), axis=0) / len(x["X"])
    return g


def wrong_dtype(p, x, case):
    g = good(p, x, case)
    g["W1"] = g["W1"].astype(np.float32)
    return g


def not_finite(p, x, case):
    g = good(p, x, case)
    g["W2"][1, 0] = np.nan
    return g


def inf_both_calls(p, x, case):
    g = good(p, x, case)
    g["W1"][0, 0] = np.inf
    g["b1"][1] = -np.inf
    return g


def missing_and_extra(p, x, case):
    g = good(p, x, case)
    g["bias2"] = g.pop("b2")
    return g


def mutates(p, x, case):
    x["X"][0, 1] = 0.0
    return good(p, x, case)


def nondeterministic(p, x, case):
    g = good(p, x, case)
    g["W1"] = g["W1"] + 1e-3 * np.random.default_rng().standard_normal(g["W1"].shape)
    return g


_buffers = {}


def accumulates(p, x, case):
    for k, v in good(p, x, case).items():
        _buffers[k] = _buffers.get(k, 0) + v
    return dict(_buffers)


def exits(p, x, case):
    sys.exit(3)


def aborts(p, x, case):
    os.abort()


def segfaults(p, x, case):
    import ctypes

    return ctypes.string_at(0)


def loops(p, x, case):
    while True:
        pass


def hogs(p, x, case):
    return {"W1": np.ones(2 * 1024**3)}  # 16 GiB


def crashes_on_elman(p, x, case):
    if case.family == "elman":
        os.abort()
    return good(p, x, case)
"""

# attr -> (fault kind, tensor, a phrase of the message)
FAULTS = {
    "raises": ("exception", "", "ValueError: matmul"),
    "returns_none": ("returned None", "", "missing `return`"),
    "returns_list": ("wrong type", "", "returned a list"),
    "wrong_shape": ("wrong shape", "b1", "not summed over the batch"),
    "wrong_dtype": ("wrong dtype", "W1", "float32 in a float64 run"),
    "not_finite": ("not finite", "W2", "NaN at (1, 0)"),
    "missing_and_extra": ("missing tensor", "b2", "it returned: "),
    "mutates": ("mutated inputs", "inputs['X']", "first at (0, 1)"),
    "nondeterministic": ("non-deterministic", "", "W1"),
    "accumulates": ("state across calls", "", "twice the first"),
    "exits": ("exit", "", "sys.exit(3)"),
    "aborts": ("crash", "", "SIGABRT"),
    "segfaults": ("crash", "", "SIGSEGV"),
    "loops": ("timeout", "", "no answer within 2 s"),
    "hogs": ("memory", "", "MemoryError"),
}


def small_mlp():
    return CATALOG["mlp"](depth=2, width=3, D=2, C=2, N=3)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "faulty.py").write_text(FAULTY)
    (folder / "broken_import.py").write_text(
        "import numpy\n\nraise ImportError('no module named mylib')\n"
    )
    return folder


WORKER_MEMORY = 2 * GiB  # the shared `worker` fixture's limit (tests/conftest.py)


def check(faulty, worker, attr, cases=None, timeout=10.0):
    return validate(
        f"{faulty / 'faulty.py'}:{attr}",
        form="model",
        cases=cases or [small_mlp()],
        references=["reference"],
        timeout=timeout,
        channel=worker,
    )


@pytest.mark.parametrize("attr", list(FAULTS))
def test_each_fault_is_a_named_row(faulty, worker, attr):
    kind, tensor, phrase = FAULTS[attr]
    v = check(faulty, worker, attr, timeout=2.0 if attr == "loops" else 10.0)
    assert not v.ok
    rows = v.fault_table
    hit = rows[(rows["fault"] == kind) & (rows["tensor"] == tensor)]
    assert not hit.empty, rows[["fault", "tensor", "message"]].to_string()
    assert phrase in hit["message"].iloc[0] + hit["traceback"].iloc[0]
    assert (hit["case"] == small_mlp().label).all() and (hit["backend"] == f"plugin:{attr}").all()
    assert kind in v.text()  # named in the output


@pytest.mark.parametrize("attr", ["not_finite", "inf_both_calls"])
def test_the_same_nan_or_inf_on_both_calls_is_not_called_non_deterministic(faulty, worker, attr):
    """NaN != NaN: two calls that return the same NaN (or Inf) are the same answer."""
    v = check(faulty, worker, attr)
    kinds = set(v.fault_table["fault"])
    assert "not finite" in kinds
    assert "non-deterministic" not in kinds and "state across calls" not in kinds, v.text()


def test_the_traceback_is_kept(faulty, worker):
    v = check(faulty, worker, "raises")
    tb = v.fault_table["traceback"].iloc[0]
    assert "in raises" in tb and "np.ones(3) @ np.ones(4)" in tb


def test_converted_values_are_a_note_and_still_compared(faulty, worker):
    v = check(faulty, worker, "list_grads")
    assert v.ok, v.text()
    notes = v.fault_table
    assert set(notes["fault"]) == {"converted"} and set(notes["severity"]) == {"note"}
    assert "a list, converted with np.asarray(..., dtype=float64)" in notes["message"].iloc[0]


def test_wrong_shapes_are_never_summed_and_wrong_dtypes_are_judged_at_the_runs(faulty, worker):
    v = check(faulty, worker, "wrong_shape")
    row = v.agreement.query("backend == 'plugin:wrong_shape' and tensor == 'b1'").iloc[0]
    assert not row["ok"] and "wrong shape" in row["error"]
    # float32 values in a float64 run: compared, cast to float64, and at float64's
    # tolerance float32's rounding disagrees
    v = check(faulty, worker, "wrong_dtype")
    row = v.agreement.query("backend == 'plugin:wrong_dtype' and tensor == 'W1'").iloc[0]
    assert (row["verdict"], row["error"]) == ("disagree", "")


def test_missing_and_extra_tensors_are_both_named(faulty, worker):
    v = check(faulty, worker, "missing_and_extra")
    faults = dict(zip(v.fault_table["fault"], v.fault_table["tensor"], strict=True))
    assert faults == {"missing tensor": "b2", "extra tensor": "bias2"}


def test_the_run_goes_on_after_a_crash_in_a_fresh_process(faulty, worker):
    starts = worker.starts
    elman = CATALOG["elman"](T=3, H=2, D=2, B=1)
    v = check(faulty, worker, "crashes_on_elman", cases=[elman, small_mlp()])
    by_case = v.mine.groupby("case")["ok"].all()
    assert not by_case[elman.label] and by_case[small_mlp().label]
    assert worker.starts == starts + 1  # restarted for the case after the crash


def test_an_import_error_is_a_fault_and_a_missing_name_a_bad_target(faulty, worker):
    v = validate(
        f"{faulty / 'broken_import.py'}:grads",
        form="model",
        cases=[small_mlp()],
        references=["reference"],
        channel=worker,
    )
    assert list(v.fault_table["fault"]) == ["import error"]
    assert "no module named mylib" in v.fault_table["message"].iloc[0]
    # the file loaded and has no such name: a typo in TARGET, said with what the file has
    with pytest.raises(BadTarget, match=r"has no attribute 'no_such_function'; it has: .*good"):
        check(faulty, worker, "no_such_function")


def test_plain_converts_framework_tensors_keeping_their_dtype():
    torch = pytest.importorskip("torch")
    leaf = plain(torch.ones(2, 3, dtype=torch.float32, requires_grad=True) * 2, "float64")
    assert leaf["array"].dtype == np.float32 and leaf["array"].shape == (2, 3)
    assert "torch.Tensor" in leaf["note"]
    faults = []
    array = check_leaf(leaf, "param 'W'", (2, 3), "float64", lambda kind, msg: faults.append(kind))
    assert faults == ["converted"] and array.dtype == np.float32  # converted, never cast here


def test_plain_names_what_it_cannot_convert():
    leaf = plain({"not": "an array"}, "float64")
    assert leaf["array"] is None and leaf["type"] == "dict"
    faults = []
    check_leaf(leaf, "param 'W'", (2,), "float64", lambda kind, msg: faults.append((kind, msg)))
    assert faults[0][0] == "wrong type" and "a dict" in faults[0][1]


def test_inf_is_named_with_its_index_and_the_count():
    a = np.zeros((2, 3))
    a[1, 2], a[0, 0] = np.inf, np.nan
    messages = []
    check_leaf(plain(a, "float64"), "tap 'h'", (2, 3), "float64", lambda k, m: messages.append(m))
    assert messages == ["tap 'h' is NaN at (0, 0) (and 1 more non-finite elements)"]


# --- processes a plug-in starts, also those that leave its group and session

ESCAPING = """
import os
import signal
import subprocess

import numpy as np


def _escape(tag):
    # one child in a session of its own, one double fork: neither is in the worker's group
    subprocess.Popen(["setsid", "sleep", f"{tag}.1"])
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", f"{tag}.2"])
        os._exit(0)


def hangs(p, x):
    _escape(TAG)
    while True:
        pass


def crashes(p, x):
    _escape(TAG)
    os.kill(os.getpid(), signal.SIGKILL)


def returns(p, x):
    _escape(TAG)
    return {"x": 2 * (3 * p["x"] + 1) * 3}
"""


def sleepers(tag: str) -> list[str]:
    """What ``ps`` shows of the sleeps this test's plug-in started."""
    import subprocess

    shown = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True).stdout
    return [line for line in shown.splitlines() if f"sleep {tag}" in line and " Z" not in line[:12]]


@pytest.mark.parametrize("attr", ["hangs", "crashes", "returns"])
def test_no_process_a_plugin_started_outlives_its_validation(tmp_path, attr):
    """setsid and a double fork escape the worker's process group; the command must still
    end within its timeout and leave nothing behind, whatever the plug-in did."""
    import random
    import subprocess
    import sys

    tag = f"{random.randrange(10**6, 10**7)}{len(attr)}"  # `sleep 12345675.1`: this test's own
    plugin = tmp_path / "escaping.py"
    plugin.write_text(f"TAG = {tag!r}\n" + ESCAPING)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "validate",
            f"{plugin}:{attr}",
            "--as",
            "model",
            "--case",
            "card_affine_square",
            "--reference",
            "reference",
            "--timeout",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert "Traceback" not in done.stderr, done.stderr
    expected = {"hangs": "timeout", "crashes": "crash", "returns": "agree"}[attr]
    assert expected in done.stdout, done.stdout
    assert sleepers(tag) == []
