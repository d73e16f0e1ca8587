"""Verdicts a CI job can trust: the worst element named on a line is the one whose error
the line reports."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import validate
from harness.cases import CATALOG
from harness.compare import compare_arrays
from harness.tolerances import TOLERANCES

AUTODIFF = TOLERANCES[("autodiff", "float64")]
MLP = dict(depth=3, width=5, D=4, C=3, N=6)  # the zoo's small MLP


# --- 2. the worst element and the metric beside it ----------------------------------------------


def _scales(b: np.ndarray, stepped: bool) -> np.ndarray:
    """s_i: max|b| over the tensor, or over each step (axis 0) of a stepped tap."""
    if stepped and b.ndim > 1:
        return np.broadcast_to(np.max(np.abs(b), axis=tuple(range(1, b.ndim)), keepdims=True),
                               b.shape)  # fmt: skip
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
        v = validate("harness.validation.zoo.models:weight_transposed",
                     cases=[CATALOG["mlp"](**MLP)], references=["reference", "torch"],
                     dtype=dtype, isolate=False)  # fmt: skip
        row = v.mine[v.mine["tensor"] == "W2"].iloc[0]
        by = {r.backend: r.grads for r in v.comparison.results}
        got, expected = by[v.plugin]["W2"], by[row["baseline"]]["W2"]
        largest = np.unravel_index(int(np.argmax(np.abs(got - expected))), expected.shape)
        assert row["worst_index"] == str(tuple(int(i) for i in largest)), dtype
        line = next(f.text for f in v.findings if f.what == "disagrees" and f.tensor == "W2")
        assert f"worst at {row['worst_index']}" in line
        assert f"{row['worst_rel_err']:.2e} of the scale {row['worst_scale']:.3g}" in line
