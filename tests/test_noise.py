"""The noise floor (``harness.noise``) and the verdicts it gives: agree, agree within
noise, disagree, inconclusive, unsupported — in the tables, the CLI and the exit codes."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from harness import validate
from harness.backends import get_backend
from harness.backends.base import Backend
from harness.cases import CATALOG
from harness.cli import main
from harness.compare import WITHIN_NOISE, Comparison, compare_arrays
from harness.namespace import Unsupported
from harness.noise import perturbed, spread
from harness.runner import compare_backends, noise_plan
from harness.selection import build_cases, parse_sets
from harness.tolerances import TOLERANCES
from harness.zoo.tiny_engine import TinyEngine

F64 = TOLERANCES[("autodiff", "float64")]
CHAOS = ["T=1000", "H=64"]  # elman_exploding, σ = 1.3: the forward is chaotic by T = 1000


@pytest.fixture(scope="module")
def chaos():
    """elman_exploding at T = 1000, H = 64 through reference, torch and jax (noise floor
    measured on torch, the baseline)."""
    case = build_cases(["elman_exploding"], parse_sets(CHAOS))[0]
    return case, compare_backends([case], ["reference", "torch", "jax"])


# --- the measurement ---------------------------------------------------------------------------


def test_perturbed_moves_every_float_by_at_most_one_ulp_and_leaves_integers():
    rng = np.random.default_rng(0)
    x = {"a": rng.standard_normal((50, 40)), "f": np.ones(7, np.float32), "k": np.arange(5)}
    y = perturbed(x, np.random.default_rng(1))
    for name in ("a", "f"):
        eps = np.finfo(x[name].dtype).eps
        rel = np.abs(y[name] - x[name]) / np.abs(x[name])
        assert y[name].dtype == x[name].dtype
        assert rel.max() <= 1.5 * eps and (rel > 0).mean() > 0.3  # moved, by an ulp or so
    assert np.array_equal(y["k"], x["k"])
    again = perturbed(x, np.random.default_rng(1))
    assert all(np.array_equal(again[k], y[k]) for k in x)  # seeded


def test_the_floor_is_a_few_ulps_on_a_well_conditioned_case_and_large_on_a_chaotic_one(chaos):
    case = CATALOG["mlp"]()
    params, inputs = case.build(0)
    torch = get_backend("torch")
    first = torch.gradient(case, params, inputs, "float64")
    floors = {
        key: float(np.max(s) / np.max(np.abs(first.tensors()[key])))
        for key, s in spread(torch, case, params, inputs, "float64", first).items()
    }
    assert max(floors.values()) < 100 * np.finfo(np.float64).eps
    _, comparison = chaos
    assert comparison.agreement["noise_floor"].min() > 1e-4  # rounding grows ~1.3 per step


def test_noise_plan_measures_the_baseline_by_default_every_reference_with_k_never_a_plugin():
    names = ["reference", "torch", "numeric", "plugin:mine"]
    instances = [get_backend(n) for n in names[:3]] + [get_backend("reference")]
    assert noise_plan(names, instances, "torch", None) == (("torch",), 4)
    assert noise_plan(names, instances, "torch", 2) == (("reference", "torch"), 2)
    assert noise_plan(names, instances, "plugin:mine", None) == ((), 4)
    assert noise_plan(names, instances, "torch", 0) == ((), 0)
    with pytest.raises(ValueError, match="noise must be"):
        noise_plan(names, instances, "torch", -1)


# --- the verdicts ------------------------------------------------------------------------------


def test_beyond_the_table_within_the_noise_agrees_within_noise_and_says_its_digits():
    b = np.linspace(1.0, 2.0, 10)
    noise = np.full(10, 1e-6 * 2.0)  # a floor of 1e-6 of the scale: far beyond atol 1e-10
    got = b.copy()
    got[3] += 2.5e-6 * 2.0  # 2.5 floors
    m = compare_arrays(got, b, F64, "float64", noise=noise)
    assert m["verdict"] == "agree within noise" and m["ok"]
    assert m["noise_floor"] == pytest.approx(1e-6) and m["digits"] == pytest.approx(6.0)
    assert "6.0 digits" in m["reason"]
    got[3] = b[3] + (WITHIN_NOISE + 0.5) * 1e-6 * 2.0  # beyond the band
    assert compare_arrays(got, b, F64, "float64", noise=noise)["verdict"] == "disagree"
    got[3] = b[3] + 2.5e-6 * 2.0  # and without the noise, the table alone: disagree
    assert compare_arrays(got, b, F64, "float64")["verdict"] == "disagree"


def test_a_one_element_error_of_1e_9_in_a_small_element_of_mlp_is_flagged():
    """The fixed table lets it pass (atol·s dominates on an element 6.7e-4 of the scale);
    the measured floor, a few ulps here, tightens the absolute term to 100 floors."""
    case = CATALOG["mlp"]()
    params, inputs = case.build(0)
    torch = get_backend("torch")
    first = torch.gradient(case, params, inputs, "float64")
    noise = spread(torch, case, params, inputs, "float64", first)[("param", "W1")]
    b = first.grads["W1"]
    share = np.abs(b) / np.abs(b).max()
    i = np.unravel_index(np.argmin(np.where(share > 5e-4, share, np.inf)), b.shape)
    assert share[i] < 1e-3  # an element well below the tensor's scale
    got = b.copy()
    got[i] *= 1 + 1e-9
    assert compare_arrays(got, b, F64, "float64")["verdict"] == "agree"  # the table alone
    m = compare_arrays(got, b, F64, "float64", noise=noise)
    assert m["verdict"] == "disagree" and m["worst_index"] == str(tuple(int(k) for k in i))
    assert m["detects_rel_median"] < 1e-9 < compare_arrays(b, b, F64)["detects_rel_worst"]


def test_the_chaotic_case_agrees_within_noise_at_its_measured_digits(chaos):
    _, comparison = chaos
    table = comparison.agreement
    assert comparison.exit_code == 0
    assert set(table["verdict"]) == {"agree within noise"}
    # correct libraries differ here by at most 0.55 floors (float64, seeds 0-2: 1.38)
    assert (table["max_rel_err"] / table["noise_floor"]).max() < 1
    assert table["digits"].between(1, 4).all()


def test_the_chaotic_case_run_exits_0_and_says_why(capsys, tmp_path):
    out_csv = tmp_path / "agreement.csv"
    code = main(
        [
            "run",
            "--case",
            "elman_exploding",
            *sum((["--set", s] for s in CHAOS), []),
            "--backend",
            "reference",
            "--backend",
            "jax",
            "--csv",
            str(out_csv),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "≈" in out and "agree within the problem's own rounding noise" in out
    assert "the problem, not a backend, limits the agreement" in out
    assert "no disagreement (some agree within noise)" in out
    rows = list(csv.DictReader(out_csv.open()))
    assert {r["verdict"] for r in rows} == {"agree within noise"}
    assert all(1 <= float(r["digits"]) <= 4 for r in rows)


def _plugin_off_by(factor: float, loss_too: bool = False):
    torch = get_backend("torch")

    def grads(params, inputs, case):
        r = torch.gradient(case, params, inputs, "float64")
        scale = 1 + factor
        return {
            "grads": {k: v * scale for k, v in r.grads.items()},
            "taps": {k: v * scale for k, v in r.taps.items()},
            "loss": r.loss * (scale if loss_too else 1.0),
        }

    return grads


def test_a_plugin_off_by_1e_2_on_the_chaotic_case_is_flagged(chaos):
    case, _ = chaos
    v = validate(
        _plugin_off_by(1e-2),
        form="model",
        cases=[case],
        references=["reference", "torch"],
        isolate=False,
    )
    assert not v.ok
    mine = v.mine.set_index("tensor")
    assert mine.loc["h", "verdict"] == "disagree"  # the late steps: there the floor is small
    assert mine.loc["loss", "verdict"] != "disagree"
    plugin = next(r for r in v.comparison.results if r.backend == v.plugin)
    assert plugin.noise == {}  # never judged by its own noise
    assert any(r.noise for r in v.comparison.results if r.backend == "reference")


def test_a_plugin_whose_forward_is_off_is_told_so_first(chaos):
    case, _ = chaos
    v = validate(
        _plugin_off_by(1e-1, loss_too=True),
        form="model",
        cases=[case],
        references=["reference", "torch"],
        isolate=False,
    )
    first = next(f for f in v.findings if f.bad)
    assert first.what == "forward" and "the forward differs" in first.text
    assert "computed from different values" in first.text


def test_a_correct_plugin_on_the_chaotic_case_agrees(chaos):
    case, _ = chaos
    v = validate(
        _plugin_off_by(0.0),
        form="model",
        cases=[case],
        references=["reference", "torch"],
        isolate=False,
    )
    assert v.ok, v.text()
    assert "agree within the problem's own rounding noise" in v.text()


# --- unsupported -------------------------------------------------------------------------------


class NoTanh(TinyEngine):
    """A partial engine: no tanh (micrograd has none)."""

    def __getattribute__(self, name):
        if name == "tanh":
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_a_partial_engine_right_wherever_it_runs_agrees_with_the_rest_listed():
    v = validate(
        NoTanh,
        form="engine",
        cases=["card_sigmoid_unit", "mlp", "softmax_xent"],
        references=["reference", "torch"],
        isolate=False,
    )
    assert v.ok
    assert v.unsupported == {
        "mlp": "the engine has no array function 'tanh' (see harness/namespace.py)"
    }
    text = v.text()
    assert (
        "– unsupported, the engine has no array function 'tanh' (see harness/namespace.py): 1 case, mlp"
        in text
    )
    assert "Traceback" not in text and "1 case unsupported" in text and "AGREES" in text
    assert set(v.mine.loc[v.mine["case"] == "mlp", "verdict"]) == {"unsupported"}
    assert all(f.severity == "note" for f in v.faults)


def test_an_engine_unsupported_everywhere_does_not_pass():
    v = validate(NoTanh, form="engine", cases=["mlp"], references=["reference"], isolate=False)
    assert not v.ok and v.unsupported


class Partial(Backend):
    """The reference tape, lacking tanh."""

    name, derivation = "partial", "autodiff"

    def gradient(self, case, params, inputs, dtype):
        if "tanh" in case.doc():
            raise Unsupported("no 'tanh'")
        return get_backend("reference").gradient(case, params, inputs, dtype)


class Wrong(Backend):
    name, derivation = "wrong", "autodiff"

    def gradient(self, case, params, inputs, dtype):
        r = get_backend("reference").gradient(case, params, inputs, dtype)
        r.grads = {k: v * 1.001 for k, v in r.grads.items()}
        return r


def test_the_verdicts_in_the_csv_and_the_exit_codes(chaos, tmp_path):
    """agree and unsupported and inconclusive exit 0, agree within noise exits 0, a
    disagreement exits 1; each verdict is written as such in the CSV."""
    _, noisy = chaos
    cases = [CATALOG["card_sigmoid_unit"](), CATALOG["mlp"](), CATALOG["elman_sigmoid"]()]
    quiet = compare_backends(cases, ["torch", Partial(), "numeric"])
    assert quiet.exit_code == 0
    loud = compare_backends(cases[:1], ["torch", Wrong()])
    assert loud.exit_code == 1
    seen = set()
    for i, c in enumerate((quiet, loud, noisy)):
        path = tmp_path / f"{i}.csv"
        c.agreement.to_csv(path, index=False)
        seen |= {r["verdict"] for r in csv.DictReader(path.open())}
    assert {"agree", "agree within noise", "disagree", "inconclusive", "unsupported"} <= seen
    runs = quiet.runs.set_index(["case", "backend"])
    assert runs.loc[("mlp", "partial"), "status"] == "unsupported"
    assert runs.loc[("mlp", "partial"), "error"] == "no 'tanh'"


def test_noise_everywhere_and_off():
    both = compare_backends(["card_sigmoid_unit"], ["reference", "torch"], noise=2)
    assert all(r.noise for r in both.results)
    assert all(math.isfinite(x) for x in both.agreement["noise_floor"])
    off = compare_backends(["card_sigmoid_unit"], ["reference", "torch"], noise=0)
    assert off.agreement["noise_floor"].isna().all()


@pytest.mark.parametrize("argv", [
    ["run", "--case", "card_sigmoid_unit", "--noise", "-2"],
    ["report", "--noise", "two"],
    ["validate", "examples/model_mlp.py:grads", "--case", "mlp", "--noise", "1.5"],
])  # fmt: skip
def test_noise_option_takes_a_whole_count_else_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert (
        "--noise takes a whole number of perturbed runs from 0 to 1,000" in capsys.readouterr().err
    )


def test_the_noise_floor_holds_two_arrays_per_tensor_however_many_runs():
    """The range of K + 1 runs, kept as a running least and greatest value: the memory it
    takes does not grow with K (keeping every run took K + 1 copies of every tensor)."""
    import tracemalloc

    case = CATALOG["card_affine_square"](n=200_000)  # x and u: 1.6 MB each
    p, x = case.build(0)
    backend = get_backend("reference")
    first = backend.gradient(case, p, x, "float64")
    peaks = {}
    for runs in (2, 24):
        tracemalloc.start()
        floor = spread(backend, case, p, x, "float64", first, runs=runs)
        peaks[runs] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert set(floor) == set(first.tensors())
    assert peaks[24] < 1.25 * peaks[2]  # 25 copies of x and u would be 8 times as many


def test_the_floor_is_the_range_of_the_runs():
    class Drifting(Backend):
        """Its gradient is the run number: 0, 1, 2, … (a noise floor of K exactly)."""

        name = "drifting"
        calls = 0

        def gradient(self, case, params, inputs, dtype):
            from harness.result import Result

            Drifting.calls += 1
            return Result(
                case.label,
                self.name,
                dtype,
                loss=0.0,
                grads={"x": np.full(3, float(Drifting.calls % 5))},
            )

    case = CATALOG["card_affine_square"](n=3)
    p, x = case.build(0)
    backend = Drifting()
    first = backend.gradient(case, p, x, "float64")  # 1
    floor = spread(backend, case, p, x, "float64", first, runs=6)  # 2, 3, 4, 0, 1, 2
    assert set(floor) == {("loss", "loss"), ("param", "x")}
    assert floor[("loss", "loss")] == 0 and list(floor[("param", "x")]) == [4.0, 4.0, 4.0]


def test_comparison_of_results_without_noise_is_unchanged():
    case = CATALOG["mlp"]()
    p, x = case.build(0)
    results = [get_backend(n).gradient(case, p, x, "float64") for n in ("reference", "torch")]
    table = Comparison(results, "torch", [case]).agreement
    assert table["noise_floor"].isna().all() and set(table["verdict"]) == {"agree"}
