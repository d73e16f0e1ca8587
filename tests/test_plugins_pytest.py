"""The pytest plugin, tested with pytester: the option group, the one-line fixture, the
implementation named on the command line."""

from __future__ import annotations

from importlib import metadata

import numpy  # noqa: F401  (imported out here: pytester's in-process runs must not re-import
import pandas  # noqa: F401  a C extension, which they would after restoring sys.modules)

import harness.validation.validator  # noqa: F401
import reference.manual  # noqa: F401

pytest_plugins = ["pytester"]

TESTS = """
import numpy as np

import reference.manual


def grads(params, inputs, case):
    loss, cache = reference.manual.mlp_forward(params, inputs["X"], inputs["Y"], case.act, case.objective)
    return {"grads": reference.manual.mlp_backward(cache)[0], "loss": loss}


def bias_mean(params, inputs, case):
    out = grads(params, inputs, case)
    out["grads"]["b1"] = out["grads"]["b1"] / len(inputs["X"])
    return out


def test_mine_agrees(gradparity_check):
    v = gradparity_check(grads, case="mlp", references=["reference"])
    assert v.ok


def test_mine_is_wrong(gradparity_check):
    gradparity_check(bias_mean, case="mlp", references=["reference"])


def test_named_on_the_command_line(gradparity_impl, gradparity_check):
    gradparity_check(gradparity_impl, case="mlp", references=["reference"])
"""


def test_the_plugin_is_registered_as_an_entry_point():
    points = metadata.entry_points(group="pytest11")
    assert any(p.name == "gradparity" and p.value == "harness.pytest_plugin" for p in points)


def test_options_are_in_their_own_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "gradparity: check your own backprop against the references:",
            "*--gradparity-impl=TARGET*",
            "*--gradparity-as=*",
            "*--gradparity-timeout=S*",
        ]
    )


def test_one_line_asserts_an_implementation_with_the_diagnostics(pytester):
    pytester.makepyfile(test_mine=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: gradparity: the implementation does not agree with the references*",
            "*param 'b1': 16/16 elements disagree with reference; worst at (*): got *, expected *",
            "*plugin:bias_mean (model): 8/9 tensors agree over 1 case, 0 faults: DISAGREES*",
            "*SKIPPED*no implementation named: run pytest --gradparity-impl TARGET*",
        ]
    )


def test_the_implementation_can_be_named_on_the_command_line(pytester):
    pytester.makepyfile(test_mine=TESTS)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "-k",
        "command_line",
        "--gradparity-impl",
        "harness.zoo.models:bias_mean",
        "--gradparity-as",
        "model",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*plugin:bias_mean: param 'b1': 16/16 elements disagree*"])


def test_the_fixture_takes_a_user_case(pytester):
    """gradparity_check(my_grads, case=MyModel): a Case class of the user's own."""
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples"
    pytester.makepyfile(f"""
import sys
sys.path.insert(0, {str(examples)!r})
from my_lstm import MyLSTM, grads


def test_mine(gradparity_check):
    gradparity_check(grads, case=MyLSTM, references=["reference", "torch"])
""")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
