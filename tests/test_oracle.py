"""Finite differences as an oracle that never cries wolf: where the stencil cannot
resolve a derivative it says "inconclusive", with the reason, and the run still passes;
where a smaller step resolves it, that step is found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import compare_backends
from harness.cases import CATALOG, Case, at_least
from harness.cli import main


def test_the_exploding_unroll_is_resolved_by_a_smaller_step(capsys):
    """At T = 45 the loss has features ~1e-5 wide along b; the starting step 7.4e-4 gave
    -502.5 where every autodiff backend gives -62705.7. A smaller step resolves it."""
    assert main(["run", "--case", "elman_exploding", "--set", "T=45"]) == 0
    out = capsys.readouterr().out
    assert "DISAGREEMENT" not in out and "?" not in out.split("\n", 1)[1]


def test_the_readme_float32_report_of_long_elman_unrolls_passes(tmp_path):
    code = main(
        [
            "report",
            "--out",
            str(tmp_path),
            "--case",
            "elman_*",
            "--set",
            "T=200",
            "--dtype",
            "float32",
            "--quiet",
        ]
    )
    table = pd.read_csv(tmp_path / "agreement.csv", keep_default_na=False)
    assert code == 0, table[table["verdict"] != "agree"].to_string()


class Wiggle(Case):
    """L = Σ y² + A·Σ tanh((x − c)/w), A = 1e-12, w = 1e-6, c = x's own value (an input):
    dL/dx = A/w = 1e-6 from a feature 1e-6 wide. A step wider than w averages it away (the
    stencil's error estimate says so: about as large as what it finds); a step narrower
    than w drowns it in the rounding of L ≈ Σ y² (4ε·|L|/h ≫ 1e-4·dL/dx). No step resolves it."""

    name, family = "wiggle", "staged"
    options = {"n": 4}
    allowed = {"n": at_least(1)}

    def setup(self, rng):
        x = rng.standard_normal(self.n)
        return {"x": x, "y": 1 + rng.uniform(0, 1, self.n)}, {"c": x.copy()}

    def loss(self, ops, p, inputs):
        wiggle = 1e-12 * ops.sum(ops.tanh((p["x"] - inputs["c"]) / 1e-6))
        return ops.sum(p["y"] * p["y"]) + wiggle


@pytest.fixture
def wiggle(monkeypatch):
    monkeypatch.setitem(CATALOG, Wiggle.name, Wiggle)
    return Wiggle


def test_an_unresolvable_derivative_is_inconclusive_with_its_reason_and_exit_0(
    wiggle, capsys, tmp_path
):
    comparison = compare_backends([wiggle()], ["torch", "reference", "numeric"])
    rows = comparison.agreement.set_index(["backend", "tensor"])
    assert rows.loc[("numeric", "y"), "verdict"] == "agree"
    assert rows.loc[("reference", "x"), "verdict"] == "agree"
    x = rows.loc[("numeric", "x")]
    assert x["verdict"] == "inconclusive" and x["n_bad"] == 0 and x["n_unresolved"] >= 1
    assert "cannot resolve" in x["reason"]
    assert comparison.exit_code == 0 and not comparison.all_agree
    csv = tmp_path / "a.csv"
    assert (
        main(
            [
                "run",
                "--case",
                "wiggle",
                "--backend",
                "reference",
                "--backend",
                "numeric",
                "--csv",
                str(csv),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "inconclusive" in out and "DISAGREEMENT" not in out
    assert set(pd.read_csv(csv)["verdict"]) == {"agree", "inconclusive"}


def test_an_inconclusive_oracle_does_not_hide_a_real_disagreement(wiggle, monkeypatch):
    """A wrong tanh rule in the tape: the tape disagrees with torch on x (exit 1), while
    finite differences stay inconclusive there."""
    from dataclasses import replace

    from reference.primitives import RULES

    monkeypatch.setitem(RULES, "tanh", replace(RULES["tanh"], vjp=lambda g, ans, x: (2 * g,)))
    comparison = compare_backends([wiggle()], ["torch", "reference", "numeric"])
    rows = comparison.agreement.set_index(["backend", "tensor"])
    assert rows.loc[("reference", "x"), "verdict"] == "disagree"
    assert comparison.exit_code == 1


def test_directions_that_cannot_be_resolved_are_inconclusive(wiggle):
    comparison = compare_backends([wiggle(n=700)], ["torch", "numeric"])
    assert comparison.runs.set_index("backend").loc["numeric", "method"] == "directional"
    x = comparison.agreement.set_index("tensor").loc["x"]
    assert x["verdict"] == "inconclusive" and "directions" in x["reason"]
    assert comparison.exit_code == 0


def test_the_step_search_stops_where_rounding_dominates():
    """A smooth, well-scaled derivative is resolved at the first step; a zero one stops
    after at most two tries (rounding/h only grows as h shrinks)."""
    from harness import finite_differences

    calls = []

    def count(f):
        def g(t):
            calls.append(t)
            return f(t)

        return g

    d, err = finite_differences.stencil(count(np.exp), True, 7.4e-4, 4e-16)
    assert d == pytest.approx(1.0, rel=1e-10) and err < 1e-9 and len(calls) == 6
    calls.clear()
    d, err = finite_differences.stencil(count(lambda t: 1.0), True, 7.4e-4, 4e-16)
    assert d == 0 and len(calls) <= 12


@pytest.mark.parametrize("value", [1.3767253803593051, 0.1, -2.718281828459045, 1e-300])
def test_a_constant_has_a_derivative_of_exactly_zero(value):
    """Forward mode taps values that do not depend on the parameters (an MLP's input):
    the stencil sees the same number at every point and must say 0, not the rounding of
    f(−2h) − 8 f(−h) + 8 f(h) − f(2h) summed left to right (2.5e-14 at 1.3767)."""
    from harness import finite_differences

    for smooth in (True, False):
        d, _ = finite_differences.stencil_once(lambda t: value, smooth, 7.4e-4)
        assert d == 0.0


def test_a_zero_derivative_is_settled_at_the_rounding_level_not_widened():
    """Where the derivative is (near) zero the estimate stays at rounding/h: before, the
    search went on shrinking and widened the bound to the spread of the noisy values
    (elman_sigmoid's tap h: bounds of 8e-7 on elements whose error was 1e-16)."""
    from harness import finite_differences

    rounding = 4 * finite_differences.EPS * 5.0
    d, err = finite_differences.stencil(lambda t: 5.0 + t * t, True, 7.4e-4, rounding)
    assert abs(d) <= err <= 2 * rounding / 7.4e-4
    case = CATALOG["elman_sigmoid"]()
    params, inputs = case.build(0)
    from harness.backends import get_backend

    result = get_backend("numeric").gradient(case, params, inputs, "float64")
    assert max(float(np.max(u)) for u in result.uncertainty.values()) < 1e-10


def _logistic(t: float, n: int = 80) -> float:
    """n steps of the logistic map x ← 3.99·x·(1 − x) from 0.3 + t: features ~3.99^-n wide."""
    x = 0.3 + t
    for _ in range(n):
        x = 3.99 * x * (1 - x)
    return x


def test_a_chaotic_loss_has_no_derivative_finite_differences_can_vouch_for():
    """At every step tried the values grow like 1/h (the features are narrower than any
    step): the estimate is infinite, so the element can neither agree nor disagree."""
    from harness import finite_differences

    d, err = finite_differences.stencil(_logistic, True, 7.4e-4, 4 * finite_differences.EPS)
    assert err == np.inf


def test_elman_exploding_at_t_1000_is_unresolved_by_finite_differences_not_contradicted():
    """The oracle's own verdict on the chaotic unroll: inconclusive or agreeing within
    noise, never a disagreement (its values there are ~1e2 where the gradient is ~1e16)."""
    from harness.selection import build_cases, parse_sets

    case = build_cases(["elman_exploding"], parse_sets(["T=1000", "H=64"]))[0]
    comparison = compare_backends([case], ["torch", "numeric"])
    verdicts = comparison.agreement.set_index("tensor")["verdict"]
    assert comparison.exit_code == 0
    assert set(verdicts) <= {"inconclusive", "agree within noise", "agree"}
    assert verdicts["b"] == "inconclusive" and verdicts["h"] == "inconclusive"


@pytest.mark.slow
def test_the_error_estimate_is_honest_over_the_catalog():
    """u_i against |FD − autodiff| (float64 autodiff on the same inputs, rounded to the
    run's dtype), every catalog element and direction: u bounds the error on at least 99%
    of them and is not more than 1000× it on the median one (measured: 100% and 19× in
    float64, 100% and 16× on float32 inputs)."""
    from harness.backends import get_backend
    from harness.runner import resolve_cases

    numeric, torch = get_backend("numeric"), get_backend("torch")
    for dtype in ("float64", "float32"):
        u_all, err_all = [], []
        for case in resolve_cases(None):
            params, inputs = case.build(0, dtype)
            P = {k: v.astype(np.float64) for k, v in params.items()}
            X = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inputs.items()}
            fd = numeric.gradient(case, P, X, "float64")
            ad = torch.gradient(case, P, X, "float64").tensors()
            for key, probe in fd.directional.items():
                projected = probe.directions.reshape(len(probe.values), -1) @ ad[key].ravel()
                u_all.append(probe.errors)
                err_all.append(np.abs(probe.values - projected))
            for key, u in fd.uncertainty.items():
                if key[0] != "loss":
                    u_all.append(np.ravel(u))
                    err_all.append(np.abs(np.ravel(fd.tensors()[key] - ad[key])))
        u, err = np.concatenate(u_all), np.concatenate(err_all)
        assert np.isfinite(u).all(), dtype
        assert (u >= err).mean() >= 0.99, dtype
        assert np.median(u[err > 0] / err[err > 0]) <= 1000, dtype
