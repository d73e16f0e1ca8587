"""Forward mode and H·v through the harness (``harness.modes``): every backend's JVP and
H·v on the cases, their comparison, the identities that tie each backend's modes
together, the command line, the report and the plug-ins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import compare_backends, validate
from harness.backends import get_backend
from harness.backends.reference_tape import ReferenceBackend
from harness.cases import CATALOG
from harness.cli import main
from harness.modes import NO_SECOND, UnknownMode, direction, dot, judge, parse_modes, symmetry

SMALL = {
    "mlp": dict(depth=3, width=5, D=4, C=3, N=6),
    "elman": dict(T=6, H=4, D=3, B=2),
    "lstm": dict(T=5, H=3, D=2, B=2),
    "gru": dict(T=5, H=3, D=2, B=2),
    "every_primitive": {},
    "deep_chain": dict(K=8, n=4),
}
ALL = ["reference", "manual", "torch", "jax", "numeric"]


def small(name):
    return CATALOG[name](**SMALL.get(name, {}))


# --- the modes and the directions -------------------------------------------------------------


def test_modes_parse_in_a_fixed_order_and_default_to_rev():
    assert parse_modes(None) == ("rev",)
    assert parse_modes(["hvp,fwd", "rev"]) == ("rev", "fwd", "hvp")
    with pytest.raises(UnknownMode, match="no mode 'bwd'; modes: rev, fwd, hvp"):
        parse_modes(["fwd,bwd"])


def test_a_direction_is_seeded_by_case_and_seed_unit_norm_in_the_params_dtype():
    params = {"W": np.zeros((3, 4), np.float32), "b": np.zeros(4, np.float32)}
    u = direction("mlp", 0, params, "u")
    assert all(u[k].dtype == np.float32 and u[k].shape == params[k].shape for k in params)
    assert dot(u, u)[0] == pytest.approx(1.0, rel=1e-6)
    again, other = direction("mlp", 0, params, "u"), direction("mlp", 1, params, "u")
    assert all(np.array_equal(u[k], again[k]) for k in params)
    assert not np.array_equal(u["W"], other["W"])
    assert not np.array_equal(u["W"], direction("mlp", 0, params, "v")["W"])


# --- every backend, every mode ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(SMALL))
def test_every_backend_agrees_in_forward_mode_and_on_hvp(name):
    comparison = compare_backends([small(name)], ALL, modes=["fwd", "hvp"])
    table = comparison.agreement
    assert set(table["mode"]) == {"fwd", "hvp"}
    assert table["ok"].all(), table.loc[~table["ok"], ["mode", "tensor", "backend", "reason"]]
    assert comparison.identities["ok"].all() and len(comparison.identities) >= 4
    assert comparison.exit_code == 0
    fwd = table[table["mode"] == "fwd"]
    assert "loss" in set(fwd["tensor"]) and (fwd["kind"] == "tap").any()  # J_L·u and the taps
    hvp = table[table["mode"] == "hvp"]
    assert set(hvp["kind"]) == {"param"}


def test_forward_mode_tangents_are_what_the_definition_says():
    # J_L·u = ⟨∇L, u⟩ (from torch's reverse mode), and a tap's tangent is the difference
    # quotient of the tapped value along u: checked here against neither backend's code
    case = small("elman")
    params, inputs = case.build(0)
    u = direction(case.label, 0, params, "u")
    torch = get_backend("torch")
    fwd = torch.jvp(case, params, inputs, "float64", u)
    rev = torch.gradient(case, params, inputs, "float64")
    assert fwd.tangent == pytest.approx(dot(rev.grads, u)[0], rel=1e-12)
    from harness.backends.numeric import NumpyNamespace

    def h_at(t):
        ops = NumpyNamespace()
        case.loss(ops, {k: params[k] + t * u[k] for k in params}, inputs)
        return np.stack(ops.values["h"])

    quotient = (h_at(1e-6) - h_at(-1e-6)) / 2e-6
    assert np.allclose(fwd.taps["h"], quotient, rtol=1e-6, atol=1e-9)


def test_hvp_is_the_hessian_times_v_on_a_quadratic():
    # L = ½ xᵀ A x (card_affine_square is ½‖a x + b‖²-like): H·v checked against the
    # Hessian itself, built column by column from torch's H·e_i, symmetric, and by the
    # finite differences of the tape's gradient
    case = CATALOG["card_affine_square"]()
    params, inputs = case.build(0)
    (name,) = [k for k in params if params[k].ndim == 1]
    v = direction(case.label, 0, params, "v")
    torch = get_backend("torch")
    n = params[name].size
    columns = []
    for i in range(n):
        e = {k: np.zeros_like(p) for k, p in params.items()}
        e[name][i] = 1.0
        columns.append(torch.hvp(case, params, inputs, "float64", e).grads[name])
    H = np.stack(columns, axis=1)
    assert np.allclose(H, H.T, atol=1e-14)
    hv = get_backend("numeric").hvp(case, params, inputs, "float64", v).grads[name]
    assert np.allclose(hv, H @ v[name], rtol=1e-8, atol=1e-10)


def test_manual_forward_mode_is_derived_for_mlp_and_elman_only():
    mlp, lstm = small("mlp"), small("lstm")
    comparison = compare_backends([mlp, lstm], ["torch", "manual"], modes=["fwd"])
    runs = comparison.runs.set_index(["case", "backend"])
    assert runs.loc[(mlp.label, "manual"), "status"] == "ok"
    assert runs.loc[(lstm.label, "manual"), "status"] == "skipped"
    assert "no hand-derived forward mode" in runs.loc[(lstm.label, "manual"), "error"]


def test_the_default_run_is_reverse_mode_alone():
    comparison = compare_backends([small("mlp")], ["torch", "reference"])
    assert set(comparison.agreement["mode"]) == {"rev"} and comparison.identities.empty
    assert set(comparison.runs["mode"]) == {"rev"}


def test_processes_give_the_same_tables_in_every_mode():
    cases = [small("mlp"), small("elman")]
    one = compare_backends(cases, ["torch", "reference", "jax"], modes=["fwd", "hvp"])
    two = compare_backends(cases, ["torch", "reference", "jax"], modes=["fwd", "hvp"], jobs=2)
    columns = ["case", "mode", "tensor", "backend", "verdict", "max_abs_err"]
    pd.testing.assert_frame_equal(one.agreement[columns], two.agreement[columns])
    pd.testing.assert_frame_equal(one.identities, two.identities)


def test_the_noise_floor_is_measured_in_every_mode():
    comparison = compare_backends([small("elman")], ["torch", "reference"], modes=["fwd", "hvp"])
    rows = comparison.agreement
    assert rows["noise_floor"].notna().all() and (rows["noise_floor"] > 0).all()


# --- relu: no second derivative at the kinks --------------------------------------------------


def test_hvp_on_a_loss_with_kinks_is_marked_not_failed(tmp_path):
    from harness.report.document import case_section
    from harness.report.render import to_markdown

    case = CATALOG["mlp_relu_xent"](depth=3, width=5, D=4, C=3, N=6)
    comparison = compare_backends([case], ["torch", "reference", "numeric"], modes=["hvp"])
    runs = comparison.runs.set_index("backend")
    assert runs.loc["numeric", "status"] == "skipped" and runs.loc["numeric", "error"] == NO_SECOND
    rows = comparison.agreement
    assert rows["reason"].str.contains("marked: " + NO_SECOND, regex=False).all()
    assert comparison.row_facts["kinked"].all() and not comparison.row_facts["run_failed"].any()
    text = to_markdown(case_section(comparison, case, pd.DataFrame(), tmp_path))
    assert f"(hvp) {len(rows)} rows marked: {NO_SECOND}" in text
    assert comparison.exit_code == 0
    smooth = compare_backends([small("elman")], ["torch", "reference"], modes=["hvp"])
    assert len(smooth.row_facts) and not smooth.row_facts["kinked"].any()


def test_a_kinked_hvp_whose_backends_part_is_inconclusive_not_a_failure():
    class Parting(ReferenceBackend):
        name = "parting"

        def hvp(self, case, params, inputs, dtype, vector):
            r = super().hvp(case, params, inputs, dtype, vector)
            r.grads = {k: g + 1e-3 for k, g in r.grads.items()}
            return r

    case = CATALOG["mlp_relu_xent"](depth=3, width=5, D=4, C=3, N=6)
    table = compare_backends([case], ["torch", Parting()], modes=["hvp"]).agreement
    assert set(table["verdict"]) == {"inconclusive"} and not table["ok"].any()
    assert table["reason"].str.contains("the backends part here").all()


# --- the identities, and a backend that breaks them ------------------------------------------


class ForwardOffByOnePercent(ReferenceBackend):
    """Its forward mode is 1% off; its reverse mode is right."""

    name = "fwd-broken"

    def jvp(self, case, params, inputs, dtype, tangent):
        r = super().jvp(case, params, inputs, dtype, tangent)
        r.tangent *= 1.01
        return r


class NonSymmetricHessian(ReferenceBackend):
    """Its H·v adds a shift of v: the operator it applies is not symmetric."""

    name = "hvp-broken"

    def hvp(self, case, params, inputs, dtype, vector):
        r = super().hvp(case, params, inputs, dtype, vector)
        r.grads = {k: g + 0.1 * np.roll(vector[k], 1) for k, g in r.grads.items()}
        return r


def test_a_forward_mode_that_disagrees_with_its_own_reverse_mode_is_named():
    comparison = compare_backends(
        [small("mlp")], ["torch", ForwardOffByOnePercent()], modes=["fwd"]
    )
    ids = comparison.identities.set_index("backend")
    assert ids.loc["torch", "verdict"] == "agree"
    assert ids.loc["fwd-broken", "verdict"] == "disagree"
    lhs, rhs = ids.loc["fwd-broken", "lhs"], ids.loc["fwd-broken", "rhs"]
    assert lhs == pytest.approx(1.01 * rhs, rel=1e-12)  # J_L·u against its own ⟨∇L, u⟩
    assert ids.loc["fwd-broken", "rel_err"] > 1e4 * ids.loc["fwd-broken", "rtol"]
    assert "fwd-broken's J_L·u (fwd)" in ids.loc["fwd-broken", "reason"]
    assert comparison.exit_code == 1


def test_an_hvp_that_is_not_symmetric_breaks_the_symmetry_identity():
    comparison = compare_backends([small("elman")], ["torch", NonSymmetricHessian()], modes=["hvp"])
    ids = comparison.identities.set_index("backend")
    assert ids.loc["torch", "ok"] and not ids.loc["hvp-broken", "ok"]
    assert ids.loc["hvp-broken", "identity"] == "symmetry"
    assert comparison.exit_code == 1


def test_an_identity_holds_to_rounding_and_no_further():
    v = {"a": np.array([1.0, -2.0, 3.0])}
    w = {"a": np.array([0.5, 0.25, -1.0])}
    H = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 1.0]])
    exact = symmetry({"a": H @ v["a"]}, {"a": H @ w["a"]}, v, w)
    assert judge(exact, "float64")["ok"]
    skew = H + 1e-8 * np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    off = symmetry({"a": skew @ v["a"]}, {"a": skew @ w["a"]}, v, w)
    assert abs(off.lhs - off.rhs) == pytest.approx(2.5e-8, rel=1e-6)  # 2·wᵀAv, A antisymmetric
    assert not judge(off, "float64")["ok"]  # 2.5e-8 of ~10: far above rounding
    assert judge(off, "float32")["ok"]  # and below float32's


# --- the command line and the report ----------------------------------------------------------


def test_run_takes_modes_and_prints_them_with_the_identities(capsys, tmp_path):
    csv = tmp_path / "a.csv"
    code = main(
        [
            "run",
            "--case",
            "mlp",
            "--set",
            "depth=2",
            "--backend",
            "reference",
            "--backend",
            "torch",
            "--mode",
            "fwd",
            "--mode",
            "hvp",
            "--csv",
            str(csv),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "fwd" in out and "hvp" in out and "identities: 2 transpose, 2 symmetry held" in out
    table = pd.read_csv(csv)
    assert list(table.columns[:3]) == ["case", "mode", "kind"]
    assert set(table["mode"]) == {"fwd", "hvp"}


def test_an_unknown_mode_is_a_usage_error_naming_the_modes(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--case", "mlp", "--mode", "forward"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "no mode 'forward'; modes: rev, fwd, hvp" in err and "Traceback" not in err


def test_a_broken_identity_fails_the_run_and_the_console_names_the_backend(capsys):
    from harness.console import findings, verdict_line

    comparison = compare_backends(
        [small("mlp")], ["torch", ForwardOffByOnePercent()], modes=["fwd"]
    )
    text = "\n".join(findings(comparison))
    assert "transpose identity broken — fwd-broken's J_L·u (fwd)" in text
    assert "1 broken identity over 1 case (float64)" in verdict_line(comparison, 1, "float64")


def test_the_report_has_the_modes_section_and_identities_csv(tmp_path):
    code = main(
        [
            "report",
            "--case",
            "elman",
            "--set",
            "T=4",
            "--backend",
            "reference",
            "--backend",
            "torch",
            "--mode",
            "rev,fwd,hvp",
            "--out",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert code == 0
    md = (tmp_path / "report.md").read_text()
    assert "## Forward mode and second order" in md
    assert "reference vs torch (fwd)" in md and "reference vs torch (hvp)" in md
    ids = pd.read_csv(tmp_path / "identities.csv")
    assert set(ids["identity"]) == {"transpose", "symmetry"} and ids["ok"].all()
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert set(runs["mode"]) == {"rev", "fwd", "hvp"}


# --- plug-ins ---------------------------------------------------------------------------------


MLP_CASE = ["--case", "mlp", *sum([["--set", f"{k}={v}"] for k, v in SMALL["mlp"].items()], [])]
REFS = ["--reference", "reference", "--reference", "torch"]


@pytest.mark.parametrize("target, modes", [
    ("examples/model_mlp.py:jvp", "fwd"),
    ("examples/model_mlp.py:hvp", "hvp"),
    ("examples/model_mlp.py:model", "rev,fwd,hvp"),
])  # fmt: skip
def test_the_example_jvp_and_hvp_validate(target, modes, capsys):
    code = main(["validate", target, *MLP_CASE, *REFS, "--mode", modes, "--no-isolation"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "AGREES" in out


def test_forward_mode_from_a_form_without_one_is_skipped_with_the_reason():
    v = validate(
        "examples/engine_tiny.py:TinyEngine",
        form="engine",
        cases=[small("mlp")],
        references=["reference"],
        modes=["fwd"],
        isolate=False,
    )
    (row,) = v.comparison.runs[v.comparison.runs["backend"] == v.plugin].itertuples()
    assert row.status == "skipped" and "the engine form has no forward mode" in row.error


def test_a_plain_function_serves_only_the_one_mode_asked_for():
    v = validate(
        "examples/model_mlp.py:grads",
        cases=[small("mlp")],
        references=["reference"],
        modes=["rev", "fwd"],
        isolate=False,
    )
    runs = v.comparison.runs.set_index(["mode", "backend"])
    assert runs.loc[("fwd", "plugin:grads"), "status"] == "skipped"
    assert "supplies no forward mode" in runs.loc[("fwd", "plugin:grads"), "error"]
    # forward mode was asked for and compared with nothing: no success, as with --mode fwd
    # alone, and its gradients' agreement is no claim about forward mode
    assert not v.ok and v.verdict == "mode not compared" and v.modes_not_compared == ["fwd"]
    assert "(fwd)" not in v.text().split("agree with the references")[-1].splitlines()[0]


def test_a_mode_asked_for_that_the_plug_in_never_answers_fails_the_command(capsys):
    code = main(
        ["validate", "examples/model_mlp.py:grads", *MLP_CASE, *REFS, "--mode", "rev,fwd,hvp",
         "--no-isolation"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1, out
    assert "MODE NOT COMPARED" in out and "AGREES" not in out.splitlines()[-1]


def jvp_without_loss(params, inputs, tangent):
    return {"taps": {}}


def jvp_inconsistent(params, inputs, tangent, case):
    """A JVP that agrees with nobody: 2 × the true J_L·u."""
    import reference.manual

    loss, dloss, _ = reference.manual.mlp_jvp(
        params, tangent, inputs["X"], inputs["Y"], case.act, case.objective
    )
    return {"loss": 2 * dloss}


def test_a_jvp_without_its_loss_tangent_is_a_fault_naming_it():
    v = validate(
        f"{__name__}:jvp_without_loss",
        cases=[small("mlp")],
        references=["reference"],
        modes=["fwd"],
        isolate=False,
    )
    assert not v.ok
    assert any(f.fault == "missing tensor" and f.tensor == "loss" for f in v.faults)


def test_a_broken_plugin_jvp_is_flagged_on_its_loss_tangent():
    v = validate(
        f"{__name__}:jvp_inconsistent",
        cases=[small("mlp")],
        references=["reference", "torch"],
        modes=["fwd"],
        isolate=False,
    )
    assert not v.ok
    mine = v.mine.set_index("tensor")
    assert mine.loc["loss", "verdict"] == "disagree" and mine.loc[
        "loss", "factor"
    ] == pytest.approx(2)


class InconsistentModes:
    """Right gradients, a JVP 1% off: its own two modes cannot both be right."""

    @staticmethod
    def grads(params, inputs, case):
        import reference.manual

        loss, cache = reference.manual.mlp_forward(
            params, inputs["X"], inputs["Y"], case.act, case.objective
        )
        return {"grads": reference.manual.mlp_backward(cache)[0], "loss": loss}

    @staticmethod
    def jvp(params, inputs, tangent, case):
        import reference.manual

        _, dloss, _ = reference.manual.mlp_jvp(
            params, tangent, inputs["X"], inputs["Y"], case.act, case.objective
        )
        return {"loss": 1.01 * dloss}


def test_a_plugin_whose_modes_disagree_with_each_other_is_flagged_by_the_identity():
    v = validate(
        f"{__name__}:InconsistentModes",
        cases=[small("mlp")],
        references=["reference"],
        modes=["rev", "fwd"],
        isolate=False,
    )
    assert not v.ok
    assert any(f.what == "identity" and "transpose identity broken" in f.text for f in v.findings)


def test_the_forward_localisation_walks_on_from_the_first_step():
    v = validate(
        "harness.zoo.second:elman_jvp_missing_fan_out",
        cases=[small("elman")],
        references=["reference", "torch"],
        modes=["fwd"],
        isolate=False,
    )
    text = v.text()
    assert not v.ok
    assert "the tangent of h_t agrees for t ≤ 0 and diverges from t = 1 on" in text


@pytest.mark.slow
def test_finite_differences_cry_no_wolf_on_a_chaotic_unroll_in_either_mode():
    """At σ = 1.3, T = 1000 the forward is chaotic: each gradient the stencil differences
    is noise amplified ~1e13 over its rounding (the noise floor is 2e-2 of the scale).
    The oracle must say it cannot tell there, not flag the libraries (before: H·v "off by
    3e+32" on b and W_y, its bound computed from 4ε·scale, the rounding of a tame value)."""
    case = CATALOG["elman_exploding"](T=1000, H=64)
    comparison = compare_backends([case], ["torch", "numeric"], modes=["fwd", "hvp"])
    mine = comparison.agreement[comparison.agreement["backend"] == "numeric"]
    assert not (mine["verdict"] == "disagree").any(), mine[["mode", "tensor", "verdict"]]
    assert (mine["verdict"] == "inconclusive").any()
