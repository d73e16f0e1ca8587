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
    code = main(["report", "--out", str(tmp_path), "--case", "elman_*", "--set", "T=200",
                 "--dtype", "float32", "--quiet"])  # fmt: skip
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
    assert main(["run", "--case", "wiggle", "--backend", "reference", "--backend", "numeric",
                 "--csv", str(csv)]) == 0  # fmt: skip
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
    assert comparison.runs.set_index("backend").loc["numeric", "mode"] == "directional"
    x = comparison.agreement.set_index("tensor").loc["x"]
    assert x["verdict"] == "inconclusive" and "directions" in x["reason"]
    assert comparison.exit_code == 0


def test_the_step_search_stops_where_rounding_dominates():
    """A smooth, well-scaled derivative is resolved at the first step; a zero one stops
    after at most two tries (rounding/h only grows as h shrinks)."""
    from harness.backends import numeric

    calls = []

    def count(f):
        def g(t):
            calls.append(t)
            return f(t)

        return g

    d, err = numeric._stencil(count(np.exp), True, 7.4e-4, 4e-16)
    assert d == pytest.approx(1.0, rel=1e-10) and err < 1e-9 and len(calls) == 6
    calls.clear()
    d, err = numeric._stencil(count(lambda t: 1.0), True, 7.4e-4, 4e-16)
    assert d == 0 and len(calls) <= 12
