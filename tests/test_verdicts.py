"""Verdicts a CI job can trust: a run that compares nothing is no success, the worst element
named on a line is the one whose error the line reports, and a baseline that is itself the
odd one out is blamed, not the backends compared with it."""

from __future__ import annotations

import json

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import console, validate
from harness.backends import REGISTRY
from harness.backends.reference_tape import ReferenceBackend
from harness.cases import CATALOG
from harness.cli import main
from harness.compare import Comparison, compare_arrays
from harness.result import Result
from harness.tolerances import TOLERANCES
from harness.zoo.tiny_engine import TinyEngine

AUTODIFF = TOLERANCES[("autodiff", "float64")]
MLP = dict(depth=3, width=5, D=4, C=3, N=6)  # the zoo's small MLP


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def refuse_work(monkeypatch) -> None:
    """Any comparison or validation fails loudly: the command must stop before one starts.
    Every module that binds compare_backends at import is imported here first, so that the
    patch is undone everywhere it reached."""
    import harness.drift
    import harness.runner
    import harness.validation.validator

    def no(*args, **kwargs):
        raise AssertionError("the work started before the selection was checked")

    for module in (harness.runner, harness.drift):
        monkeypatch.setattr(module, "compare_backends", no)
    monkeypatch.setattr(harness.validation.validator, "validate", no)


# --- 1. a run that compares nothing is not a success ------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--case", "elman", "--backend", "torch"],
        ["run", "--case", "elman", "--backend", "jax", "--baseline", "jax"],
        ["run", "--case", "elman", "--backend", "torch", "--backend", "torch"],
        ["report", "--case", "elman", "--backend", "torch"],
        ["run", "--case", "elman", "--backend", "torch", "--set", "T=2,3"],  # a sweep
    ],
    ids=["run", "baseline-jax", "twice", "report", "sweep"],
)
def test_only_the_baseline_chosen_is_exit_2_before_any_work(argv, capsys, monkeypatch, tmp_path):
    refuse_work(monkeypatch)
    if argv[0] == "report":
        argv = [*argv, "--out", str(tmp_path / "r"), "--quiet"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    baseline = argv[argv.index("--baseline") + 1] if "--baseline" in argv else "torch"
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"baseline {baseline!r}" in err and "nothing to compare" in err
    assert "--backend" in err  # what to add


def test_a_validate_baseline_outside_the_references_is_exit_2_before_any_work(capsys, monkeypatch):
    refuse_work(monkeypatch)
    code, out, err = run_cli(
        capsys,
        "validate",
        "harness.zoo.models:mlp",
        "--case",
        "mlp",
        "--reference",
        "reference",
        "--reference",
        "torch",
        "--baseline",
        "jax",
    )
    assert code == 2 and out == ""
    assert "--baseline 'jax'" in err and "--reference jax" in err and "Traceback" not in err


def test_every_comparison_skipped_is_not_all_agree_and_not_exit_0(capsys):
    # manual has no hand-derived backward for a staged case: it is skipped there, and
    # torch, the baseline, has nothing to be compared with.
    code, out, _ = run_cli(capsys, "run", "--case", "card_affine_square", "--backend", "manual")
    verdict = out.strip().splitlines()[-1]
    assert code == 1, out
    assert "all agree" not in out and "NOTHING COMPARED" in verdict
    assert "manual skipped on card_affine_square" in out


def hand(backend: str, **kw) -> Result:
    return Result(case="hand", backend=backend, dtype="float64", **kw)


@pytest.mark.parametrize(
    "others",
    [
        [hand("manual", skipped="no hand-derived backward")],
        [hand("partial", unsupported="the engine has no array function 'tanh'")],
        [],
    ],
    ids=["skipped", "unsupported", "alone"],
)
def test_a_comparison_of_nothing_does_not_pass(others):
    c = Comparison([hand("torch", loss=1.0, grads={"w": np.ones(3)}), *others], "torch")
    assert not c.all_agree and c.exit_code == 1 and c.compared == 0
    line = console.verdict_line(c, 1, "float64")
    assert "all agree" not in line and "NOTHING COMPARED" in line


def test_summary_json_says_nothing_was_compared(tmp_path, capsys):
    out = tmp_path / "r"
    code, _, _ = run_cli(
        capsys,
        "report",
        "--case",
        "card_affine_square",
        "--backend",
        "manual",
        "--out",
        str(out),
        "--quiet",
    )
    facts = json.loads((out / "summary.json").read_text())
    assert code == 1
    assert facts["all_agree"] is False and facts["exit_code"] == 1
    assert facts["counts"]["compared"] == 0
    assert "Nothing was compared" in (out / "report.md").read_text()


class NoTanh(TinyEngine):
    """A partial engine: no tanh (micrograd has none)."""

    def __getattribute__(self, name):
        if name == "tanh":
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_an_engine_unsupported_everywhere_says_nothing_was_compared():
    v = validate(NoTanh, form="engine", cases=["mlp"], references=["reference"], isolate=False)
    verdict = v.text().strip().splitlines()[-1]
    assert not v.ok
    assert "NOTHING COMPARED" in verdict and "AGREES" not in verdict
    assert "DISAGREES" not in verdict


# --- 2. the worst element and the metric beside it ----------------------------------------------


def _scales(b: np.ndarray, stepped: bool) -> np.ndarray:
    """s_i: max|b| over the tensor, or over each step (axis 0) of a stepped tap."""
    if stepped and b.ndim > 1:
        return np.broadcast_to(
            np.max(np.abs(b), axis=tuple(range(1, b.ndim)), keepdims=True), b.shape
        )
    if stepped:
        return np.abs(b)
    return np.full(b.shape, np.max(np.abs(b)))


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def pairs(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    b = draw(hnp.arrays(np.float64, shape, elements=finite))
    # some elements right, some off by an error of any size, some steps tiny
    noise = draw(hnp.arrays(np.float64, shape, elements=finite))
    mask = draw(hnp.arrays(np.bool_, shape))
    a = np.where(mask, b + noise * draw(st.sampled_from([1e-14, 1e-9, 1e-3, 1.0])), b)
    if draw(st.booleans()) and len(shape) > 1:  # a vanishing unroll: each step far smaller
        decay = np.logspace(0, -draw(st.integers(1, 30)), shape[0]).reshape(
            -1, *[1] * (len(shape) - 1)
        )
        a, b = a * decay, b * decay
    return a, b, draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_the_worst_element_sets_the_error_printed_beside_it(pair):
    a, b, stepped = pair
    row = compare_arrays(a, b, AUTODIFF, "float64", stepped=stepped)
    index = eval(row["worst_index"])  # a tuple literal such as "(0, 1)"
    s = _scales(b, stepped)
    tiny = np.finfo(np.float64).tiny
    scale = max(float(s[index]), tiny)
    assert row["worst_got"] == a[index] and row["worst_expected"] == b[index]
    assert row["worst_scale"] == scale
    # the error printed beside "worst at" is that element's own: |got − expected| / scale
    assert row["worst_rel_err"] == pytest.approx(abs(a[index] - b[index]) / scale, rel=1e-12)
    with np.errstate(over="ignore"):  # a huge difference over a subnormal scale: inf
        rel = np.abs(a - b) / np.maximum(s, tiny)
    assert row["max_rel_err"] >= row["worst_rel_err"] * (1 - 1e-12)
    # the tolerance (README, "Agreement"): |a − b| ≤ rtol·|b| + atol·s + tiny/ε
    allowed = AUTODIFF.rtol * np.abs(b) + AUTODIFF.atol * np.maximum(s, tiny)
    bad = np.abs(a - b) > allowed + tiny / np.finfo(np.float64).eps
    assert row["n_bad"] == int(bad.sum())
    if bad.any():  # a disagreement names a disagreeing element, the largest error among them
        assert bad[index]
        assert row["worst_rel_err"] == pytest.approx(float(rel[bad].max()), rel=1e-12)
    else:  # nothing disagrees: the worst is the largest error of all
        assert row["worst_rel_err"] == pytest.approx(row["max_rel_err"], rel=1e-12)


def test_the_transposed_dw_of_the_zoo_names_its_largest_error_in_both_dtypes():
    """In float64 the element most beyond its tolerance is a small one (its tolerance is
    small), while the largest error lies elsewhere (float32 named that one): the line must
    name the element whose error it prints, in both dtypes."""
    for dtype in ("float64", "float32"):
        v = validate(
            "harness.zoo.models:weight_transposed",
            cases=[CATALOG["mlp"](**MLP)],
            references=["reference", "torch"],
            dtype=dtype,
            isolate=False,
        )
        row = v.mine[v.mine["tensor"] == "W2"].iloc[0]
        by = {r.backend: r.grads for r in v.comparison.results}
        got, expected = by[v.plugin]["W2"], by[row["baseline"]]["W2"]
        largest = np.unravel_index(int(np.argmax(np.abs(got - expected))), expected.shape)
        assert row["worst_index"] == str(tuple(int(i) for i in largest)), dtype
        line = next(f.text for f in v.findings if f.what == "disagrees" and f.tensor == "W2")
        assert f"worst at {row['worst_index']}" in line
        assert f"{row['worst_rel_err']:.2e} of the scale {row['worst_scale']:.3g}" in line


# --- 3. the baseline as the odd one out -----------------------------------------------------


class Doubled(ReferenceBackend):
    """A reference gone wrong: the tape's gradients, doubled."""

    name = "doubled"

    def gradient(self, case, params, inputs, dtype):
        result = super().gradient(case, params, inputs, dtype)
        result.grads = {k: 2 * g for k, g in result.grads.items()}
        result.backend = self.name
        return result


def test_a_wrong_baseline_is_blamed_in_validate_not_the_plugin(monkeypatch):
    monkeypatch.setitem(REGISTRY, "doubled", (__name__, "Doubled"))
    v = validate(
        "harness.zoo.models:mlp",
        cases=[CATALOG["mlp"](**MLP)],
        references=["doubled", "reference", "torch"],
        baseline="doubled",
        isolate=False,
    )
    assert not v.ok  # a disagreement is still a failed run
    odd = [f for f in v.findings if f.what == "baseline odd one out"]
    assert len(odd) == 1 and odd[0].bad
    assert "the baseline doubled" in odd[0].text and "reference, torch and yours" in odd[0].text
    assert not [f for f in v.findings if f.what in ("disagrees", "odd one out")]
    text = v.text()
    assert "yours is the odd one out" not in text
    verdict = text.strip().splitlines()[-1]
    assert "THE BASELINE DISAGREES" in verdict and "doubled" in verdict


W = np.array([0.5, -1.5, 2.0])


def test_a_wrong_baseline_is_blamed_in_the_findings_of_a_run():
    results = [
        hand("torch", loss=1.0, grads={"w": 2 * W}),  # the baseline, wrong
        hand("reference", loss=1.0, grads={"w": W.copy()}),
        hand("jax", loss=1.0, grads={"w": W + 1e-15}),
        hand("numeric", loss=1.0, grads={"w": W + 1e-10}, obtained_by="elementwise"),
    ]
    c = Comparison(results, "torch")
    assert c.exit_code == 1 and not c.all_agree
    lines = console.findings(c)
    blamed = [line for line in lines if "'w'" in line]
    assert len(blamed) == 1, lines  # one line for the tensor, not one per backend against it
    assert "the baseline torch is the odd one out" in blamed[0]
    assert "reference, jax and numeric" in blamed[0]
    verdict = console.verdict_line(c, 1, "float64")
    assert "DISAGREEMENT" in verdict and "the baseline torch is the odd one out" in verdict


def test_a_wrong_baseline_is_blamed_by_gradparity_run(monkeypatch, capsys):
    monkeypatch.setitem(REGISTRY, "doubled", (__name__, "Doubled"))
    code, out, _ = run_cli(
        capsys,
        "run",
        "--case",
        "card_affine_square",
        "--backend",
        "doubled",
        "--backend",
        "reference",
        "--backend",
        "torch",
        "--backend",
        "jax",
        "--baseline",
        "doubled",
    )
    assert code == 1
    assert "the baseline doubled is the odd one out" in out
    assert "the baseline doubled is the odd one out" in out.strip().splitlines()[-1]


def test_a_wrong_baseline_is_blamed_in_summary_json_and_the_report(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(REGISTRY, "doubled", (__name__, "Doubled"))
    out = tmp_path / "r"
    code, _, _ = run_cli(
        capsys,
        "report",
        "--case",
        "card_affine_square",
        "--backend",
        "doubled",
        "--backend",
        "reference",
        "--backend",
        "jax",
        "--baseline",
        "doubled",
        "--out",
        str(out),
        "--quiet",
    )
    facts = json.loads((out / "summary.json").read_text())
    assert code == 1 and facts["exit_code"] == 1 and facts["all_agree"] is False
    # param x, against reference and against jax: both rows put the fault on the baseline
    assert facts["counts"]["disagree"] == 2 and facts["counts"]["baseline_odd_one_out"] == 2
    assert "the baseline `doubled` is the odd one out" in (out / "report.md").read_text()
