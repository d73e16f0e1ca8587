"""The cases use the array API standard and gradparity's extras, and nothing else: every
catalog case runs on array-api-strict (a namespace that has the standard's functions and
refuses everything else) and gives the loss numpy gives."""

from __future__ import annotations

import numpy as np
import pytest

from harness.backends.numeric import NumpyNamespace
from harness.cases import CATALOG
from harness.namespace import Namespace

strict = pytest.importorskip("array_api_strict")


class StrictNamespace(Namespace):
    """xp on array-api-strict arrays; the extras as harness.namespace writes them (from the standard
    alone); a tap is the identity."""

    name = "strict"
    standard = strict


def strict_arrays(arrays: dict) -> dict:
    return {k: strict.asarray(v) for k, v in arrays.items()}


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_catalog_case_runs_on_array_api_strict(name):
    """The strict run's loss equals numpy's to a few ulps (the extras are written
    differently: sigmoid as 1/(1+e^-x), logsumexp with its own shift)."""
    case = CATALOG[name]()
    params, inputs = case.build(0)
    loss = case.loss(StrictNamespace(), strict_arrays(params), strict_arrays(inputs))
    assert isinstance(loss, strict._array_object.Array) and loss.shape == ()
    expected = float(case.loss(NumpyNamespace(), params, inputs))
    assert float(loss) == pytest.approx(expected, rel=1e-12, abs=1e-300)


EXAMPLE_CASES = ["examples/my_lstm.py:MyLSTM", "examples/custom_vjp.py:TanhLayer"]


@pytest.mark.parametrize("spec", EXAMPLE_CASES)
def test_every_example_case_runs_on_array_api_strict(spec):
    from pathlib import Path

    from harness.target import load, parse_target

    root = Path(__file__).resolve().parents[1]
    case = load(parse_target(str(root / spec)))()  # imported here: this test's own choice
    params, inputs = case.build(0)
    out = case.loss(StrictNamespace(), strict_arrays(params), strict_arrays(inputs))
    expected = case.loss(NumpyNamespace(), params, inputs)
    assert np.allclose(np.asarray(out), expected, rtol=1e-12, atol=0)


def test_a_function_outside_the_standard_fails_on_strict():
    """The check can fail: numpy's own name, not the standard's, is refused."""
    xp = StrictNamespace()
    with pytest.raises(AttributeError):
        xp.concatenate([strict.asarray(np.ones(2))])
