"""Custom VJPs inside a framework (--as torch-function, --as jax-custom-vjp): the user's
backward, called directly and judged raw, against finite differences of its own forward
and, with --case, against the tape, torch and jax on a plain forward of the same math."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import validate
from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_vjp.py"


@pytest.mark.parametrize(
    ("attr", "form"), [("TorchTanhLayer", "torch-function"), ("jax_tanh_layer", "jax-custom-vjp")]
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_examples_agree_alone_and_against_the_references_of_a_plain_case(
    attr, form, dtype, worker
):
    alone = validate(f"{EXAMPLE}:{attr}", form=form, dtype=dtype, channel=worker)
    assert alone.ok, alone.text()
    assert alone.references == []  # finite differences of its own forward only
    case = f"{EXAMPLE}:TanhLayer"
    paired = validate(
        f"{EXAMPLE}:{attr}",
        form=form,
        cases=[case],
        dtype=dtype,
        channel=worker,
        references=["all"],
    )
    assert paired.ok, paired.text()
    ran = set(paired.agreement["backend"]) | set(paired.agreement["baseline"])
    assert ran >= {"reference", "torch", "jax", "numeric"}
    assert {"x", "W", "b"} <= set(paired.agreement["tensor"])


def test_the_form_is_guessed_from_the_object(capsys):
    assert main(["validate", f"{EXAMPLE}:TorchTanhLayer", "--quiet"]) == 0
    assert "(torch-function)" in capsys.readouterr().out


def test_a_bias_gradient_torch_would_have_summed_is_a_wrong_shape():
    """Through torch's autograd the (4, 5) gradient of a (5,) bias is summed back for you;
    called directly, it is what it is."""
    v = validate("harness.zoo.frameworks:TorchTanhBiasNotSummed", form="torch-function")
    faults = v.fault_table.set_index("tensor")
    assert faults.loc["b", "fault"] == "wrong shape" and "(4, 5)" in faults.loc["b", "message"]


def test_a_missing_gradient_for_an_input_that_needs_one_is_named():
    v = validate("harness.zoo.frameworks:TorchTanhNoWeightGradient", form="torch-function")
    faults = v.fault_table.set_index("tensor")
    assert faults.loc["W", "fault"] == "wrong type" and "None" in faults.loc["W", "message"]


def test_a_function_with_no_inputs_and_no_case_is_told_what_it_needs(tmp_path):
    (tmp_path / "f.py").write_text("""
import torch


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g
""")
    v = validate(f"{tmp_path / 'f.py'}:Square", form="torch-function")
    assert not v.ok and "--case" in v.text() and "inputs(rng)" in v.text()


def test_a_large_function_is_checked_along_directions_and_a_wrong_backward_flagged(tmp_path):
    (tmp_path / "big.py").write_text("""
import torch


class Big(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W):
        ctx.save_for_backward(x, W)
        return torch.tanh(x @ W)

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        dz = g * (1 - torch.tanh(x @ W) ** 2)
        return dz @ W.T, x.T @ dz * 1.001  # W's gradient 0.1% too large

    @staticmethod
    def inputs(rng):
        return rng.standard_normal((8, 30)), rng.standard_normal((30, 30)) / 6
""")
    v = validate(f"{tmp_path / 'big.py'}:Big", form="torch-function")
    runs = v.comparison.runs.set_index("backend")
    assert runs.loc["plugin:Big(fd)", "method"] == "directional"
    assert not v.ok
    faults = v.fault_table
    assert list(faults.loc[faults["fault"] == "disagrees with own forward", "tensor"]) == ["W"]
