"""The jax reference run aside (``harness.validation.aside``): the same Results and tables
as in one process, in the same order, and a helper that fails is only slower."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import pandas as pd
import pytest

from harness.backends import get_backend
from harness.cases import CATALOG
from harness.result import BUILD, Result
from harness.runner import run_case
from harness.validation import aside
from harness.validation.jobs import _here_and_aside

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("jax")


def _r(backend: str, mode: str = "rev") -> Result:
    return Result("mlp", backend, "float64", mode=mode)


@pytest.mark.parametrize(
    "names, here, there",
    [  # (the order of names; what ran here, in its order; what ran aside)
        (["reference", "jax", "numeric", "plugin:f"],
         ["reference", "numeric", "plugin:f"], ["jax"]),
        (["jax", "torch"], ["torch"], ["jax"]),
        (["torch", "jax"], ["torch"], ["jax"]),
    ],
)  # fmt: skip
def test_merged_puts_each_result_where_run_case_would(names, here, there):
    modes = ("rev", "fwd")
    mine = [_r(n, m) for m in modes for n in here]
    theirs = [_r(n, m) for m in modes for n in there]
    got = aside.merged(mine, theirs, names, modes)
    assert [(r.mode, r.backend) for r in got] == [(m, n) for m in modes for n in names]


def test_merged_of_an_unbuilt_case_is_its_one_build_result():
    unbuilt = Result("mlp", BUILD, "float64", error="the case could not be built: no")
    assert aside.merged([unbuilt], [_r("jax")], ["jax", "torch"], ("rev",)) == [unbuilt]


@pytest.mark.parametrize(
    "references, jobs, loaded, expected",
    [
        (None, 1, False, False),  # the defaults: numpy references, no jax to set aside
        (["all"], 1, False, True),  # every backend: jax beside four others
        (["reference", "jax"], 1, False, True),
        (["jax"], 1, False, False),  # jax alone: nothing to run beside it
        (["jax", "jax"], 1, False, False),
        (["reference", "torch"], 1, False, False),  # no jax asked for
        (["all"], 2, False, False),  # jobs > 1 shares whole cases instead
        (["all"], 1, True, False),  # jax loaded here already: it costs nothing more here
    ],
)
def test_a_helper_starts_only_where_it_can_save_time(
    monkeypatch, references, jobs, loaded, expected
):
    monkeypatch.setattr(aside, "_started", False)
    if not loaded:
        monkeypatch.delitem(sys.modules, "jax", raising=False)
    else:
        monkeypatch.setitem(sys.modules, "jax", sys.modules.get("jax", object()))
    assert aside.wanted(references, jobs) is expected


def test_only_a_process_s_first_validation_is_helped(monkeypatch):
    """From the second on, jax loads here once rather than in a helper each time."""
    monkeypatch.setattr(aside, "_started", False)
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    assert aside.wanted(["all"], 1)
    monkeypatch.setattr(aside, "_started", True)
    assert not aside.wanted(["all"], 1)


@pytest.mark.parametrize(
    "names, made, expected",
    [
        (["reference", "jax", "plugin:f"], ["ref", "jax"], True),
        (["jax", "plugin:f"], ["jax"], False),  # the plug-in is not a reference beside it
        (["reference", "jax", "plugin:f"], ["ref", RuntimeError("no jax")], False),
        (["reference", "plugin:f"], ["ref"], False),
    ],
)
def test_the_form_s_references_decide_whether_jax_goes_aside(names, made, expected):
    assert aside.aside(names, made) is expected


def _future(value=None, error: BaseException | None = None) -> Future:
    future: Future = Future()
    future.set_exception(error) if error else future.set_result(value)
    return future


@pytest.mark.parametrize(
    "future",
    [
        None,
        _future(error=RuntimeError("the thread broke")),
        _future({"fault": {"fault_name": "crash", "message": "gone"}}),
        _future({"case_error": "no such case"}),
        _future({"results": "not a list", "params": {}, "inputs": {}}),
    ],
)
def test_a_helper_that_fails_gives_nothing_to_collect(future):
    assert aside.collected(future, "mlp") is None


def test_where_the_helper_fails_jax_runs_here_with_the_same_results():
    case = CATALOG["mlp"](depth=2, width=3, D=2, C=2, N=3)
    names = ["reference", "jax"]
    backends = [get_backend(n) for n in names]
    failed = _future(error=RuntimeError("the helper died"))
    got = _here_and_aside(case, backends, names, "float64", 0, None, ((), 0), ("rev",), failed)
    want = run_case(case, backends, "float64", 0, None, names)
    assert [r.backend for r in got] == names
    for a, b in zip(got, want, strict=True):
        assert a.loss == b.loss and a.grads.keys() == b.grads.keys()
        assert all((a.grads[k] == b.grads[k]).all() for k in a.grads)


COLD = """
import pickle, sys
from harness import validate
from harness.cases import CATALOG
small = CATALOG["mlp"](depth=2, width=3, D=2, C=2, N=3)
every = dict(cases=[small], modes=["rev", "fwd"], noise=2, references=["all"])
v = validate("examples/model_mlp.py:model", **every)
assert "jax" not in sys.modules, "jax was imported in this process"
again = validate("examples/model_mlp.py:model", **every)
assert "jax" in sys.modules, "the second validation was helped too"
assert again.agreement.equals(v.agreement)
tables = (v.agreement, v.comparison.identities, v.comparison.magnitudes, v.text())
pickle.dump(tables, open(sys.argv[1], "wb"))
"""


def test_a_cold_validation_runs_jax_aside_and_its_tables_are_those_of_one_process(tmp_path):
    """In a fresh process jax never loads (its reference ran in the helper); here, where
    it is loaded, the same validation runs in one process: every table and the text are
    the same, the noise floors and the transpose identity included."""
    import pickle

    from harness import validate

    out = tmp_path / "cold.pickle"
    done = subprocess.run(
        [sys.executable, "-c", COLD, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cold = pickle.loads(out.read_bytes())
    import jax  # noqa: F401 - loaded here: no helper

    small = CATALOG["mlp"](depth=2, width=3, D=2, C=2, N=3)
    v = validate(
        "examples/model_mlp.py:model",
        cases=[small],
        modes=["rev", "fwd"],
        noise=2,
        references=["all"],
    )
    here = (v.agreement, v.comparison.identities, v.comparison.magnitudes, v.text())
    for a, b in zip(cold[:3], here[:3], strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert cold[3] == here[3]
    assert "jax" in set(v.agreement["backend"])


def test_a_helper_closed_at_once_leaves_no_worker_and_answers_with_a_fault():
    """A validation that stops before its references run (a TARGET without the name)
    closes its helper while jax may still be loading there: nothing is left running."""
    made = aside.Helper()
    made.close()
    future = made.submit(CATALOG["mlp"](), "float64", 0, ((), 0), ("rev",))
    assert future is None or aside.collected(future, "mlp") is None
    made.thread.shutdown(wait=True)
    assert made.channel.proc is None or made.channel.proc.poll() is not None
