"""Mutation tests: break the tape on purpose and check that the harness says so, names the
tensors the bug reaches (and only those), and names the reference as the odd one out.

Which tensors a bug reaches follows from the chain rule alone: a wrong local derivative at
a stage corrupts dL/dv for every v the backward pass reaches *through* that stage (the
stage's inputs and everything before it), and nothing computed before the backward pass
gets there (the loss, and dL/dv for the values after it)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from harness import compare_backends
from harness.backends.numeric import NumpyNamespace
from harness.cases import CATALOG
from reference import engine
from reference.primitives import RULES

BACKENDS = ["reference", "torch", "jax", "numeric"]


def tap_names(name: str) -> list[str]:
    """The case's taps in the order the forward pass makes them."""
    case = CATALOG[name]()
    params, inputs = case.build(0)
    probe = NumpyNamespace()
    case.loss(probe, params, inputs)
    return list(probe.tap_steps)


def flagged(table: pd.DataFrame, backend: str) -> set[tuple[str, str]]:
    rows = table[(table["backend"] == backend) & ~table["ok"].astype(bool)]
    return set(zip(rows["kind"], rows["tensor"]))


def assert_only_the_reference_is_wrong(table: pd.DataFrame, expected: set[tuple[str, str]]):
    """The reference's failing rows are exactly ``expected``; it is the odd one out for
    those tensors and for no other; every other backend agrees with torch everywhere."""
    reference = table[table["backend"] == "reference"]
    assert flagged(table, "reference") == expected
    assert set(zip(reference["kind"], reference["tensor"])) > expected  # some rows still agree
    for row in table.itertuples():
        want = "reference" if (row.kind, row.tensor) in expected else ""
        assert row.odd_one_out == want, (
            f"{row.kind} {row.tensor!r}: odd one out {row.odd_one_out!r}"
        )
    others = table[table["backend"] != "reference"]
    assert others["ok"].all(), others[~others["ok"].astype(bool)].to_string()


def test_tanh_derivative_taken_from_the_input_is_flagged_up_to_the_last_tanh(monkeypatch):
    """vjp g·(1 − x) instead of g·(1 − tanh²x). In deep_chain, stage k (k mod 4 = 0) is
    s_{k+1} = tanh(a_k s_k + c_k), so dL/ds_j for j ≤ k_last (the last tanh stage), x = s_0,
    and a_k, c_k for k ≤ k_last are wrong; s_j for j > k_last and the loss are not."""
    broken = replace(RULES["tanh"], vjp=lambda g, ans, x: (g * (1 - x),), saves="x")
    monkeypatch.setitem(RULES, "tanh", broken)
    table = compare_backends(["deep_chain"], BACKENDS).agreement

    case = CATALOG["deep_chain"]()
    taps = tap_names("deep_chain")  # s_0 .. s_K
    assert len(taps) == case.K + 1
    k_last = max(k for k in range(case.K) if k % 4 == 0)
    upstream = {("tap", s) for s in taps[: k_last + 1]}
    assert_only_the_reference_is_wrong(table, upstream | {("param", p) for p in ("x", "a", "c")})
    rows = table[table["backend"] == "reference"].set_index("tensor")
    assert rows.loc["a", "n_bad"] == rows.loc["c", "n_bad"] == k_last + 1  # a_0..a_k_last
    assert rows.loc["x", "n_bad"] == case.n


def overwrite(grads: dict, node, g: np.ndarray) -> None:
    """The classic fan-out bug: the last path's contribution replaces the others."""
    grads[node] = g


def test_fan_out_that_overwrites_instead_of_adding_is_flagged_at_x_only(monkeypatch):
    """In fan_out_fan_in only x is used more than once (five paths); y, p1, p2, p3 and q
    each reach the loss along one path, so their gradients stay right."""
    monkeypatch.setattr(engine, "accumulate", overwrite)
    table = compare_backends(["fan_out_fan_in"], BACKENDS).agreement
    assert_only_the_reference_is_wrong(table, {("param", "x")})
    assert set(table["tensor"]) == {"loss", "x", "y", "p1", "p2", "p3", "q"}


def test_sigmoid_derivative_taken_from_the_pre_activation_is_flagged_before_it(monkeypatch):
    """vjp g·a(1 − a) instead of g·z(1 − z), z = σ(a). In card_sigmoid_unit dL/dz is
    computed before the sigmoid's VJP (right); dL/da, dL/dw and dL/db after it (wrong)."""
    monkeypatch.setitem(
        RULES,
        "sigmoid",
        replace(RULES["sigmoid"], vjp=lambda g, ans, x: (g * x * (1 - x),), saves="x"),
    )
    table = compare_backends(["card_sigmoid_unit"], BACKENDS).agreement
    assert_only_the_reference_is_wrong(table, {("tap", "a"), ("param", "w"), ("param", "b")})
    assert set(table["tensor"]) == {"loss", "w", "b", "a", "z"}


def test_add_without_unbroadcast_fails_the_reference_backend_and_only_it(monkeypatch):
    """Without unbroadcast, add hands b (H,) a gradient of shape (N, H): the engine's shape
    check raises RuleError, the reference backend fails, and the other three still run."""
    monkeypatch.setitem(RULES, "add", replace(RULES["add"], broadcasts=False))
    comparison = compare_backends(["bias_broadcast"], BACKENDS)
    case = CATALOG["bias_broadcast"]()
    runs = comparison.runs.set_index("backend")
    assert runs.loc["reference", "status"] == "failed"
    error = runs.loc["reference", "error"]
    assert "RuleError" in error and "'add'" in error
    assert f"({case.N}, {case.H})" in error and f"({case.H},)" in error
    assert (runs.drop(index="reference")["status"] == "ok").all()

    table = comparison.agreement
    reference = table[table["backend"] == "reference"]
    assert len(reference) and not reference["ok"].any()
    assert reference["error"].str.contains("reference failed: RuleError").all()
    others = table[table["backend"] != "reference"]
    assert set(others["backend"]) == {"jax", "numeric"} and others["ok"].all()
    assert not comparison.all_agree
