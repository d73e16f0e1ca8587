"""A case family declares, once, what the drift plot, the theory, the report and the manual
backend need to know; those read the declaration, so a family declared anew is picked up
by them without an edit, and no module names a family that is not declared."""

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import harness
from harness import theory
from harness.backends.hand_derived import ManualBackend
from harness.cases import CATALOG, Case, register, select
from harness.cases.family import FAMILIES, Family, declare, family_of
from harness.cases.manual_backprop import ManualBackprop
from harness.drift import drift_case

HARNESS = Path(harness.__file__).parent


def test_every_catalog_case_has_a_declared_family():
    assert {c.family for c in CATALOG.values()} <= set(FAMILIES)


def test_the_declarations():
    facts = {f.name: (f.unroll, f.layer_index, f.theory) for f in FAMILIES.values()}
    assert facts == {
        "staged": (False, None, None),
        "mlp": (False, "l", "mean-field"),
        "elman": (True, None, "pascanu"),
        "lstm": (True, None, None),
        "gru": (True, None, None),
    }


def test_every_declared_theory_is_one_the_theory_module_has():
    assert {f.theory for f in FAMILIES.values()} - {None} <= set(theory.THEORIES)


def test_the_catalog_is_listed_in_the_order_families_are_declared():
    order = list(FAMILIES)
    listed = [order.index(c.family) for c in select(None)]
    assert listed == sorted(listed)


def test_an_undeclared_family_declares_nothing():
    assert family_of("user") == Family("user")


def _family_literals(tree: ast.AST) -> set[str]:
    """String constants compared with, or looked up by, a ``.family`` attribute."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
            isinstance(side, ast.Attribute) and side.attr == "family"
            for side in [node.left, *node.comparators]
        ):
            for side in ast.walk(node):
                if isinstance(side, ast.Constant) and isinstance(side.value, str):
                    found.add(side.value)
    return found


def test_no_module_outside_the_cases_compares_a_family_with_a_name():
    named = {
        str(path.relative_to(HARNESS)): _family_literals(ast.parse(path.read_text()))
        for path in HARNESS.rglob("*.py")
        if "cases" not in path.parts
    }
    assert {path: names for path, names in named.items() if names} == {}


# --- a family declared anew is picked up without an edit ------------------------------------


@pytest.fixture
def toy_family():
    """A recurrent family ``toy`` under the Pascanu bound, with a hand-derived backprop,
    declared as a new family would be (and taken back after the test)."""

    def forward(case, p, x):
        h = np.tanh(p["w"] * x["x"])
        return float(h.sum()), (h, x["x"])

    def backward(case, cache):
        h, x = cache
        return {"w": ((1 - h**2) * x).sum(keepdims=True).reshape(1)}, {}, {}

    class Toy(Case):
        """L = Σ_t tanh(w·x_t)."""

        name, family = "toy_unroll", "toy"
        options = {"T": 4, "act": "tanh", "objective": "last", "sigma": 0.5}  # Pascanu reads sigma
        manual = ManualBackprop(forward=forward, backward=backward)

        def setup(self, rng):
            return {"w": rng.standard_normal(1)}, {"x": rng.standard_normal(self.T)}

        def loss(self, xp, params, inputs):
            return xp.sum(xp.tanh(params["w"] * inputs["x"]))

    declare(Family("toy", unroll=True, theory="pascanu"))
    register(Toy)
    yield Toy
    del FAMILIES["toy"], CATALOG["toy_unroll"]


def test_drift_grows_a_new_unroll_family(toy_family):
    case = toy_family()
    assert drift_case([case]) == (case, "T")


def test_the_manual_backend_runs_a_new_declaration(toy_family):
    case = toy_family()
    params, inputs = case.build(0, "float64")
    result = ManualBackend().gradient(case, params, inputs, "float64")
    h = np.tanh(params["w"] * inputs["x"])
    assert result.loss == pytest.approx(h.sum())
    np.testing.assert_allclose(result.grads["w"], [((1 - h**2) * inputs["x"]).sum()])


def test_theory_summarises_a_new_unroll_family(toy_family, monkeypatch):
    case = toy_family()
    monkeypatch.setattr(theory, "elman_bound", lambda c: 0.5)
    mags = pd.DataFrame(
        {
            "case": case.label,
            "backend": "torch",
            "tap": "h",
            "step": range(4),
            "norm": [1.0, 2.0, 4.0, 8.0],
        }
    )
    row = theory.summaries(mags, [case]).iloc[0]
    assert row["theory_rate"] == 0.5
    assert theory.bound_curve(case, 8.0, 4).tolist() == [1.0, 2.0, 4.0, 8.0]
