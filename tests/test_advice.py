"""The diagnostics say what the numbers show: a constant factor, float32 rounding, a
wrong forward, a rank mismatch — not advice that fits another bug."""

from __future__ import annotations

import pytest

from harness import validate
from harness.cases import CATALOG
from harness.cli import main

PLUGINS = """
import numpy as np

from harness.zoo.models import manual


def scaled(p, x, case):  # every gradient × (1 + 1e-6), as a silent rescaling would
    out = manual(p, x, case)
    out["grads"] = {k: v * (1 + 1e-6) for k, v in out["grads"].items()}
    out["taps"] = {k: v * (1 + 1e-6) for k, v in out["taps"].items()}
    return out


def clipped(p, x, case):  # every gradient halved, as a clip to half the norm would
    out = manual(p, x, case)
    return {"grads": {k: v * 0.5 for k, v in out["grads"].items()}}


def zeroed(p, x, case):  # every gradient 0, as one never accumulated would be
    out = manual(p, x, case)
    return {"grads": {k: np.zeros_like(v) for k, v in out["grads"].items()}}


def in_float32(p, x, case):  # the arithmetic in float32, the answer cast back to float64
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    x32 = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in x.items()}
    out = manual(p32, x32, case)
    return {"grads": {k: np.asarray(v, dtype=np.float64) for k, v in out["grads"].items()}}


def wrong_targets(p, x, case):  # the forward's targets off by a constant: another loss
    shifted = {**x, "Y": x["Y"] - 0.1}
    return manual(p, shifted, case)


def missing_w1(p, x, case):  # every tap right, W1's gradient left out
    out = manual(p, x, case)
    del out["grads"]["W1"]
    return out


def nan_w1(p, x, case):  # every tap right, W1's gradient NaN
    out = manual(p, x, case)
    out["grads"]["W1"] = out["grads"]["W1"] * np.nan
    return out


def bias_as_vector(p, x):  # card_sigmoid_unit's scalar b, returned with shape (1,)
    z = 0.5 * (1 + np.tanh(0.5 * (x["X"] @ p["w"] + p["b"])))
    da = (z - x["t"]) / len(z) * z * (1 - z)
    return {"w": x["X"].T @ da, "b": np.array([da.sum()])}
"""


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    path = tmp_path_factory.mktemp("advice") / "plugins.py"
    path.write_text(PLUGINS)
    return path


def findings(plugins, attr, case):
    v = validate(f"{plugins}:{attr}", form="model", cases=[case], references=["reference"])
    return v, " | ".join(f.text for f in v.findings)


MLP = CATALOG["mlp"](depth=3, width=5, D=4, C=3, N=6)
ELMAN = CATALOG["elman"](T=6, H=3)


@pytest.mark.parametrize(("attr", "factor"), [("scaled", "1.000001"), ("clipped", "0.5")])
def test_a_constant_factor_is_named_as_such(plugins, attr, factor):
    v, text = findings(plugins, attr, MLP)
    assert not v.ok
    assert "constant factor" in text and f"× {factor}" in text
    common = next(f for f in v.findings if f.topic == "pattern")
    assert common.factor == pytest.approx(float(factor), rel=1e-6) and common.bad
    assert "transpose" not in text and "sum over the batch" not in text


def test_a_gradient_of_zeros_is_named_as_such(plugins):
    v, text = findings(plugins, "zeroed", MLP)  # a factor of 0 has no 1/n to show
    assert not v.ok
    assert "zero where the references are not" in text and "constant factor" not in text


def test_float32_arithmetic_in_a_float64_run_is_named_as_such(plugins):
    v, text = findings(plugins, "in_float32", MLP)
    assert not v.ok
    assert "float32" in text and "rounding" in text
    assert "transpose" not in text


def test_a_wrong_forward_leads_the_diagnostics(plugins):
    v, text = findings(plugins, "wrong_targets", ELMAN)
    assert not v.ok
    first = next(f for f in v.findings if f.bad)
    assert first.what == "forward" and "the forward differs" in first.text
    assert "computed from different values" in first.text
    assert "readout" not in text


def test_a_one_element_vector_for_a_scalar_is_a_rank_mismatch(plugins):
    v, text = findings(plugins, "bias_as_vector", CATALOG["card_sigmoid_unit"]())
    assert "wrong shape" in text and "rank mismatch" in text
    assert "not summed over the batch" not in text


def test_an_import_failure_prints_no_grid_against_itself(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    code = main(
        ["validate", f"{tmp_path / 'broken.py'}:grads", "--case", "mlp", "--reference", "reference"]
    )
    out = capsys.readouterr().out
    assert code == 1 and "import error" in out
    assert "vs plugin:grads" not in out


@pytest.mark.parametrize("attr", ["missing_w1", "nan_w1"])
def test_the_stage_after_the_taps_is_blamed_only_for_values_that_disagree(plugins, attr):
    """A missing gradient or a NaN is its own fault: no advice on how a gradient is formed."""
    v, _ = findings(plugins, attr, MLP)
    assert not v.ok and any(f.bad and f.tensor == "W1" for f in v.findings)
    assert not [f for f in v.findings if f.topic == "localised" and f.bad]
