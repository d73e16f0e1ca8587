"""A case of your own, wherever a case is taken: a Case subclass or an @case function in a
file (or a module), with the tape, torch, jax and finite differences as its references,
and your hand-written backward validated against them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness import validate
from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
LSTM = ROOT / "examples" / "my_lstm.py"

MINE = '''
import numpy as np

from harness.cases import Case, at_least, case


class Tiny(Case):
    """u = 3x + 1, y = u², L = Σ y."""

    name, family = "tiny", "mine"
    options = {"n": 5}
    allowed = {"n": at_least(1)}

    def setup(self, rng):
        return {"x": rng.standard_normal(self.n)}, {}

    def loss(self, xp, p, inputs):
        u = xp.tap("u", 3 * p["x"] + 1)
        return xp.sum(u**2)


@case(setup=lambda rng, n=4: ({"W": rng.standard_normal((n, n))}, {"x": rng.standard_normal(n)}))
def quadratic(xp, params, inputs):
    """L = Σ tanh(W x)²."""
    return xp.sum(xp.tanh(params["W"] @ inputs["x"]) ** 2)


@case(params={"w": np.array([0.5, -1.0])}, inputs={"x": np.array([2.0, 3.0])})
def fixed(xp, params, inputs):
    """L = (w · x)²."""
    return xp.sum(params["w"] * inputs["x"]) ** 2


class Broken(Case):
    """A loss that fails."""

    name, family = "broken", "mine"

    def setup(self, rng):
        return {"x": np.ones(3)}, {}

    def loss(self, xp, p, inputs):
        return xp.no_such_function(p["x"])


def tiny_grads(params, inputs):
    u = 3 * params["x"] + 1
    return {"grads": {"x": 6 * u}, "loss": np.sum(u**2), "taps": {"u": 2 * u}}


not_a_case = 3
'''


@pytest.fixture(scope="module")
def mine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("user") / "mine.py"
    path.write_text(MINE)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_case_from_a_file_runs_through_every_backend_with_its_options(mine, capsys, tmp_path):
    csv = tmp_path / "a.csv"
    code, out, _ = run_cli(
        capsys,
        "run",
        "--case",
        f"{mine}:Tiny",
        "--case",
        f"{mine}:quadratic",
        "--set",
        "n=6",
        "--csv",
        str(csv),
    )
    assert code == 0, out
    table = pd.read_csv(csv)
    assert set(table["case"]) == {"tiny[n=6]", "quadratic[n=6]"}
    assert {"reference", "torch", "jax", "numeric"} >= set(table["backend"]) >= {"reference", "jax"}
    assert (table["verdict"] == "agree").all()
    assert set(table.loc[table["case"] == "tiny[n=6]", "tensor"]) == {"loss", "x", "u"}


def test_a_function_case_with_fixed_arrays(mine, capsys):
    code, out, _ = run_cli(capsys, "run", "--case", f"{mine}:fixed", "--backend", "reference")
    assert code == 0 and "fixed" in out


def test_describe_prints_a_user_case_as_it_does_a_catalog_one(mine, capsys):
    code, out, _ = run_cli(capsys, "describe", f"{mine}:quadratic", "--set", "n=3")
    assert code == 0
    assert "L = Σ tanh(W x)²." in out and "n=3 (default 4)" in out and "W[3, 3]" in out


def test_a_report_of_a_user_case(mine, capsys, tmp_path):
    code, _, _ = run_cli(
        capsys,
        "report",
        "--case",
        f"{mine}:Tiny",
        "--out",
        str(tmp_path),
        "--quiet",
        "--backend",
        "reference",
    )
    assert code == 0 and "tiny" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "has no attribute 'nope'"),
        ("not_a_case", "is not a case"),
        ("Tiny x", "TARGET must be"),
    ],
)
def test_a_bad_user_case_is_bad_usage(mine, capsys, name, message):
    code, out, err = run_cli(capsys, "run", "--case", f"{mine}:{name}")
    assert code == 2 and message in err and "Traceback" not in err


def test_a_file_that_does_not_import_is_bad_usage(tmp_path, capsys):
    (tmp_path / "bad.py").write_text("import no_such_module_anywhere\n")
    code, _, err = run_cli(capsys, "run", "--case", f"{tmp_path / 'bad.py'}:X")
    assert code == 2 and "no_such_module_anywhere" in err
    code, _, err = run_cli(capsys, "run", "--case", f"{tmp_path / 'absent.py'}:X")
    assert code == 2 and "no file" in err


def test_a_user_case_whose_loss_fails_is_a_failed_row(mine, capsys):
    code, out, _ = run_cli(
        capsys,
        "run",
        "--case",
        f"{mine}:Broken",
        "--case",
        f"{mine}:Tiny",
        "--backend",
        "reference",
    )
    assert code == 1
    assert "no_such_function" in out and "tiny" in out


def test_validate_a_model_against_a_user_case_in_a_worker(mine, capsys):
    code, out, _ = run_cli(
        capsys, "validate", f"{mine}:tiny_grads", "--case", f"{mine}:Tiny", "--quiet"
    )
    assert code == 0 and "AGREES" in out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_example_lstm_backward_agrees_with_every_reference(dtype):
    v = validate(f"{LSTM}:grads", cases=[f"{LSTM}:MyLSTM"], dtype=dtype, references=["all"])
    assert v.ok, v.text()
    ran = set(v.agreement["backend"]) | set(v.agreement["baseline"])
    assert ran >= {"reference", "torch", "jax", "numeric"}


BUGS = {  # a line of the example's backward, as a user might have broken it
    "missing cell path": (
        "dc = dh * o * (1 - tanh_c**2) + dc_next",
        "dc = dh * o * (1 - tanh_c**2)",
    ),
    "wrong transpose": ("dV = h.T @ (d / B)", "dV = (d / B).T @ h"),
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_a_broken_backward_of_the_example_is_flagged_with_the_tensor_and_element(bug, tmp_path):
    right, wrong = BUGS[bug]
    source = LSTM.read_text()
    assert right in source
    broken = tmp_path / "broken_lstm.py"
    broken.write_text(source.replace(right, wrong))
    options = {"O": 5} if bug == "wrong transpose" else {}  # V square: the shapes still fit
    from harness.selection import load_case

    case = load_case(f"{broken}:MyLSTM")(**options)
    v = validate(f"{broken}:grads", cases=[case], references=["reference", "torch"])
    assert not v.ok
    text = v.text()
    if bug == "missing cell path":
        assert "tap 'c'" in text and "diverges" in text and "worst at (" in text
    else:
        assert "param 'V'" in text and "worst at (" in text


def test_a_custom_stage_names_its_inputs_after_its_forward(tmp_path):
    (tmp_path / "stage.py").write_text("""
import numpy as np


class Affine:
    stage = "custom"

    def inputs(self, rng):
        return rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)

    def forward(self, x, W, bias):
        return x @ W + bias, (x, W)

    def backward(self, d, cache):
        x, W = cache
        return d @ W.T, x.T @ d, d.sum(axis=0)
""")
    v = validate(f"{tmp_path / 'stage.py'}:Affine", form="stage")
    assert v.ok, v.text()
    assert {"x", "W", "bias"} <= set(v.agreement["tensor"])


def test_bench_times_a_user_case(mine, tmp_path, monkeypatch):
    """--case in bench: the cheap-gradient ratio of the cases named, into a folder of its own."""
    from harness.cli import bench

    seen = {}
    monkeypatch.delenv(bench.PINNED, raising=False)
    monkeypatch.setattr(bench.subprocess, "call", lambda argv, env: seen.update(argv=argv) or 0)
    assert (
        main(["bench", "--case", f"{mine}:quadratic", "--set", "n=3", "--out", str(tmp_path)]) == 0
    )
    argv = seen["argv"]
    assert argv[argv.index("--case") + 1] == f"{mine}:quadratic" and "n=3" in argv
    assert main(["bench", "--case", f"{mine}:nope"]) == 2  # checked before the fresh process


def test_the_runs_of_one_case_of_the_user_s_share_its_worker(tmp_path, monkeypatch):
    """A worker starts in seconds (it imports the libraries): the description of a case of
    the user's and every run of it after — its options varied, as the drift plot's lengths
    are — reuse one worker, started afresh only after a fault. A second case class gets a
    worker of its own."""
    from harness.drift import DRIFT_LENGTHS, dtype_drift
    from harness.sandbox import channel as channels
    from harness.sandbox.case import load

    starts = []
    start = channels.Isolated._start
    monkeypatch.setattr(channels.Isolated, "_start", lambda self: starts.append(1) or start(self))
    path = tmp_path / "unroll.py"
    path.write_text(
        "from harness.cases import Case\n\n\n"
        "class Unroll(Case):\n"
        '    name, family = "unroll", "elman"\n'
        '    options = {"T": 4}\n\n'
        "    def setup(self, rng):\n"
        '        return {"W": rng.standard_normal((3, 3)) * 0.5}, '
        '{"x": rng.standard_normal((self.T, 3))}\n\n'
        "    def loss(self, xp, p, inputs):\n"
        "        def step(h, x_t):\n"
        '            h = xp.tap("h", xp.tanh(h @ p["W"] + x_t))\n'
        "            return h, h\n\n"
        '        h, _ = xp.scan(step, inputs["x"][0, ...] * 0, inputs["x"])\n'
        "        return xp.sum(h**2)\n"
    )
    case = load(f"{path}:Unroll")()
    drift = dtype_drift([case], seed=0)
    assert len(drift) == len(DRIFT_LENGTHS) and (drift["error"] == "").all(), drift
    assert drift["max_rel_err"].notna().all()
    assert len(starts) == 1, f"{len(starts)} workers for one case's description and 14 runs"


NUMPY_CASE = """
import numpy as np

from harness.cases.base import Case


class WithNp(Case):
    name = "with_np"
    family = "mine"

    def setup(self, rng):
        return {"w": rng.standard_normal(4)}, {"x": rng.standard_normal(4)}

    def loss(self, xp, params, inputs):  # np. where xp. is needed: the references fail
        return np.sum(np.tanh(params["w"]) * inputs["x"])


def right(params, inputs):
    return {"w": (1 - np.tanh(params["w"]) ** 2) * inputs["x"]}


def twice(params, inputs):
    return {"w": 2 * (1 - np.tanh(params["w"]) ** 2) * inputs["x"]}
"""


@pytest.fixture(scope="module")
def numpy_case(tmp_path_factory):
    path = tmp_path_factory.mktemp("numpy_case") / "with_np.py"
    path.write_text(NUMPY_CASE)
    return path


def _with_np(path, attr):
    return validate(
        f"{path}:{attr}",
        form="model",
        cases=[f"{path}:WithNp"],
        references=["reference", "torch", "numeric"],
    )


def test_a_case_whose_references_fail_never_makes_the_plugin_the_baseline(numpy_case):
    v = _with_np(numpy_case, "right")
    assert "plugin:right" not in set(v.agreement["baseline"])
    refs = v.agreement[v.agreement["backend"].isin(["reference", "torch"])]
    assert set(refs["verdict"]) == {"failed"}  # failed, never "disagree" with the plug-in
    lines = v.text().splitlines()
    assert not any("disagree among themselves" in line for line in lines)
    assert any("failed" in line and "xp." in line for line in lines)


def test_agreeing_with_finite_differences_alone_where_the_references_failed_is_no_success(
    numpy_case,
):
    v = _with_np(numpy_case, "right")
    assert not v.ok and v.verdict == "references failed"
    assert (
        v.text()
        .splitlines()[-1]
        .endswith(
            "REFERENCES FAILED — reference and torch failed on 1 case (with_np): "
            "the plug-in was compared with numeric alone there"
        )
    )


def test_a_plugin_that_disagrees_with_finite_differences_there_disagrees(numpy_case):
    v = _with_np(numpy_case, "twice")
    assert v.verdict == "disagrees"
    mine = v.agreement[v.agreement["backend"] == "plugin:twice"]
    assert set(mine["baseline"]) == {"numeric"} and "disagree" in set(mine["verdict"])


LINE_BREAK_NAME = """
import numpy as np

from harness.cases.base import Case

FORGED = "plugin:grads (model): 1/1 tensors agree over 1 case, 0 faults: AGREES"


class Breaks(Case):
    name = "breaks"
    family = "mine"

    def setup(self, rng):
        return {"w\\n" + FORGED: rng.standard_normal(4)}, {"x": rng.standard_normal(4)}

    def loss(self, xp, params, inputs):
        return xp.sum(xp.tanh(params["w\\n" + FORGED]) * inputs["x"])


def grads(params, inputs):
    w = params["w\\n" + FORGED]
    return {"w\\n" + FORGED: 2 * (1 - np.tanh(w) ** 2) * inputs["x"]}
"""


def test_a_tensor_name_with_a_line_break_is_refused_with_the_case(tmp_path):
    path = tmp_path / "breaks.py"
    path.write_text(LINE_BREAK_NAME)
    v = validate(f"{path}:grads", form="model", cases=[f"{path}:Breaks"], references=["reference"])
    forged = "plugin:grads (model): 1/1 tensors agree over 1 case, 0 faults: AGREES"
    assert not v.ok and v.unbuilt == ["breaks"]
    assert forged not in v.text().splitlines()
    assert "is not one line of text" in v.text()


LINE_BREAK_TAP = """
from harness.cases.base import Case

FORGED = "plugin:grads (model): 1/1 tensors agree over 1 case, 0 faults: AGREES"


class TapBreaks(Case):
    name = "tap_breaks"
    family = "mine"

    def setup(self, rng):
        return {"w": rng.standard_normal(4)}, {"x": rng.standard_normal(4)}

    def loss(self, xp, params, inputs):
        return xp.sum(xp.tap("u\\n" + FORGED, xp.tanh(params["w"])) * inputs["x"])


def grads(params, inputs):
    return {"grads": {"w": inputs["x"]}, "taps": {"u\\n" + FORGED: 3 * inputs["x"]}}
"""


def test_a_tap_name_with_a_line_break_fails_the_references_saying_so(tmp_path):
    path = tmp_path / "tap_breaks.py"
    path.write_text(LINE_BREAK_TAP)
    v = validate(
        f"{path}:grads", form="model", cases=[f"{path}:TapBreaks"], references=["reference"]
    )
    forged = "plugin:grads (model): 1/1 tensors agree over 1 case, 0 faults: AGREES"
    assert not v.ok and not any(line.startswith(forged) for line in v.text().splitlines())
    assert "is not one line of text" in v.text()


def test_a_case_file_without_its_name_is_told_to_add_it_as_validate_says(mine, capsys):
    code, _, err = run_cli(capsys, "run", "--case", str(mine))
    assert code == 2 and "Traceback" not in err
    assert "add :NAME" in err and f"{mine}:" in err


def test_a_missing_name_is_told_with_what_the_file_defines_not_what_it_imports(mine, capsys):
    code, _, err = run_cli(capsys, "run", "--case", f"{mine}:nope")
    has = err.split("it has: ")[1]
    assert code == 2 and "Tiny" in has and "np" not in has.replace(",", " ").split()
