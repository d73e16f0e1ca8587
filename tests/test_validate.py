"""``gradparity validate`` and ``harness.validate``: verdicts, exit codes, diagnostics
(tensor, element, references, localisation) and the report."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import reference.manual
from harness import validate
from harness.backends import REGISTRY
from harness.backends.reference_tape import ReferenceBackend
from harness.cases import CATALOG
from harness.cli import main
from harness.validation.validator import NeedCases

ROOT = Path(__file__).resolve().parents[1]
REFS = ["reference"]
MLP = dict(depth=3, width=5, D=4, C=3, N=6)


def small_grads(params, inputs, case):
    """A correct model plug-in defined in a test module (importable by name)."""
    loss, cache = reference.manual.mlp_forward(
        params, inputs["X"], inputs["Y"], case.act, case.objective
    )
    return {"grads": reference.manual.mlp_backward(cache)[0], "loss": loss}


# --- the command: exit codes -----------------------------------------------------------------

EXAMPLES = [
    ("examples/model_mlp.py:grads", ["--as", "model", "--case", "mlp"]),
    ("examples/stages.py:Linear", ["--as", "stage"]),
    ("examples/stages.py:Tanh", []),
    ("examples/engine_tiny.py:TinyEngine", ["--as", "engine", "--case", "every_primitive", "--case", "gru", "--set", "T=5"]),
]  # fmt: skip


@pytest.mark.parametrize("target, extra", EXAMPLES, ids=[t for t, _ in EXAMPLES])
def test_the_examples_agree_exit_0(target, extra, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["validate", target, *extra, "--reference", "reference", "--reference", "numeric"])
    out = capsys.readouterr().out
    assert code == 0, out
    grid = out.split("max_rel_err = ", 1)[1].split("\n", 1)[1]  # below the marks' legend
    assert "AGREES" in out and "✗" not in grid


def test_a_broken_implementation_exits_1_naming_tensor_element_and_values(capsys):
    code = main(
        [
            "validate",
            "harness.zoo.models:bias_mean",
            "--case",
            "mlp",
            *sum([["--set", f"{k}={v}"] for k, v in MLP.items()], []),
            "--reference",
            "reference",
            "--reference",
            "torch",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    line = next(line for line in out.splitlines() if "param 'b1'" in line)
    assert (
        "5/5 elements disagree with reference; worst at (" in line
        and "got " in line
        and "expected " in line
    )
    assert "yours is the odd one out on b1, b2, b3" in out
    assert "the references agree with each other on every tensor: reference, torch" in out
    assert "DISAGREES" in out


COLD = """
import sys
from harness import validate
from harness.backends import DEFAULT_REFERENCES
v = validate("examples/model_mlp.py:grads", cases=["mlp"])
assert v.ok, v.text()
assert v.references == DEFAULT_REFERENCES, v.references
assert set(v.agreement["baseline"]) == {"reference"}, set(v.agreement["baseline"])
assert set(v.agreement["backend"]) == {"manual", "numeric", "plugin:grads"}
loaded = sorted(m for m in ("torch", "jax") if m in sys.modules)
assert not loaded, f"a validation on the numpy references imported {loaded}"
"""


def test_the_default_references_are_the_numpy_ones_and_load_no_framework():
    """The tape, manual and numeric: a verdict that waits for neither torch's import nor
    jax's (in a fresh process, as a user's command runs)."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", COLD], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("argv, ran", [
    (["--reference", "all"], {"reference", "manual", "torch", "jax", "numeric"}),
    (["--reference", "numeric", "--reference", "all"], {"reference", "manual", "torch", "jax", "numeric"}),
    (["--baseline", "torch"], {"reference", "manual", "torch", "numeric"}),  # asked for by name
    (["--reference", "torch", "--reference", "numeric"], {"torch", "numeric"}),
])  # fmt: skip
def test_the_references_asked_for_are_those_that_run(argv, ran, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "v"
    code = main(["validate", "examples/model_mlp.py:grads", "--case", "mlp", "--set", "depth=1",
                 *argv, "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    import pandas as pd

    table = pd.read_csv(out / "agreement.csv")
    assert set(table["backend"]) | set(table["baseline"]) == ran | {"plugin:grads"}


@pytest.mark.parametrize("argv, message", [
    (["validate", "no_colon_here"], "add :NAME"),
    (["validate", "my module:grads"], "not a module name"),
    (["validate", "harness.zoo.models:manual", "--as", "model"], "a model plug-in fits one case's parameters"),
    (["validate", "harness.zoo.models:manual", "--set", "T=3"], "--set needs --case"),
    (["validate", "harness.zoo.models:manual", "--case", "no_such_case"], "no case matches"),
    (["validate", "harness.zoo.models:manual", "--case", "mlp", "--reference", "torch", "--baseline", "jax"],
     "--baseline 'jax' is not one of the references (torch)"),
])  # fmt: skip
def test_bad_usage_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_form_is_bad_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "harness.zoo.models:manual", "--as", "tensor"])
    assert exit_info.value.code == 2


def test_a_fault_exits_1(tmp_path, capsys):
    (tmp_path / "plug.py").write_text(
        "def grads(params, inputs):\n    raise RuntimeError('oops')\n"
    )
    code = main(
        [
            "validate",
            f"{tmp_path / 'plug.py'}:grads",
            "--case",
            "card_affine_square",
            "--reference",
            "reference",
            "--timeout",
            "20",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "exception: RuntimeError: oops" in out and "raise RuntimeError" in out


def test_out_writes_the_tables_diagnostics_and_report(tmp_path, capsys):
    code = main(
        [
            "validate",
            "harness.zoo.models:elman_missing_dh_next",
            "--case",
            "elman",
            "--set",
            "T=5",
            "--reference",
            "reference",
            "--reference",
            "torch",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 1
    for name in ("agreement.csv", "runs.csv", "faults.csv", "diagnostics.md"):
        assert (tmp_path / name).stat().st_size > 0
    diagnostics = (tmp_path / "diagnostics.md").read_text()
    assert "dL/dh_t agrees for t ≥ 4 and diverges below" in diagnostics
    if (tmp_path / "report.md").exists():  # the full report, where harness.report renders it
        assert "Validation of plugin:elman_missing_dh_next" in (tmp_path / "report.md").read_text()


# --- diagnostics: localisation ---------------------------------------------------------------

LOCALISED = [
    # (target, form, case, the sentence)
    ("harness.zoo.models:elman_truncated", "model", CATALOG["elman"](T=9, H=3),
     "dL/dh_t agrees for t ≥ 6 and diverges below (from t = 5 down, 6 of 9 steps): look at the backward of step t = 5"),
    ("harness.zoo.models:lstm_missing_cell_path", "model", CATALOG["lstm"](T=6, H=3),
     "dL/dc_t agrees for t ≥ 5 and diverges below"),
    ("harness.zoo.engines:DivQuotientRule", "engine", CATALOG["deep_chain"](K=8, n=3),
     "dL/ds[k] agrees for k ≥ 8 and diverges at k = 7: look at the backward of the stage from s[7] to s[8]"),
    ("harness.zoo.models:xent_missing_mean", "model", CATALOG["mlp_relu_xent"](**MLP),
     "dL/dh[k] diverges already at h[2], the one nearest the loss"),
    ("harness.zoo.models:elman_off_by_one", "model", CATALOG["elman"](T=5, H=3),
     "so the gradient flowing back is right up to the taps; the gradients of W_h are wrong: the error is in the stage between the taps and that parameter"),
]  # fmt: skip


@pytest.mark.parametrize("target, form, case, sentence", LOCALISED, ids=[t for t, *_ in LOCALISED])
def test_localisation_walks_back_from_the_loss(target, form, case, sentence, worker):
    v = validate(target, form=form, cases=[case], references=REFS, channel=worker)
    assert not v.ok
    assert sentence in v.text(), v.text()


def test_a_plugin_without_taps_is_told_how_to_localise(worker):
    v = validate(
        "harness.zoo.models:bias_mean",
        cases=[CATALOG["mlp"](**MLP)],
        references=REFS,
        channel=worker,
    )
    assert "every reported dL/d(tap) agrees" in v.text()  # it reports taps: no advice
    v = validate(
        lambda p, x, case: {"W1": p["W1"]},
        form="model",
        cases=[CATALOG["mlp"](**MLP)],
        references=REFS,
    )
    assert "report tap gradients too" in v.text()


class Doubled(ReferenceBackend):
    """A reference gone wrong: the tape's gradients, doubled."""

    name = "doubled"

    def gradient(self, case, params, inputs, dtype):
        result = super().gradient(case, params, inputs, dtype)
        result.grads = {k: 2 * g for k, g in result.grads.items()}
        result.backend = self.name
        return result


def test_references_that_disagree_among_themselves_are_said_to(monkeypatch, worker):
    monkeypatch.setitem(REGISTRY, "doubled", (__name__, "Doubled"))
    v = validate(
        "harness.zoo.models:mlp",
        cases=[CATALOG["mlp"](**MLP)],
        references=["reference", "torch", "doubled"],
        channel=worker,
    )
    assert v.ok and not v.references_agree  # the plug-in agrees with the sound references
    assert (
        "the references disagree among themselves (doubled vs reference on param 'W1'" in v.text()
    )


def test_a_kinked_stage_leaves_numeric_out_and_says_why(worker):
    v = validate("harness.zoo.stages:Relu", references=["reference", "numeric"], channel=worker)
    assert v.ok and v.references == ["reference"]
    assert "the numeric reference is left out" in v.text()


# --- the Python API ------------------------------------------------------------------------


def test_api_takes_an_importable_function_and_runs_it_isolated(worker):
    v = validate(small_grads, cases=[CATALOG["mlp"](**MLP)], references=REFS, channel=worker)
    assert v.ok, v.text()
    assert v.form == "model" and v.plugin == "plugin:small_grads"
    assert set(v.mine["tensor"]) == {"loss", *CATALOG["mlp"](**MLP).build()[0]}
    assert "cannot be imported by name" not in v.text()


def test_api_runs_a_lambda_in_process_and_says_so():
    grads = lambda p, x, case: small_grads(p, x, case)
    v = validate(grads, form="model", cases=[CATALOG["mlp"](**MLP)], references=REFS)
    assert v.ok
    assert "cannot be imported by name in a fresh process; it runs in this one" in v.text()


def test_api_needs_cases_for_a_model():
    with pytest.raises(NeedCases, match="gradparity describe"):
        validate("harness.zoo.models:manual", form="model", references=REFS, isolate=False)


def test_a_model_plugin_may_declare_its_cases(tmp_path, worker):
    (tmp_path / "declared.py").write_text(
        "import numpy as np\n\n\ndef grads(p, x):\n    return {'x': 6 * (3 * p['x'] + 1)}\n\n\n"
        "grads.cases = ['card_affine_square']\n"
    )
    v = validate(f"{tmp_path / 'declared.py'}:grads", references=REFS, channel=worker)
    assert v.ok and list(dict.fromkeys(v.agreement["case"])) == ["card_affine_square"]


def test_float32_runs_are_judged_with_float32_tolerances(worker):
    v = validate(
        "harness.zoo.models:manual",
        cases=[CATALOG["lstm"](T=6)],
        dtype="float32",
        references=["reference", "torch"],
        channel=worker,
    )
    assert v.ok, v.text()
    assert set(v.mine["rtol"]) == {1e-4}


def test_results_are_plain_numpy_in_the_comparison(worker):
    v = validate(
        "harness.zoo.models:manual",
        cases=[CATALOG["gru"](T=4)],
        references=REFS,
        channel=worker,
    )
    mine = next(r for r in v.comparison.results if r.backend == v.plugin)
    assert isinstance(mine.taps["h"], np.ndarray) and mine.taps["h"].shape == (4, 2, 8)
    assert mine.tap_steps == {"h": 4}


def test_no_isolation_runs_a_target_in_this_process(capsys):
    code = main(
        [
            "validate",
            "harness.zoo.models:manual",
            "--case",
            "gru",
            "--set",
            "T=3",
            "--reference",
            "reference",
            "--no-isolation",
        ]
    )
    assert code == 0, capsys.readouterr().out


UNFINDABLE = [
    ("examples/nope.py:grads", "no file"),
    ("nosuchmodule.sub:grads", "no module 'nosuchmodule'"),
    ("harness.zoo.nosuch:grads", "no module 'harness.zoo.nosuch'"),
    ("examples/model_mlp.py", "add :NAME"),
    ("harness.zoo.models", "add :NAME"),
]


@pytest.mark.parametrize("target, says", UNFINDABLE, ids=[t for t, _ in UNFINDABLE])
def test_a_target_that_cannot_be_found_is_exit_2_before_any_work(refuse_work, capsys, target, says):
    code = main(["validate", target, "--case", "mlp"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, out + err
    assert says in err and repr(target) in err


def test_finding_a_module_runs_none_of_its_packages_code(
    refuse_work, capsys, monkeypatch, tmp_path
):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "__init__.py").write_text("open('ran', 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "mine.nosub:grads", "--case", "mlp"]) == 2
    assert "no module 'mine.nosub'" in capsys.readouterr().err
    assert not (tmp_path / "ran").exists() and "mine" not in sys.modules


def test_a_target_whose_name_is_missing_is_exit_2_naming_what_is_there(capsys):
    code = main(
        ["validate", "examples/model_mlp.py:nope", "--case", "mlp", "--reference", "reference"]
    )
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, out + err
    assert "'examples/model_mlp.py:nope'" in err and "no attribute 'nope'" in err and "grads" in err


IMPORT_FAULTS = [
    (
        "def grads(params, inputs):\n    return (\n",
        "SyntaxError: '(' was never closed (broken.py, line 2)",
    ),
    ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
]


@pytest.mark.parametrize("source, last_line", IMPORT_FAULTS, ids=["syntax", "raises"])
def test_a_plugin_that_fails_to_import_is_one_fault_row_with_its_error_in_one_line(
    capsys, tmp_path, source, last_line
):
    (tmp_path / "broken.py").write_text(source)
    code = main(
        [
            "validate",
            f"{tmp_path / 'broken.py'}:grads",
            "--case",
            "mlp",
            "--reference",
            "reference",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "import error" in out and last_line in out
    assert "Traceback" not in out and "      | " not in out
    assert "Traceback (most recent call last)" in (tmp_path / "out" / "diagnostics.md").read_text()


def test_a_square_weight_gradient_transposed_is_named_as_such(tmp_path, worker):
    """The commonest slip of a hand-written backward: dW = dzᵀ·h where hᵀ·dz is meant. For
    a square W the shapes fit, so only the numbers can tell: validate says it."""
    source = (ROOT / "examples" / "model_mlp.py").read_text()
    right = 'out[f"W{layer}"] = h_in.T @ dz'
    assert right in source
    broken = tmp_path / "transposed.py"
    broken.write_text(
        source.replace(right, 'out[f"W{layer}"] = (h_in.T @ dz).T if layer == 2 else h_in.T @ dz')
    )
    v = validate(f"{broken}:grads", cases=["mlp"], channel=worker)
    assert not v.ok
    (found,) = [f for f in v.findings if f.short == "transposed"]
    assert found.tensor == "W2" and "W2 is the references' transposed" in v.text()


LEAKY_RELU = '''
import numpy as np


class LeakyAsRelu:
    """Says relu, computes a leaky relu: its backward is right for its own forward."""

    stage = "relu"

    @staticmethod
    def forward(x):
        return np.where(x > 0, x, 0.1 * x), x

    @staticmethod
    def backward(d_out, x):
        return d_out * np.where(x > 0, 1.0, 0.1)
'''


def test_a_plugin_s_own_finite_differences_never_outvote_a_reference(tmp_path, worker):
    """A relu stage keeps the tape alone as reference (numeric is left out at the kink):
    the plug-in and finite differences of its own forward agree with each other, being
    the same function, and must not make the tape 'the odd one out'."""
    (tmp_path / "leaky.py").write_text(LEAKY_RELU)
    v = validate(f"{tmp_path / 'leaky.py'}:LeakyAsRelu", form="stage", channel=worker)
    assert v.verdict == "disagrees", v.text()
    assert "odd one out" not in v.text()


def test_finite_differences_alone_judge_a_plugin_along_their_directions(worker):
    """mlp is large enough for numeric to see it along random directions only: as the one
    reference, it still judges every tensor that way (it said 'no backend succeeded')."""
    v = validate(
        "examples/model_mlp.py:grads", cases=["mlp"], references=["numeric"], channel=worker
    )
    assert v.ok, v.text()
    assert set(v.agreement["baseline"]) == {"numeric"}
    assert (v.agreement["verdict"] == "agree").all()


@pytest.mark.parametrize("references", ["all", "numeric"])
def test_a_reference_named_by_a_string_is_one_name(references, worker):
    v = validate(
        "examples/model_mlp.py:grads", cases=["mlp"], references=references, channel=worker
    )
    assert "numeric" in v.references and v.ok


def test_no_reference_at_all_is_refused():
    with pytest.raises(ValueError, match="at least one reference"):
        validate("examples/model_mlp.py:grads", cases=["mlp"], references=[])


ATAN = '''
import numpy as np
from harness.cases import Case


class AtanLayer(Case):
    """L = Σ atan(x W): the tape has no atan, so only finite differences judge it."""

    name, family = "atan_layer", "user"

    def setup(self, rng):
        return {"W": rng.standard_normal((3, 5))}, {"x": rng.standard_normal((4, 3))}

    def loss(self, xp, p, inputs):
        return xp.sum(xp.atan(inputs["x"] @ p["W"]))


class Chaotic(Case):
    """The logistic map for 200 steps at r ≈ 3.9: finite differences cannot resolve it."""

    name, family = "chaotic", "user"

    def setup(self, rng):
        return {"r": np.full(4, 3.9) + 0.01 * rng.standard_normal(4)}, {"x0": rng.uniform(0.2, 0.8, 4)}

    def loss(self, xp, p, inputs):
        x = inputs["x0"] + 0.0 * xp.atan(p["r"])
        for _ in range(200):
            x = p["r"] * x * (1.0 - x)
        return xp.sum(x)


def zeros(params, inputs):
    return {k: np.zeros_like(v) for k, v in params.items()}


def exact(params, inputs):
    r, x = params["r"], inputs["x0"].copy()
    dx = np.zeros_like(r)
    for _ in range(200):
        dx = x * (1 - x) + r * (1 - 2 * x) * dx
        x = r * x * (1 - x)
    return {"r": dx}
'''


def test_a_reference_that_was_unsupported_is_not_said_to_agree(tmp_path, worker):
    (tmp_path / "atan.py").write_text(ATAN)
    v = validate(
        f"{tmp_path / 'atan.py'}:zeros", cases=[f"{tmp_path / 'atan.py'}:AtanLayer"], channel=worker
    )
    said = v.text()
    assert "the references agree with each other" not in said
    assert "one reference (numeric)" in said


def test_an_inconclusive_case_is_not_said_to_agree(tmp_path, worker):
    (tmp_path / "atan.py").write_text(ATAN)
    v = validate(
        f"{tmp_path / 'atan.py'}:exact", cases=[f"{tmp_path / 'atan.py'}:Chaotic"], channel=worker
    )
    assert v.verdict != "agrees"
    assert "agrees with the references" not in v.text(), v.text()


SIN_AS_TANH = '''
import numpy as np


class SinAsTanh:
    """Says tanh, computes sin: its backward is right for its own forward."""

    stage = "tanh"

    @staticmethod
    def forward(x):
        return np.sin(x), x

    @staticmethod
    def backward(d_out, x):
        return d_out * np.cos(x)
'''


@pytest.mark.parametrize(
    "attr, source, references",
    [("LeakyAsRelu", LEAKY_RELU, ["numeric"]), ("SinAsTanh", SIN_AS_TANH, ["manual"])],
)
def test_a_plugin_checked_against_its_own_forward_alone_where_references_were_asked_does_not_agree(
    tmp_path, worker, attr, source, references
):
    """The references asked for do not apply (manual to a stage) or are left out (numeric at
    relu's kink): finite differences of the plug-in's own forward are all that is left, and
    they vouch only for the backward's consistency with a wrong forward. No success."""
    (tmp_path / "wrong.py").write_text(source)
    v = validate(
        f"{tmp_path / 'wrong.py'}:{attr}", form="stage", references=references, channel=worker
    )
    assert not v.ok and v.verdict == "no reference", v.text()
    assert "NO REFERENCE" in v.text()


def test_a_custom_stage_is_checked_against_its_own_forward_by_design(worker):
    """A custom stage has no reference by design (README): its own forward is its check."""
    v = validate("harness.zoo.stages:Swish", form="stage", channel=worker)
    assert v.ok, v.text()


def test_a_tap_flagged_along_directions_has_no_steps_to_walk_and_no_crash(worker):
    """Finite differences as the one reference see an unroll's tap along directions: a
    disagreement there names no step, and localisation says nothing rather than crash."""
    v = validate(
        "harness.zoo.models:elman_missing_dh_next",
        cases=[CATALOG["elman"](T=40)],
        references=["numeric"],
        channel=worker,
    )
    assert v.verdict == "disagrees" and not v.ok
    assert "h" in set(v.mine.loc[~v.mine["ok"].astype(bool), "tensor"])
