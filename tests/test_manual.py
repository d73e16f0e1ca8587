"""The ``manual`` backend: textbook backward passes (``reference/manual.py``) against torch
autograd, the reference tape and JAX on every network and unroll case, in float64 and
float32; skipped where there is no hand-derived backward; a broken derivation is flagged.

Each comparison is one ``compare_backends`` call with torch as the baseline. JAX compiles
every case anew (one to several seconds each), so the default run compares against JAX on
three cases in float64; the whole table, in both dtypes, runs against JAX under ``-m slow``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import reference.manual
from harness import compare_backends
from harness.backends import NotApplicable, get_backend
from harness.cases import CATALOG, Case, select
from harness.cases.networks import ACTIVATIONS

UNROLLS = ("elman", "lstm", "gru")
DTYPES = ("float64", "float32")


def manual_cases() -> list[Case]:
    """Every default-catalog case with a hand-derived backward, each unroll with both
    objectives, the MLP with every activation × objective; adbench_lstm cut to c = 64."""
    cases: list[Case] = []
    for cls in select(None):
        if cls.name == "adbench_lstm":
            cases.append(cls(c=64))
        elif cls.family in UNROLLS:
            cases += [cls(objective="last"), cls(objective="sum")]
        elif cls.family == "mlp":
            cases.append(cls())
    covered = {(c.act, c.objective) for c in cases if c.family == "mlp"}
    cases += [
        CATALOG["mlp"](act=a, objective=o)
        for a in ACTIVATIONS
        for o in ("mse", "xent")
        if (a, o) not in covered
    ]
    return cases


CASES = manual_cases()
# what the default run sends to JAX as well: an MLP, an Elman and an LSTM unroll with the
# per-step objective (every case, adbench_lstm included, under -m slow)
JAX_QUICK = {
    (label, "float64")
    for label in ("mlp_relu_xent", "elman_sigmoid[objective=sum]", "lstm[objective=sum]")
}


def assert_manual_agrees(case: Case, others: list[str], dtype: str = "float64") -> None:
    """manual and ``others`` against torch: every tensor agrees, and manual reports the
    same parameters and taps (names, step counts) as torch."""
    comparison = compare_backends([case], ["torch", "manual", *others], dtype=dtype)
    runs = comparison.runs.set_index("backend")["status"]
    assert (runs == "ok").all(), comparison.runs[["backend", "status", "error"]].to_string()
    rows = comparison.agreement
    bad = rows[~rows["ok"].astype(bool)]
    assert bad.empty, bad[
        ["backend", "tensor", "max_rel_err", "worst_index", "bad_steps"]
    ].to_string()
    torch_result, manual = (r for r in comparison.results if r.backend in ("torch", "manual"))
    assert set(manual.grads) == set(torch_result.grads)
    assert manual.tap_steps == torch_result.tap_steps
    manual_rows = rows[rows["backend"] == "manual"]
    assert set(manual_rows["tensor"]) == {"loss", *torch_result.grads, *torch_result.taps}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_manual_agrees_with_torch_and_the_tape(case, dtype):
    assert_manual_agrees(case, ["reference"], dtype)


@pytest.mark.parametrize(
    "case, dtype",
    [
        pytest.param(c, d, marks=() if (c.label, d) in JAX_QUICK else pytest.mark.slow)
        for d in DTYPES
        for c in CASES
    ],
    ids=lambda x: x.label if isinstance(x, Case) else x,
)
def test_manual_agrees_with_jax(case, dtype):
    assert_manual_agrees(case, ["reference", "jax"], dtype)


@pytest.mark.parametrize("name", ["elman", "lstm", "gru"])
@pytest.mark.slow
def test_manual_agrees_on_a_long_unroll(name):
    assert_manual_agrees(CATALOG[name](T=1000, H=64, objective="sum"), [])


@pytest.mark.parametrize("dtype", DTYPES)
def test_manual_works_in_the_dtype_it_is_given(dtype):
    for case in (
        CATALOG["mlp"](),
        CATALOG["lstm"](),
        CATALOG["gru"](),
        CATALOG["adbench_lstm"](c=8),
    ):
        params, inputs = case.build(0, dtype)
        result = get_backend("manual").gradient(case, params, inputs, dtype)
        for name, array in {**result.grads, **result.taps}.items():
            assert array.dtype == np.dtype(dtype), f"{case.label}: {name} is {array.dtype}"


def test_adbench_taps_the_top_layer_at_every_step():
    case = CATALOG["adbench_lstm"](c=16)
    result = get_backend("manual").gradient(case, *case.build(0), "float64")
    assert result.taps["h"].shape == (15, 14)
    assert result.tap_steps == {"h": 15}


# --- where there is no hand-derived backward ------------------------------------------------


@pytest.mark.parametrize(
    "cls", [c for c in select(None) if c.family == "staged"], ids=lambda c: c.name
)
def test_staged_cases_skip_manual(cls):
    comparison = compare_backends([cls()], ["torch", "manual", "reference"])
    run = comparison.runs.set_index("backend").loc["manual"]
    assert run["status"] == "skipped"
    assert "no hand-derived backward for family 'staged'" in run["error"]
    assert comparison.all_agree  # a skipped backend is not a failure where others compare


def test_a_case_of_a_known_family_with_other_math_is_skipped():
    class Peephole(Case):  # not registered: family "lstm", but not the LSTM case's math
        name, family = "peephole_lstm", "lstm"

    with pytest.raises(NotApplicable, match="peephole_lstm"):
        get_backend("manual").gradient(Peephole(), {}, {}, "float64")


# --- a broken derivation is flagged ---------------------------------------------------------


def wrong_tanh_derivative(monkeypatch):
    wrong = lambda dh, h: dh * (1 - h)  # should be 1 − h²
    monkeypatch.setattr(reference.manual, "tanh_backward", wrong)
    monkeypatch.setitem(reference.manual.ACTIVATIONS, "tanh", (np.tanh, wrong))


def bptt_without_dh_next(monkeypatch):
    step = reference.manual.elman_step_backward
    monkeypatch.setattr(
        reference.manual, "elman_step_backward", lambda *a: (step(*a)[0], np.zeros_like(a[0]))
    )


def lstm_without_dc_next(monkeypatch):
    step = reference.manual.lstm_step_backward
    monkeypatch.setattr(
        reference.manual,
        "lstm_step_backward",
        lambda dh, dc_next, *a: step(dh, np.zeros_like(dc_next), *a),
    )


def gru_without_the_direct_path(monkeypatch):
    step = reference.manual.gru_step_backward  # drop the z ⊙ dh term of dh_{t−1}

    def patched(dh, gates, h_prev, W_h):
        da, dh_prev = step(dh, gates, h_prev, W_h)
        return da, dh_prev - dh * reference.manual.blocks(gates, 3)[0]

    monkeypatch.setattr(reference.manual, "gru_step_backward", patched)


def xent_without_the_mean(monkeypatch):
    backward = reference.manual.softmax_xent_backward
    monkeypatch.setitem(
        reference.manual.LOSSES,
        "xent",
        (reference.manual.softmax_xent_forward, lambda cache: backward(cache) * 16),
    )


def adbench_normaliser_without_its_weights(monkeypatch):
    forward = reference.manual.adbench_lstm_forward

    def patched(*args):
        loss, cache = forward(*args)
        return loss, {**cache, "weights": np.zeros_like(cache["weights"])}

    monkeypatch.setattr(reference.manual, "adbench_lstm_forward", patched)


BROKEN = [
    # (what is broken, case, a tensor that must then disagree)
    (wrong_tanh_derivative, "elman", "W_h"),
    (wrong_tanh_derivative, "lstm", "h"),
    (bptt_without_dh_next, "elman_vanishing", "h"),
    (lstm_without_dc_next, "lstm", "c"),
    (gru_without_the_direct_path, "gru", "h"),
    (xent_without_the_mean, "mlp_relu_xent", "W1"),
    (adbench_normaliser_without_its_weights, "adbench_lstm", "extra"),
]


# compare.py divides by the scale of the broken side too (for odd_one_out), and a step the
# broken backward leaves at exactly 0 overflows that division to inf: "disagrees", as it should
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "breakage, name, tensor", BROKEN, ids=[f"{b.__name__}-{n}" for b, n, _ in BROKEN]
)
def test_a_broken_derivation_is_flagged(monkeypatch, breakage, name, tensor):
    breakage(monkeypatch)
    case = CATALOG[name](c=16) if name == "adbench_lstm" else CATALOG[name]()
    comparison = compare_backends([case], ["torch", "manual", "reference"])
    assert not comparison.all_agree
    rows = comparison.agreement.set_index(["backend", "tensor"])
    assert not rows.loc[("manual", tensor), "ok"]
    assert rows.loc[("manual", tensor), "odd_one_out"] == "manual"
    assert rows.loc["reference", "ok"].all()  # torch and the tape still agree


# --- the layout rule ------------------------------------------------------------------------


def test_reference_manual_imports_numpy_only():
    tree = ast.parse(Path(reference.manual.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." if node.level else (node.module or "").split(".")[0])
    assert imported - {"typing", "collections"} == {"numpy"}  # and type hints


def test_mlp_backward_can_skip_the_input_gradient():
    """input_grad=False drops dL/dX (one matrix product) and changes no parameter gradient."""
    import numpy as np

    import reference.manual
    from harness.cases import CATALOG

    case = CATALOG["mlp"]()
    params, inputs = case.build(0)
    _, cache = reference.manual.mlp_forward(
        params, inputs["X"], inputs["Y"], case.act, case.objective
    )
    full, taps = reference.manual.mlp_backward(cache)
    lean, lean_taps = reference.manual.mlp_backward(cache, input_grad=False)
    assert lean_taps[0] is None and taps[0] is not None
    for name in full:
        np.testing.assert_array_equal(lean[name], full[name])
