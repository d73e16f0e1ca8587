"""The console's findings are data (``console.found``): each carries its facts, and its
line is rendered from a template over them; a few golden lines keep the wording honest."""

from __future__ import annotations

import numpy as np

from harness import console
from harness.compare import Comparison
from harness.compare.text import Topic
from harness.result import Identity, Result

W = np.array([1.0, 2.0, 3.0])


def r(case: str, backend: str, **kw) -> Result:
    kw.setdefault("loss", 1.0)
    return Result(case, backend, "float64", **kw)


def comparison() -> Comparison:
    return Comparison(
        [
            r("a", "x", grads={"w": W}),
            r("a", "y", grads={"w": W + [0, 0.5, 0]}),
            r("a", "z", grads={"w": W}),
            r("c", "x", grads={"w": W}),
            r("c", "y", error="boom"),
            r("e", "x", mode="fwd", tangent=1.0, identity=Identity("transpose", 1.0, 1.0, 1.0)),
            r("e", "y", mode="fwd", tangent=2.0, identity=Identity("transpose", 1.0, 1.5, 1.0)),
            r("f", "x", grads={"w": W}),
            r("f", "y", unsupported="'sigmoid' (built from exp)"),
            r("f", "z", skipped="not for this case"),
        ],
        "x",
    )


def test_each_finding_carries_its_facts():
    found = {(f.topic, f.case, f.mode, f.backend): f for f in console.found(comparison())}
    disagrees = found[Topic.DISAGREES, "a", "rev", "y"]
    assert disagrees.tensor == "w" and disagrees.counts == (1, 3) and disagrees.bad
    assert disagrees.element == "(1,)" and disagrees.values == (2.5, 2.0)
    odd = found[Topic.ODD_ONE_OUT, "a", "rev", "y"]
    assert odd.tensor == "w" and odd.caution and not odd.bad
    failed = found[Topic.RUN_FAILED, "c", "rev", "y"]
    assert failed.facts["error"] == "boom" and failed.facts["tensors"] == "2 tensors"
    tangent = found[Topic.DISAGREES, "e", "fwd", "y"]
    assert tangent.tensor == "loss" and tangent.values == (2.0, 1.0)
    assert found[Topic.IDENTITY, "e", "fwd", "y"].facts["identity"] == "transpose"
    assert found[Topic.IDENTITIES_HELD, "", "rev", ""].counts == (1, 2)
    assert found[Topic.UNSUPPORTED, "", "rev", "y"].facts["names"] == "f"
    assert found[Topic.SKIPPED, "", "rev", "z"].facts["why"] == "not for this case"


def test_golden_lines():
    lines = console.findings(comparison())
    assert lines == [
        "  ✗ a: param 'w', y vs x: 1/3 elements disagree; worst at (1,): got 2.5, expected 2 "
        "(off by 0.5), 1.67e-01 of the scale 3",
        "  ✗ c: y failed, 2 tensors not compared: boom",
        "  ✗ e (fwd): loss 'loss', y vs x: the tangent disagrees, 1/1 elements; worst at (): "
        "got 2, expected 1 (off by 1), 1.00e+00 of the scale 1",
        "  ! a: param 'w': y is the odd one out (the others agree)",
        "  ✗ e (fwd): transpose identity broken — y's J_L·u (fwd) = 1 but ⟨∇L, u⟩ (rev) = 1.5: "
        "its two sides cannot both be right (|lhs − rhs| = 5.0e-01 of the scale, allowed 1e-10)",
        "  identities: 1 transpose held (each autodiff backend's modes against each other; "
        "worst 0.0e+00 of the scale)",
        "  – y unsupported, 'sigmoid' (built from exp): 1 case, f",
        "  - z skipped on f: not for this case",
    ]
