"""``harness.compare``: what "agree" means, on hand-made arrays and hand-made Results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.compare import agreement, compare_arrays, odd_one_out
from harness.result import Result
from harness.tolerances import TOLERANCES, Tolerance, tolerance_for

AUTODIFF = TOLERANCES[("autodiff", "float64")]
NUMERIC = TOLERANCES[("numeric", "float64")]


# --- scale awareness -----------------------------------------------------------------------


def test_a_tiny_tensor_is_judged_against_its_own_size():
    expected = 1e-20 * np.array([1.0, -2.0, 0.5])
    assert not compare_arrays(expected * 1.1, expected, AUTODIFF)["ok"]  # 10% off
    assert compare_arrays(expected.copy(), expected, AUTODIFF)["ok"]


def test_exact_zeros_on_both_sides_agree():
    result = compare_arrays(np.zeros(4), np.zeros(4), AUTODIFF)
    assert result["ok"] and result["max_abs_err"] == 0.0


def test_exact_zeros_agree_even_where_the_oracle_is_unsure():
    # A tapped value that does not depend on the parameters has tangent 0 (forward
    # mode): both sides give exactly 0, and no error estimate can make that inconclusive.
    zeros, unc = np.zeros((3, 4)), np.full((3, 4), 1e-12)
    assert compare_arrays(zeros, zeros, AUTODIFF, uncertainty=unc)["verdict"] == "agree"
    nonzero = np.ones((3, 4))
    assert (
        compare_arrays(nonzero, nonzero, AUTODIFF, uncertainty=unc * 1e12)["verdict"]
        == "inconclusive"
    )


def test_1e_30_where_zero_was_expected_disagrees():
    result = compare_arrays(np.array([0.0, 1e-30]), np.zeros(2), AUTODIFF)
    assert not result["ok"]
    assert result["worst_index"] == "(1,)" and result["n_bad"] == 1


def test_each_step_of_a_stepped_tap_is_judged_against_its_own_scale():
    """Rows decay from 1 to 1e-20. A 10% error in row 9 (size ~1e-18) is nothing next to
    row 0, so one scale for the whole tensor passes it; a scale per step flags it."""
    T, H = 11, 3
    rng = np.random.default_rng(0)
    expected = np.logspace(0, -20, T)[:, None] * rng.uniform(1, 2, (T, H))
    got = expected.copy()
    got[9] *= 1.1
    stepped = compare_arrays(got, expected, AUTODIFF, stepped=True)
    assert not stepped["ok"]
    assert stepped["bad_steps"] == "9"
    assert stepped["n_bad"] == H
    assert compare_arrays(got, expected, AUTODIFF, stepped=False)["ok"]


def test_bad_steps_are_listed_as_ranges():
    expected = np.ones((10, 2))
    got = expected.copy()
    got[[2, 3, 4, 7]] += 0.5
    assert compare_arrays(got, expected, AUTODIFF, stepped=True)["bad_steps"] == "2-4,7"


def test_a_scalar_per_step_tap_is_judged_per_step():
    expected = np.logspace(0, -20, 11)
    got = expected.copy()
    got[9] *= 1.1
    result = compare_arrays(got, expected, AUTODIFF, stepped=True)
    assert not result["ok"] and result["bad_steps"] == "9"


# --- malformed input -----------------------------------------------------------------------


def test_a_shape_mismatch_is_an_error_naming_both_shapes():
    result = compare_arrays(np.zeros((2, 3)), np.zeros((3, 2)), AUTODIFF)
    assert result["ok"] is False
    assert "(2, 3)" in result["error"] and "(3, 2)" in result["error"]


@pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_disagrees(bad_value):
    got = np.array([1.0, bad_value, 3.0])
    result = compare_arrays(got, np.array([1.0, 2.0, 3.0]), AUTODIFF)
    assert not result["ok"]
    assert result["worst_index"] == "(1,)"


@pytest.mark.parametrize("bad_value", [math.nan, math.inf])
def test_a_non_finite_expected_value_flags_itself_not_its_neighbours(bad_value):
    """A NaN on the expected side (a reference's 0·∞) is one bad element; the scale of the
    others is the finite elements', so they are judged as usual."""
    expected = np.array([bad_value, 1.0, -2.0, bad_value, 0.5, 0.0])
    got = np.array([0.0, 1.0, -2.0, 0.0, 0.5, 0.0])
    result = compare_arrays(got, expected, AUTODIFF)
    assert result["n_bad"] == 2 and result["worst_index"] in ("(0,)", "(3,)")
    assert result["worst_scale"] == 2.0


def test_a_tensor_with_no_elements_is_not_counted_as_compared():
    """Agreement over zero elements is vacuous: the empty parameter's row is not a
    comparison (the loss's is)."""
    from harness.compare import Comparison
    from harness.compare.verdicts import compared

    empty = np.zeros((0, 3))
    results = [
        Result(case="c", backend=name, dtype="float64", loss=1.0, grads={"W": empty})
        for name in ("torch", "reference")
    ]
    table = Comparison(results, baseline="torch").agreement
    counted = dict(zip(table["tensor"], compared(table), strict=True))
    assert counted == {"loss": True, "W": False}, counted


# --- the metrics, on numbers worked out by hand --------------------------------------------


def test_metrics_on_a_hand_made_pair():
    """a = (3, 4), b = (4, 3): |a − b| = (1, 1); relative to the scale max|b| = 4: 1/4;
    ‖a − b‖/‖b‖ = √2/5; cos = 24/25. The worst element is the largest error relative to
    the scale; both are off by 1/4 of it, and the first is named: index 0."""
    result = compare_arrays(np.array([3.0, 4.0]), np.array([4.0, 3.0]), AUTODIFF)
    assert result["max_abs_err"] == 1.0
    assert result["max_rel_err"] == pytest.approx(1 / 4, rel=1e-15)
    assert result["rel_l2_err"] == pytest.approx(math.sqrt(2) / 5, rel=1e-15)
    assert result["cosine"] == pytest.approx(24 / 25, rel=1e-15)
    assert result["worst_index"] == "(0,)"
    assert (result["worst_got"], result["worst_expected"]) == (3.0, 4.0)
    assert (result["worst_scale"], result["worst_rel_err"]) == (4.0, 1 / 4)
    assert (result["n_bad"], result["n_elements"], result["ok"]) == (2, 2, False)


@pytest.mark.parametrize(
    "got, expected, cosine, rel_l2",
    [
        ([1.0, 0.0], [0.0, 1.0], 0.0, math.sqrt(2)),  # orthogonal
        ([2.0, 2.0], [1.0, 1.0], 1.0, 1.0),  # parallel, twice as long
        ([-1.0, -1.0], [1.0, 1.0], -1.0, 2.0),  # opposite
        ([[1.0, 2.0], [2.0, 4.0]], [[1.0, 2.0], [2.0, 4.0]], 1.0, 0.0),  # identical, 2-D
    ],
)
def test_cosine_and_rel_l2(got, expected, cosine, rel_l2):
    result = compare_arrays(np.array(got), np.array(expected), AUTODIFF)
    assert result["cosine"] == pytest.approx(cosine, abs=1e-15)
    assert result["rel_l2_err"] == pytest.approx(rel_l2, abs=1e-15)


def test_a_scalar_loss_compares_like_a_tensor():
    assert compare_arrays(np.float64(2.0), np.asarray(2.0 + 1e-14), AUTODIFF)["ok"]
    result = compare_arrays(np.float64(2.0), np.asarray(2.1), AUTODIFF)
    assert not result["ok"] and result["worst_index"] == "()"


def test_the_uncertainty_term_widens_the_tolerance():
    """|a − b| = 1e-6 on b = 1: beyond rtol·1 + atol·1 = 1.1e-7; within it plus 1e-6."""
    expected = np.ones(3)
    got = expected + 1e-6
    assert not compare_arrays(got, expected, NUMERIC)["ok"]
    assert not compare_arrays(got, expected, NUMERIC, uncertainty=np.full(3, 5e-7))["ok"]
    assert compare_arrays(got, expected, NUMERIC, uncertainty=np.full(3, 1e-6))["ok"]
    only_first = compare_arrays(got, expected, NUMERIC, uncertainty=np.array([1e-6, 0, 0]))
    assert only_first["n_bad"] == 2


def test_a_pair_of_backends_uses_the_looser_row():
    assert tolerance_for("autodiff", "numeric", "float64") == Tolerance(rtol=1e-7, atol=1e-8)
    assert tolerance_for("autodiff", "autodiff", "float32") == Tolerance(rtol=1e-4, atol=1e-5)


# --- the odd one out -----------------------------------------------------------------------

W = np.array([0.5, -1.5, 2.0])


def result(backend: str, w: np.ndarray, obtained_by: str = "autodiff") -> Result:
    return Result(
        case="hand",
        backend=backend,
        dtype="float64",
        loss=1.25,
        grads={"w": w},
        obtained_by=obtained_by,
    )


def test_the_single_dissenting_backend_is_theodd_one_out():
    results = [
        result("reference", W * 1.01),
        result("torch", W.copy()),
        result("jax", W + 1e-15),
        result("numeric", W + 1e-10, obtained_by="elementwise"),
    ]
    assert odd_one_out(results, ("param", "w"), None) == "reference"
    assert odd_one_out(results, ("loss", "loss"), None) == ""
    table = agreement(results, baseline="torch").set_index(["backend", "tensor"])
    assert not table.loc[("reference", "w"), "ok"]
    assert table.loc[("jax", "w"), "ok"] and table.loc[("numeric", "w"), "ok"]
    assert set(table.xs("w", level="tensor")["odd_one_out"]) == {"reference"}


@pytest.mark.parametrize(
    "grads",
    [
        [W * 1.01, W * 1.01, W, W],  # two against two: no single culprit
        [W * 1.01, W * 1.02, W, W],  # two dissenters
        [W * 1.01, W],  # fewer than three backends: no majority to lean on
        [W, W, W],  # everyone agrees
    ],
    ids=["two-two", "two-dissenters", "only-two", "unanimous"],
)
def test_no_odd_one_out_without_a_single_dissenter_and_an_agreeing_rest(grads):
    names = ["reference", "torch", "jax", "numeric"][: len(grads)]
    results = [result(name, g) for name, g in zip(names, grads)]
    assert odd_one_out(results, ("param", "w"), None) == ""


def test_a_failed_backend_is_left_out_of_the_vote():
    results = [
        result("reference", W * 1.01),
        result("torch", W.copy()),
        result("jax", W.copy()),
        Result(case="hand", backend="numeric", dtype="float64", error="RuntimeError: boom"),
    ]
    assert odd_one_out(results, ("param", "w"), None) == "reference"
    assert odd_one_out(results[:2] + results[3:], ("param", "w"), None) == ""


def test_norms_of_tiny_gradients_do_not_underflow():
    """‖(1e-200, 2e-200)‖ = √5·1e-200: squaring each element underflows to 0, so the norm
    must be taken on scaled values. Decayed per-step gradients live at these sizes."""
    from harness.compare import l2_norm, magnitudes
    from harness.result import Result

    tiny = np.array([[1e-200, 2e-200], [3.0, 4.0]])
    assert l2_norm(tiny[0]) == pytest.approx(np.sqrt(5) * 1e-200, rel=1e-15)
    np.testing.assert_allclose(l2_norm(tiny, axis=1), [np.sqrt(5) * 1e-200, 5.0], rtol=1e-15)
    result = Result("c", "b", "float64", taps={"h": tiny}, tap_steps={"h": 2})
    norms = magnitudes([result])["norm"].to_numpy()
    np.testing.assert_allclose(norms, [np.sqrt(5) * 1e-200, 5.0], rtol=1e-15)
    metrics = compare_arrays(tiny[0] * 1.5, tiny[0], AUTODIFF)
    assert metrics["rel_l2_err"] == pytest.approx(0.5, rel=1e-14)
    assert metrics["cosine"] == pytest.approx(1.0, rel=1e-14)


def test_subnormal_range_is_not_told_from_zero_but_just_above_it_is():
    """XLA on the CPU flushes subnormals to zero: near float64's underflow one backend has
    9.7e-308 where another has 0 (elman T=1000, σ=1: torch vs jax). Below tiny/ε ≈ 1e-292
    the terms of a value are subnormal, so agreement is not judged there; at 1e-250 it is."""
    assert compare_arrays(np.array([0.0, 1.0]), np.array([9.7e-308, 1.0]), AUTODIFF, stepped=True)[
        "ok"
    ]
    assert compare_arrays(np.array([0.0]), np.array([1e-300]), AUTODIFF)["ok"]
    assert not compare_arrays(np.array([0.0]), np.array([1e-250]), AUTODIFF)["ok"]
    assert not compare_arrays(np.array([1e-250 * 1.1]), np.array([1e-250]), AUTODIFF)["ok"]
    f32 = compare_arrays(np.array([0.0]), np.array([1e-32]), AUTODIFF, dtype="float32")
    assert f32["ok"]


@pytest.mark.parametrize("n, noun, plural, said", [
    (1, "case", None, "1 case"), (0, "case", None, "0 cases"), (2, "fault", None, "2 faults"),
    (1, "broken identity", "broken identities", "1 broken identity"),
    (3, "broken identity", "broken identities", "3 broken identities"),
])  # fmt: skip
def test_a_count_agrees_with_its_noun(n, noun, plural, said):
    from harness.compare.text import counted

    assert counted(n, noun, plural) == said


def test_a_case_where_no_backend_succeeded_names_no_odd_one_out():
    """Every row has an odd one out or "" (none), never a missing value that reads as
    true: a case where no backend succeeded, beside one with three that ran."""
    from harness import console
    from harness.compare import Comparison

    broken = [Result("c", b, "float64", error="exception: boom") for b in ("x", "y")]
    grads = {"w": np.array([1.0, 2.0])}
    ran = [Result("d", b, "float64", loss=1.0, grads=dict(grads)) for b in ("x", "y", "z")]
    comparison = Comparison([*broken, *ran], "x")
    assert comparison.agreement["odd_one_out"].map(lambda v: isinstance(v, str)).all()
    assert not any("odd one out" in line for line in console.findings(comparison))
