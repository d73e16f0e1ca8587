"""Every case through every backend along one comparison path, the card examples against
their closed forms, and what a Case promises: taps, seeds and options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import compare_backends
from harness.backends import get_backend
from harness.cases import CATALOG, Case, CaseError
from harness.namespace import Namespace, TapError

ALL_BACKENDS = ["reference", "torch", "jax", "numeric"]
# Every case in the catalog, one param each. The core's staged cases run in the default
# suite; the networks and unrolls (3 to 30 s each through four backends) run in the slow job.
CASES = [
    pytest.param(name, marks=[] if cls.family == "staged" and not cls.slow else [pytest.mark.slow])
    for name, cls in CATALOG.items()
]


def failing_rows(table: pd.DataFrame) -> str:
    bad = table[~table["ok"].astype(bool)]
    return "\n".join(
        f"  {r.case}: {r.kind} {r.tensor!r}, {r.backend} vs {r.baseline}: "
        f"max_rel_err={r.max_rel_err:.3g}, worst_index={r.worst_index} {r.error or ''}"
        for r in bad.itertuples()
    )


def assert_all_agree(name: str, backends: list[str], dtype: str) -> None:
    comparison = compare_backends([name], ["torch", *backends], dtype=dtype, baseline="torch")
    table, runs = comparison.agreement, comparison.runs
    assert (runs["status"] == "ok").all(), runs[["backend", "status", "error"]].to_string()
    assert set(table["baseline"]) == {"torch"}
    assert set(table["backend"]) == set(backends)
    tensors = {b: set(zip(t["kind"], t["tensor"])) for b, t in table.groupby("backend")}
    params, _ = CATALOG[name]().build(0)
    for backend, keys in tensors.items():  # the same tensors from everyone: loss, every param
        assert keys == tensors[backends[0]], f"{backend} reports other tensors than {backends[0]}"
        assert {("loss", "loss")} | {("param", p) for p in params} <= keys
    autodiff = table[table["backend"] != "numeric"]
    assert autodiff["ok"].all(), f"{name} ({dtype}) disagrees:\n{failing_rows(autodiff)}"
    # finite differences may not resolve a vanishing gradient's first steps: inconclusive
    # there (never passed), and never a disagreement
    numeric = table[table["backend"] == "numeric"]
    assert numeric["verdict"].isin(["agree", "inconclusive"]).all(), failing_rows(numeric)
    assert set(numeric.loc[numeric["verdict"] == "inconclusive", "kind"]) <= {"tap"}


@pytest.mark.parametrize("name", CASES)
def test_every_backend_agrees_with_torch_in_float64(name):
    assert_all_agree(name, ["reference", "jax", "numeric"], "float64")


@pytest.mark.parametrize("name", CASES)
def test_every_autodiff_backend_agrees_with_torch_in_float32(name):
    assert_all_agree(name, ["reference", "jax"], "float32")


# --- the card's examples against their closed forms ----------------------------------------


def affine_square(params, inputs):
    """u = 3x + 1, L = Σ u²: dL/dx = 2u·3, dL/du = 2u."""
    u = 3 * params["x"] + 1
    return {("loss", "loss"): np.sum(u**2), ("param", "x"): 2 * u * 3, ("tap", "u"): 2 * u}


def sigmoid_unit(params, inputs):
    """a = Xw + b, z = σ(a), L = Σ (z − t)² / 2N: dL/dz = (z − t)/N, dL/da = dL/dz·z(1 − z),
    dL/dw = Xᵀ dL/da, dL/db = Σ_n dL/da_n."""
    X, t, w, b = inputs["X"], inputs["t"], params["w"], params["b"]
    n = len(t)
    a = X @ w + b
    z = 1 / (1 + np.exp(-a))
    dL_dz = (z - t) / n
    dL_da = dL_dz * z * (1 - z)
    return {
        ("loss", "loss"): np.sum((z - t) ** 2) / (2 * n),
        ("param", "w"): X.T @ dL_da,
        ("param", "b"): np.sum(dL_da),
        ("tap", "a"): dL_da,
        ("tap", "z"): dL_dz,
    }


CLOSED_FORMS = {"card_affine_square": affine_square, "card_sigmoid_unit": sigmoid_unit}
# Autodiff and the closed form are the same float64 arithmetic in another order: a few ε.
# Finite differences: the stencil's error on these low-degree functions is ≲ 1e-10 relative.
CLOSED_FORM_RTOL = {"reference": 1e-12, "torch": 1e-12, "jax": 1e-12, "numeric": 1e-8}


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_card_example_matches_its_closed_form(name, backend):
    case = CATALOG[name]()
    params, inputs = case.build(seed=7)
    expected = CLOSED_FORMS[name](params, inputs)
    result = get_backend(backend).gradient(
        case,
        {k: v.copy() for k, v in params.items()},
        {k: v.copy() for k, v in inputs.items()},
        "float64",
    )
    assert result.ok, result.error
    got = result.tensors()
    assert set(got) == set(expected)
    for key, value in expected.items():
        scale = np.max(np.abs(value))
        err = np.max(np.abs(np.asarray(got[key]) - value))
        assert err <= CLOSED_FORM_RTOL[backend] * scale, (
            f"{name} {key} from {backend}: err {err:.3g}"
        )


# --- taps ----------------------------------------------------------------------------------


class TapTwice(Case):
    """h = tanh(x), L = Σ h², with both h and h² tapped under the name "h" (an error)."""

    name, family = "tap_twice", "test"

    def setup(self, rng):
        return {"x": rng.standard_normal(3)}, {}

    def loss(self, ops, p, inputs):
        h = ops.tap("h", ops.tanh(p["x"]))
        return ops.sum(ops.tap("h", h * h))


class LinearScan(Case):
    """c_t = a ⊙ c_{t−1} + x_t for t = 1..T (c_0 = 0), each c_t tapped as "c"; L = Σ_i c_T,i.
    Closed form: dL/dc_t = a^(T−t);  dL/da = Σ_t a^(T−t) ⊙ c_{t−1}."""

    name, family = "linear_scan", "test"
    options = {"T": 5, "n": 3}

    def setup(self, rng):
        return {"a": rng.uniform(0.5, 1.5, self.n)}, {"x": rng.standard_normal((self.T, self.n))}

    def loss(self, ops, p, inputs):
        def step(c, x_t):
            return ops.tap("c", p["a"] * c + x_t), None

        c_T, _ = ops.scan(step, 0 * p["a"], inputs["x"])
        return ops.sum(c_T)


def test_a_tap_name_used_twice_is_an_error():
    ops = Namespace()
    ops.tap("h", 1.0)
    with pytest.raises(TapError, match="'h'"):
        ops.tap("h", 2.0)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_every_backend_refuses_a_duplicate_tap_name(backend):
    case = TapTwice()
    params, inputs = case.build(0)
    with pytest.raises(TapError, match="'h'"):
        get_backend(backend).gradient(case, params, inputs, "float64")


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_a_tap_inside_scan_is_stacked_along_the_steps(backend):
    case = LinearScan()
    params, inputs = case.build(3)
    a, x = params["a"], inputs["x"]
    T = len(x)
    dL_dc = np.stack([a ** (T - 1 - t) for t in range(T)])  # row t holds dL/dc_{t+1}
    c = np.zeros_like(a)
    dL_da = np.zeros_like(a)
    for t in range(T):  # c_{t+1} = a c_t + x_t contributes dL/dc_{t+1} ⊙ c_t
        dL_da += dL_dc[t] * c
        c = a * c + x[t]
    result = get_backend(backend).gradient(case, params, inputs, "float64")
    assert result.tap_steps["c"] == T
    assert result.taps["c"].shape == (T, len(a))
    rtol = 1e-8 if backend == "numeric" else 1e-12  # FD on a polynomial; autodiff: rounding
    np.testing.assert_allclose(result.taps["c"], dL_dc, rtol=rtol)
    np.testing.assert_allclose(result.grads["a"], dL_da, rtol=rtol)
    np.testing.assert_allclose(result.loss, np.sum(c), rtol=1e-12)


# --- seeds and options ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CATALOG))
def test_the_same_seed_builds_identical_arrays(name):
    case = CATALOG[name]()
    first, again = case.build(5), case.build(5)
    for part, part_again in zip(first, again):
        assert list(part) == list(part_again)
        for key in part:
            assert part[key].dtype == part_again[key].dtype
            assert part[key].tobytes() == part_again[key].tobytes(), f"{name}: {key} differs"


@pytest.mark.parametrize("name", [n for n, c in CATALOG.items() if c.family == "staged"])
def test_another_seed_draws_other_parameters(name):
    params, other = CATALOG[name]().build(5)[0], CATALOG[name]().build(6)[0]
    assert all(not np.array_equal(params[k], other[k]) for k in params)


def test_the_same_seed_gives_an_identical_agreement_table():
    tables = [
        compare_backends(
            ["card_sigmoid_unit"], ["torch", "reference", "numeric"], seed=11
        ).agreement.to_csv(index=False)
        for _ in range(2)
    ]
    assert tables[0] == tables[1]


def test_an_option_overrides_its_default():
    case = CATALOG["card_affine_square"](n=50)
    params, _ = case.build(0)
    assert params["x"].shape == (50,)
    assert case.label == "card_affine_square[n=50]"
    assert CATALOG["card_affine_square"](n="50").n == 50  # from the command line, as text
    table = compare_backends([case], ["torch", "reference"]).agreement
    assert set(table["case"]) == {"card_affine_square[n=50]"}
    assert table.set_index("tensor").loc["x", "shape"] == "(50,)"
    assert table["ok"].all(), failing_rows(table)


def test_an_unknown_option_is_an_error_listing_the_options():
    with pytest.raises(CaseError, match=r"'card_affine_square'.*nosuch.*n=5"):
        CATALOG["card_affine_square"](nosuch=3)


def test_an_option_of_the_wrong_type_is_an_error_in_english():
    with pytest.raises(
        CaseError, match=r"option n='many' is not a whole number; n takes a whole number ≥ 1"
    ):
        CATALOG["card_affine_square"](n="many")
    with pytest.raises(CaseError, match=r"sigma='x' is not a number"):
        CATALOG["elman"](sigma="x")
    with pytest.raises(CaseError, match=r"T=2.5 is not a whole number"):
        CATALOG["elman"](T=2.5)
    assert CATALOG["elman"](T=5.0).T == 5 and CATALOG["elman"](sigma=1).sigma == 1.0


@pytest.mark.parametrize(
    ("name", "key", "value", "takes"),
    [
        ("elman", "T", "-1", "a whole number ≥ 1"),
        ("elman", "T", "0", "a whole number ≥ 1"),
        ("lstm", "H", "-3", "a whole number ≥ 1"),
        ("mlp", "depth", "0", "a whole number ≥ 1"),
        ("elman", "sigma", "-0.5", "a number ≥ 0"),
        ("elman", "sigma", "nan", "a number ≥ 0"),
        ("mlp", "act", "gelu", "one of 'tanh', 'sigmoid', 'relu'"),
        ("adbench_lstm", "c", "1", "a whole number ≥ 2"),
    ],
)
def test_an_option_out_of_its_range_names_case_option_value_and_range(name, key, value, takes):
    with pytest.raises(CaseError) as caught:
        CATALOG[name](**{key: value})
    message = str(caught.value)
    assert f"case {name!r}" in message and f"{key}=" in message and value.strip("'") in message
    assert message.endswith(f"{key} takes {takes}")


def test_every_catalog_option_declares_what_it_takes_and_its_default_is_admitted():
    for name, cls in CATALOG.items():
        assert set(cls.allowed) == set(cls.options), (
            f"{name}: undeclared {set(cls.options) - set(cls.allowed)}"
        )
        for key, default in cls.options.items():
            assert cls.allowed[key].admits(default), f"{name}: default {key}={default!r}"


def test_a_catalog_case_travels_as_its_name_and_options():
    from harness.cases.base import catalog_spec, rebuild

    case = CATALOG["lstm"](T=3)
    again = rebuild(catalog_spec(case))
    assert (type(again), again.cfg) == (type(case), case.cfg)

    class Mine(type(case)):  # not the catalog's class under that name: it cannot travel
        pass

    assert catalog_spec(Mine()) is None


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("ellman", "elman"), ("mpl", "mlp"), ("card_afine_square", "card_affine_square")],
)
def test_a_case_name_typo_is_answered_with_the_nearest_names(typo, meant):
    from harness.cases.base import CaseError, select

    with pytest.raises(CaseError, match=rf"did you mean '{meant}'"):
        select([typo])


def test_a_pattern_near_no_name_gets_no_suggestion():
    from harness.cases.base import CaseError, select

    with pytest.raises(CaseError) as e:
        select(["zzzzzz"])
    assert "did you mean" not in str(e.value)
