"""Unrolls through xp.scan, per-step agreement, and finite differences at scale."""

from __future__ import annotations

import numpy as np
import pytest

from harness import compare_backends
from harness.backends import REGISTRY
from harness.backends.torch_autograd import TorchBackend, TorchNamespace
from harness.cases import CATALOG
from harness.cli import main


class TruncatedOps(TorchNamespace):
    """A BPTT that silently stops k steps back: the carry is detached k steps before T."""

    keep = 10

    def __init__(self) -> None:
        super().__init__()
        self.t = -1

    def scan(self, step, init, xs=None, length=None):
        T = length or len(xs[0])

        def cut(carry, x_t):
            self.t += 1
            if self.t == T - self.keep:
                carry = (
                    carry.detach() if hasattr(carry, "detach") else tuple(c.detach() for c in carry)
                )
            return step(carry, x_t)

        return super().scan(cut, init, xs, length)


class TruncatedBackend(TorchBackend):
    name = "truncated"

    def gradient(self, case, params, inputs, dtype):
        import harness.backends.torch_autograd as module

        original = module.TorchNamespace
        module.TorchNamespace = TruncatedOps
        try:
            return super().gradient(case, params, inputs, dtype)
        finally:
            module.TorchNamespace = original


@pytest.fixture
def truncated(monkeypatch):
    monkeypatch.setitem(REGISTRY, "truncated", (__name__, "TruncatedBackend"))


def test_truncated_bptt_is_flagged_where_the_true_gradient_is_below_1e_20(truncated):
    """T = 120, σ_max = 0.6: dL/dh_t decays below 1e-20 long before t = 0. Each step is
    judged against its own scale, so the steps whose gradient the truncation lost (all t
    < T − 10, where it returns exact zeros) are flagged, tiny as they are."""
    case = CATALOG["elman"](T=120, sigma=0.6)
    comparison = compare_backends([case], ["truncated", "reference"], baseline="reference")
    m = comparison.magnitudes
    true = m[(m.backend == "reference") & (m.tap == "h")].sort_values("step")["norm"].to_numpy()
    assert true[0] < 1e-20 < true[-1]
    row = comparison.agreement.set_index(["backend", "kind", "tensor"]).loc[
        ("truncated", "tap", "h")
    ]
    assert not row["ok"]
    assert row["bad_steps"] == "0-109"
    assert row["n_bad"] == 110 * case.B * case.H


def test_intact_bptt_agrees_at_every_step_even_at_1e_40():
    case = CATALOG["elman"](T=150, sigma=0.5)
    comparison = compare_backends([case], ["reference", "torch", "jax"])
    m = comparison.magnitudes
    assert m[(m.backend == "torch") & (m.step == 0)]["norm"].iloc[0] < 1e-40
    assert comparison.all_agree, comparison.agreement.query("not ok")


def test_jax_unroll_is_one_lax_scan():
    """The unroll reaches JAX as a single scan primitive (so compile time cannot grow with T)."""
    import jax

    from harness.backends.jax_grad import JaxNamespace

    case = CATALOG["lstm"](T=200)
    params, inputs = case.build(0)
    with jax.enable_x64(True):
        jaxpr = jax.make_jaxpr(lambda p: case.loss(JaxNamespace(), p, inputs))(params)
    names = [eqn.primitive.name for eqn in jaxpr.jaxpr.eqns]
    assert names.count("scan") == 1
    assert len(names) < 40  # the 200 steps are not unrolled into the graph


def test_large_cases_use_directional_finite_differences_and_say_so():
    comparison = compare_backends(["mlp_deep_glorot"], ["torch", "numeric"])
    runs = comparison.runs.set_index("backend")
    assert runs.loc["numeric", "method"] == "directional"
    rows = comparison.agreement[comparison.agreement.backend == "numeric"]
    assert rows["ok"].all()
    params = rows[rows.kind == "param"]
    assert params["worst_index"].str.startswith("direction ").all()
    assert (params["n_elements"] == 3).all()


def test_directional_check_catches_a_wrong_gradient(monkeypatch):
    """Scale one weight gradient by 1.01: a 1% error is far outside the directional
    tolerance (rtol 1e-7 plus the stencil's own error estimate)."""
    from harness import finite_differences

    comparison = compare_backends(["mlp_deep_glorot"], ["torch", "numeric"])
    torch_result = next(r for r in comparison.results if r.backend == "torch")
    torch_result.grads["W3"] = torch_result.grads["W3"] * 1.01
    from harness.compare import agreement

    table = agreement(comparison.results).set_index(["backend", "tensor"])
    assert not table.loc[("numeric", "W3"), "ok"]
    assert table.loc[("numeric", "W2"), "ok"]
    assert finite_differences.DIRECTIONS == 3


def test_small_unrolls_keep_the_per_element_check():
    """Element by element, finite differences resolve every parameter; dL/dh_t at the
    first steps (0.4 per step back over 30 steps: ~1e-12 of the last) is below their
    error estimate, so tap h is inconclusive there, not passed, and the run still passes."""
    comparison = compare_backends(["elman"], ["torch", "numeric"])
    assert comparison.runs.set_index("backend").loc["numeric", "method"] == "elementwise"
    verdicts = comparison.agreement.set_index("tensor")["verdict"]
    assert verdicts.drop("h").eq("agree").all() and verdicts["h"] == "inconclusive"
    row = comparison.agreement.set_index("tensor").loc["h"]
    assert "at steps 0-" in row["reason"] and row["n_bad"] == 0
    assert comparison.exit_code == 0 and not comparison.all_agree


@pytest.mark.parametrize("name", ["elman", "lstm", "gru"])
@pytest.mark.parametrize("objective", ["last", "sum"])
def test_unrolls_agree_with_both_objectives(name, objective):
    case = CATALOG[name](T=12, objective=objective)
    comparison = compare_backends([case], ["reference", "torch", "jax", "numeric"])
    assert comparison.all_agree, comparison.agreement.query("not ok").to_string()


def test_adbench_lstm_matches_the_published_objective_and_gradient():
    """ADBench's tests expect 0.66666518 (tolerance 1e-8) and a 266-element gradient: torch,
    the tape and the hand-derived backward each match them."""
    from harness.cases.adbench import golden as published

    golden = published()
    comparison = compare_backends(["adbench_lstm"], ["torch", "reference", "manual"])
    for result in comparison.results:
        assert abs(result.loss - golden["objective"]) < golden["tolerance"]
        grad = np.concatenate([result.grads["main"].ravel(), result.grads["extra"].ravel()])
        np.testing.assert_allclose(grad, golden["gradient"], rtol=1e-10, atol=1e-14)


def test_cli_sizes_a_case_with_set(capsys):
    assert (
        main(
            [
                "run",
                "--case",
                "lstm",
                "--set",
                "T=15",
                "--set",
                "H=3",
                "--backend",
                "torch",
                "--backend",
                "reference",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "lstm[T=15,H=3]" in out
    assert main(["describe", "lstm", "--set", "T=15"]) == 0
    out = capsys.readouterr().out
    assert "T=15 (default 30)" in out and "h[3] × 15 steps" not in out and "× 15 steps" in out


@pytest.mark.slow
def test_lstm_T1000_H64_agrees_on_every_backend():
    case = CATALOG["lstm"](T=1000, H=64)
    comparison = compare_backends([case], ["reference", "torch", "jax", "numeric"])
    assert comparison.all_agree, comparison.agreement.query("not ok").to_string()
    assert comparison.runs.set_index("backend").loc["numeric", "method"] == "directional"


@pytest.mark.slow
def test_elman_T1000_agrees_where_jax_flushes_subnormals_to_zero():
    """σ = 1, T = 1000: dL/dh_t reaches float64's underflow; torch keeps 9.7e-308 where
    XLA has flushed a subnormal term to 0. Both are right at that size (harness.tolerances)."""
    case = CATALOG["elman"](T=1000, H=64, sigma=1.0)
    comparison = compare_backends([case], ["reference", "manual", "torch", "jax"])
    assert comparison.all_agree, comparison.agreement.query("not ok").to_string()
    m = comparison.magnitudes
    assert (m[(m.backend == "jax") & (m.tap == "h")]["norm"] == 0).any()
