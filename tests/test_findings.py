"""Findings are data: what the diagnostics found is in a Finding's fields, its sentence is
rendered from them, and the selftest's few words (``how``) read the fields, not the
sentence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.validation.diagnose import how, localise, pattern
from harness.validation.findings import Finding, Topic


def tap_rows(verdicts: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Agreement rows of a plug-in's taps: tensor -> (verdict, bad steps)."""
    return pd.DataFrame(
        [
            {"kind": "tap", "tensor": t, "verdict": v, "bad_steps": s, "error": ""}
            for t, (v, s) in verdicts.items()
        ]
    )


def test_a_step_backward_error_is_located_at_its_first_bad_step():
    rows = tap_rows({"h": ("disagree", "0-9")})
    (found,) = localise(rows, {"h": 12}, label="elman")
    assert (found.topic, found.bad, found.first_bad) == (Topic.LOCALISED, True, "t = 9")
    assert found.short == "dL/dh_t agrees for t ≥ 10"
    assert found.text == (
        "dL/dh_t agrees for t ≥ 10 and diverges below (from t = 9 down, 10 of "
        "12 steps): look at the backward of step t = 9, the one that makes "
        "dL/dh_9"
    )


def test_a_step_tap_is_not_assumed_to_be_carried_from_step_to_step():
    """An input tap x_t is made by step t's backward from dL/dh_t, not from dL/dx_{t+1}:
    the advice names the step, in both directions, and claims no recurrence of the tap."""
    (back,) = localise(tap_rows({"x": ("disagree", "0-6")}), {"x": 12}, label="mine")
    (fwd,) = localise(tap_rows({"x": ("disagree", "3-11")}), {"x": 12}, mode="fwd")
    assert (back.first_bad, fwd.first_bad) == ("t = 6", "t = 3")
    assert "dL/dx_7" not in back.text and "x_2" not in fwd.text


def test_a_readout_error_is_located_at_the_last_step_and_a_differing_forward_is_not_blamed():
    rows = tap_rows({"h": ("disagree", "11")})
    (found,) = localise(rows, {"h": 12})
    assert found.bad and found.first_bad == "t = 11" and found.short.endswith("last step t = 11")
    (found,) = localise(rows, {"h": 12}, forward_differs=True)
    assert not found.bad and found.first_bad == "t = 11"


def test_stages_are_located_by_name_and_agreeing_taps_are_no_finding_against_the_plugin():
    rows = tap_rows({"s[0]": ("disagree", ""), "s[1]": ("disagree", ""), "s[2]": ("agree", "")})
    (found,) = localise(rows, {})
    assert found.bad and found.first_bad == "s[1]" and found.short == "dL/ds[k] agrees for k ≥ 2"
    (fine,) = localise(tap_rows({"s[0]": ("agree", ""), "s[1]": ("agree", "")}), {})
    assert not fine.bad and fine.first_bad == ""


def test_forward_mode_walks_on_from_the_first_step():
    (found,) = localise(tap_rows({"h": ("disagree", "3-5")}), {"h": 6}, mode="fwd")
    assert found.first_bad == "t = 3" and found.short == "tangent of h_t agrees for t ≤ 2"


def test_a_constant_factor_is_a_field():
    rows = pd.DataFrame(
        [
            {
                "kind": "param",
                "tensor": t,
                "verdict": "disagree",
                "factor": 0.5,
                "factor_residual": 0.0,
                "max_rel_err": 0.5,
            }
            for t in ("W", "b")
        ]
    )
    found = pattern(rows, "float64", "mlp")
    assert (found.topic, found.factor, found.tensor, found.short) == (
        Topic.PATTERN,
        0.5,
        "W, b",
        "a constant factor",
    )
    assert "× 0.5 (= 1/2), a constant factor" in found.text
    zeros = pattern(rows.assign(factor=0.0), "float64", "mlp")
    assert zeros.factor == 0.0 and zeros.short == "zeros"


def test_how_reads_the_fields():
    """The selftest's words come from topics, tensors and short forms: a sentence that
    happens to contain "constant factor" or "diverges" changes nothing."""
    misleading = "a constant factor that diverges already at t = 0, and agrees for t ≥ 1 and"
    findings = [
        Finding("c", Topic.DISAGREES, misleading, True, tensor="W"),
        Finding("c", Topic.DISAGREES, misleading, True, tensor="b"),
        Finding("c", Topic.PATTERN, misleading, True, factor=None, short="float32-sized"),
        Finding("c", Topic.LOCALISED, misleading, True, short="dL/dh_t agrees for t ≥ 4"),
        Finding("c", Topic.REFERENCES, misleading, False, caution=True),
    ]
    assert how(findings) == "W, b disagree; float32-sized; dL/dh_t agrees for t ≥ 4"
    faults = [Finding("c", "wrong dtype", "{message}", True, tensor="W", facts={"message": "x"})]
    assert how(faults) == "wrong dtype (W)"
    several = Finding(
        "c",
        "wrong dtype",
        "{message}",
        True,
        tensor="W, b",
        facts={"message": "x", "tensors": ["b", "W", "h"]},
    )
    assert how([several]) == "wrong dtype (W, b, h)"  # one fault, its tensors named


def test_a_finding_renders_its_template_and_marks_its_line():
    f = Finding(
        "mlp",
        Topic.REFERENCES,
        "the references disagree among themselves ({which})",
        False,
        caution=True,
        facts={"which": "jax vs torch on param 'W'"},
    )
    assert (
        f.line() == "  ! mlp: the references disagree among themselves (jax vs torch on param 'W')"
    )
    assert Finding("mlp", Topic.IDENTITY, "{x}", True, facts={"x": "y"}).line() == "  ✗ mlp: y"
    assert Finding("mlp", Topic.REFERENCES, "plain", False).line() == "  · mlp: plain"


def test_float32_rounding_is_float32_numbers_not_any_noise_of_its_size():
    """Errors of 1e-7 in a float64 run are float32's rounding when the values got are
    float32 numbers; seeded random noise of the same size is not, and gets no such advice."""
    rounded = float(np.float32(0.123456789))
    rows = pd.DataFrame(
        [
            {
                "kind": "param",
                "tensor": "W",
                "verdict": "disagree",
                "factor": 1.0,
                "factor_residual": 1.0,
                "max_rel_err": 3e-8,
                "worst_got": rounded,
            }
        ]
    )
    assert pattern(rows, "float64", "mlp").short == "float32-sized"
    assert pattern(rows.assign(worst_got=0.123456789 * (1 + 1e-7)), "float64", "mlp") is None
    assert pattern(rows, "float32", "mlp") is None


def _row(tensor, got, expected):
    from harness.compare.metrics import compare_arrays
    from harness.tolerances import TOLERANCES

    row = compare_arrays(got, expected, TOLERANCES[("autodiff", "float64")])
    return {"kind": "param", "tensor": tensor, **row}


def test_a_gradient_that_is_its_reference_transposed_is_named_so():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 4))
    rows = pd.DataFrame([_row("W", W.T, W)])
    assert rows["transposed_residual"].iloc[0] < 1e-15
    found = pattern(rows, "float64", "mlp")
    assert (found.short, found.tensor) == ("transposed", "W")
    assert "W is the references' transposed" in found.text


@pytest.mark.parametrize(
    "got, expected",
    [
        (np.eye(3) * 2, np.eye(3)),  # symmetric: its transpose is itself, no explanation
        (np.ones((2, 3)), np.zeros((2, 3)) + 0.5),  # not square: no transpose fits
        (np.arange(4.0)[::-1], np.arange(4.0)),  # a vector reversed is no transpose
    ],
)
def test_a_transpose_is_not_claimed_where_it_explains_nothing(got, expected):
    rows = pd.DataFrame([_row("W", got, expected)])
    found = pattern(rows, "float64", "mlp")
    assert found is None or found.short != "transposed"
