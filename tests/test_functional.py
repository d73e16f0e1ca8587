"""The functional form: an engine that differentiates a function (grad(f), value_and_grad(f)),
shown with HIPS autograd from the package index."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import validate
from harness.cases import CATALOG

pytest.importorskip("autograd")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = f"{ROOT / 'examples' / 'functional_autograd.py'}:Autograd"
# adbench_lstm at 64 characters, not its published 1024: HIPS autograd traces every
# elementwise op in Python (its validation: 7 s at the published size, 2 s at this one); the
# stacked layers, the taps and the carried state are the same at any length.
CASES = [
    "card_sigmoid_unit",
    "every_primitive",
    "mlp_relu_xent",
    CATALOG["adbench_lstm"](source="random", c=64),
    "gru",
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_hips_autograd_agrees_with_the_references(dtype):
    v = validate(
        EXAMPLE, form="functional", cases=CASES, dtype=dtype, references=["reference", "torch"]
    )
    assert v.ok, v.text()
    taps = v.agreement[
        (v.agreement["backend"] == "plugin:Autograd") & (v.agreement["kind"] == "tap")
    ]
    assert {"A", "B", "F", "h"} <= set(taps["tensor"])  # dL/d(tap), through the perturbations


def test_the_form_is_guessed_and_a_grad_only_engine_works(tmp_path):
    (tmp_path / "engines.py").write_text("""
import autograd
import autograd.numpy

from harness.namespace import numpy_like


class GradOnly:
    xp = numpy_like(autograd.numpy)
    grad = staticmethod(autograd.grad)


class HalfGradient:
    xp = numpy_like(autograd.numpy)

    @staticmethod
    def grad(f):
        g = autograd.grad(f)
        return lambda arg: {k: {n: v / 2 for n, v in d.items()} for k, d in g(arg).items()}
""")
    ok = validate(f"{tmp_path / 'engines.py'}:GradOnly", cases=["mlp"], references=["reference"])
    assert ok.form == "functional" and ok.ok, ok.text()
    wrong = validate(
        f"{tmp_path / 'engines.py'}:HalfGradient", cases=["mlp"], references=["reference"]
    )
    assert not wrong.ok and "× 0.5" in wrong.text()


def test_numpy_like_maps_the_standard_names_to_numpys():
    import autograd.numpy as anp
    import numpy as np
    from autograd import grad

    from harness.namespace import numpy_like

    xp = numpy_like(anp)
    x = np.arange(6.0).reshape(2, 3)
    g = grad(lambda a: xp.sum(xp.concat([a, xp.permute_dims(xp.reshape(a, (3, 2)), (1, 0))]) ** 2))(
        x
    )
    assert np.allclose(g, 2 * x + 2 * x)
