"""Diagnostics that say what happened, each pinned by a fact: how a mutated output
gradient is named, which references the diagnostics list, who fills an optional
parameter, how a typo in a path is said, a case written with np. where xp. is needed,
a factor that is a whole number, and an oracle that resolves no direction at all."""

from __future__ import annotations

import numpy as np
import pytest

from harness.cli import main
from harness.compare import Verdict, compare_directional
from harness.result import Directional
from harness.sandbox.channel import InProcess
from harness.selection import build_cases
from harness.target import BadTarget, parse_target
from harness.tolerances import tolerance_for
from harness.validation.diagnose import _shown
from harness.validation.forms.model import wants_case
from harness.validation.validator import validate

STAGE = """
import numpy as np


class TwoOutputs:
    stage = "custom"

    def inputs(self, rng):
        return (rng.standard_normal((2, 3)),)

    def forward(self, x):
        return (np.tanh(x), 2 * x), x

    def backward(self, dnext, cache):
        grad = (1 - np.tanh(cache) ** 2) * dnext[0] + 2 * dnext[1]
        dnext[1][...] = 0  # writes into the gradient it was given
        return (grad,)
"""

NUMPY_CASE = """
import numpy as np

from harness.cases.base import Case


class WithNumpy(Case):
    name = "with_numpy"
    family = "mine"

    def setup(self, rng):
        return {"w": rng.standard_normal(3)}, {"x": rng.standard_normal(3)}

    def loss(self, xp, params, inputs):
        return np.sum(np.tanh(params["w"] * inputs["x"]))


class WithXp(WithNumpy):
    name = "with_xp"

    def loss(self, xp, params, inputs):
        return xp.sum(xp.tanh(params["w"] * inputs["x"]))


def grads(params, inputs, bug=None):
    assert bug is None, f"filled with {bug!r}"
    t = np.tanh(params["w"] * inputs["x"])
    return {"w": (1 - t**2) * inputs["x"]}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wording")
    (folder / "stage.py").write_text(STAGE)
    (folder / "numpy_case.py").write_text(NUMPY_CASE)
    return folder


def test_a_mutated_output_gradient_is_named_as_the_backward_calls_it(files):
    v = validate(
        f"{files / 'stage.py'}:TwoOutputs", references=["reference", "manual"], channel=InProcess()
    )
    mutated = v.fault_table[v.fault_table["fault"] == "mutated inputs"]
    assert list(mutated["tensor"]) == ["dnext[1]"]


def test_diagnostics_list_only_the_references_that_ran(files, tmp_path):
    cases = build_cases([f"{files / 'numpy_case.py'}:WithXp"], {})
    v = validate(
        f"{files / 'numpy_case.py'}:grads",
        form="model",
        cases=cases,
        references=["reference", "manual"],
        channel=InProcess(),
    )
    assert v.ok  # and grads(params, inputs, bug=None) was called without the case
    assert v.references == ["reference", "manual"]  # manual: no backward for a family of yours
    assert v.references_ran == ["reference"]
    v.write(tmp_path / "out")
    md = (tmp_path / "out" / "diagnostics.md").read_text()
    assert "References: `reference`." in md


def test_an_optional_third_parameter_is_not_filled_with_the_case(files):
    def grads(params, inputs, bug=None): ...

    def grads_case(params, inputs, case=None): ...

    def grads_plain(params, inputs, case): ...

    assert [wants_case(f) for f in (grads, grads_case, grads_plain)] == [False, True, True]


def test_a_case_written_with_np_is_said_once(files, capsys):
    code = main(
        [
            "run",
            "--case",
            f"{files / 'numpy_case.py'}:WithNumpy",
            "--backend",
            "reference",
            "--backend",
            "torch",
            "--backend",
            "jax",
            "--baseline",
            "numeric",
            "--backend",
            "numeric",
            "--noise",
            "0",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    said = [line for line in out.splitlines() if "calls numpy" in line]
    assert len(said) == 1 and "reference, torch and jax failed" in said[0]
    assert "numpy_case.py:15" in said[0]
    assert "TracerArrayConversionError" not in out and "ufuncs" not in out


def test_a_target_without_a_name_says_to_add_one():
    with pytest.raises(BadTarget, match=r"add :NAME \(for example my/file\.py:grads\)"):
        parse_target("my/file.py")


def test_a_missing_target_file_and_a_missing_case_file_are_said_alike(files, capsys):
    missing = files / "nope.py"
    assert main(["validate", f"{missing}:grads", "--case", "mlp"]) == 2
    target = capsys.readouterr().err.strip().splitlines()[-1]
    assert main(["validate", f"{files / 'numpy_case.py'}:grads", "--case", f"{missing}:C"]) == 2
    case = capsys.readouterr().err.strip().splitlines()[-1]
    assert target == f"gradparity: error: TARGET '{missing}:grads': no file {missing}"
    assert case == f"gradparity: error: --case '{missing}:C': no file {missing}"


@pytest.mark.parametrize(
    "factor, said", [(6.0, "6"), (0.5, "0.5 (= 1/2)"), (2.5, "2.5"), (1 / 3, "0.333 (= 1/3)")]
)
def test_a_whole_factor_is_said_once(factor, said):
    assert _shown(factor) == said


def test_no_direction_resolved_does_not_say_the_others_agree():
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((3, 4))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    full = rng.standard_normal(4)
    values = directions @ full
    tol = tolerance_for("autodiff", "numeric", "float64")
    none = compare_directional(full, Directional(directions, values, np.full(3, 1e3)), tol)
    assert none["verdict"] == Verdict.INCONCLUSIVE
    assert "3/3 directions" in none["reason"] and "other directions" not in none["reason"]
    errors = np.array([1e3, 0.0, 0.0])
    some = compare_directional(full, Directional(directions, values, errors), tol)
    assert (
        some["verdict"] == Verdict.INCONCLUSIVE and "the other directions agree" in some["reason"]
    )


def test_validate_says_a_case_written_with_np_once(files):
    cases = build_cases([f"{files / 'numpy_case.py'}:WithNumpy"], {})
    v = validate(
        f"{files / 'numpy_case.py'}:grads",
        form="model",
        cases=cases,
        references=["reference", "torch", "numeric"],
        channel=InProcess(),
    )
    said = [line for line in v.text().splitlines() if "calls numpy" in line]
    assert len(said) == 1 and "the references reference and torch failed" in said[0]
