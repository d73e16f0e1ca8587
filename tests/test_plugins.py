"""The engine and stage forms: the tiny engine on the whole catalog, the stages against
their definitions and against finite differences of the plug-in's own forward, and the
protocols' errors."""

from __future__ import annotations

import textwrap

import pytest

from harness import validate
from harness.cases import CATALOG
from harness.validation.plugin_calls import detect_form
from harness.validation.stage_cases import STAGES, StageVjpCase


def small(cls):
    """Every case of the catalog, at a size a test can afford."""
    if cls.name == "adbench_lstm":
        return cls(source="random", l=2, c=5, b=3)
    if cls.family == "mlp":
        return cls(depth=3, width=5, D=4, C=3, N=6)
    if cls.family in ("elman", "lstm", "gru"):
        return cls(T=5, H=3, D=2, B=2)
    return cls()


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stages")
    (folder / "mine.py").write_text(
        textwrap.dedent('''
        import numpy as np


        class WrongForward:
            """tanh's backward, on a forward that is not tanh."""
            stage = "tanh"

            def forward(self, x):
                y = np.tanh(x) + 0.1 * x
                return y, x

            def backward(self, dy, x):
                return dy * (1 - np.tanh(x) ** 2 + 0.1)


        class NoPair:
            stage = "tanh"

            def forward(self, x):
                return np.tanh(x)

            def backward(self, dy, cache):
                return dy


        class TooFew:
            stage = "linear"

            def forward(self, x, W, b):
                return x @ W + b, (x, W)

            def backward(self, dz, cache):
                return dz @ cache[1].T, cache[0].T @ dz


        class Cube:
            stage = "custom"
            names = ("u", "v")

            def inputs(self, rng):
                return rng.standard_normal(4), rng.standard_normal(4)

            def forward(self, u, v):
                return (u ** 3 * v, u + v), (u, v)

            def backward(self, d_out, cache):
                (d1, d2), (u, v) = d_out, cache
                return d1 * 3 * u ** 2 * v + d2, d1 * u ** 3 + d2


        class Unknown:
            stage = "conv2d"

            def forward(self, x):
                return x, x

            def backward(self, d, c):
                return d


        class NoGrad:
            def tensor(self, a, requires_grad=False):
                return a


        class NoOps:
            def tensor(self, a, requires_grad=False):
                return a

            def grad(self, loss, wrt):
                return [None] * len(wrt)

            def numpy(self, t):
                return t


        NOT_A_PLUGIN = 42
    ''')
    )
    return folder


def test_the_tiny_engine_agrees_on_the_whole_catalog(worker):
    cases = [small(cls) for cls in CATALOG.values() if not cls.slow]
    for dtype in ("float64", "float32"):
        v = validate(
            "harness.zoo.tiny_engine:TinyEngine",
            form="engine",
            cases=cases,
            dtype=dtype,
            references=["reference"],
            channel=worker,
        )
        assert v.ok, v.text()
        assert set(v.mine["case"]) == {c.label for c in cases}
        # every parameter and every tap of every case, compared
        assert (v.mine["kind"] == "tap").sum() == sum(
            len(r.taps) for r in v.comparison.results if r.backend == "reference"
        )


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_definition_runs_on_the_references(stage):
    from harness.runner import compare_backends

    case = StageVjpCase(stage)
    comparison = compare_backends([case], ["reference", "torch"], baseline="reference")
    assert comparison.all_agree, comparison.agreement.to_string()


def test_relu_stage_inputs_include_exact_zeros():
    params, _ = StageVjpCase("relu").build()
    assert (params["x"] == 0).sum() >= 4 and (abs(params["x"][params["x"] != 0]) >= 0.1).all()


def test_a_backward_that_matches_a_wrong_forward_still_shows(plugins, worker):
    v = validate(f"{plugins / 'mine.py'}:WrongForward", references=["reference"], channel=worker)
    assert not v.ok
    table = v.agreement.set_index(["backend", "kind"])
    assert not table.loc[("plugin:WrongForward", "loss"), "ok"]  # its forward is not tanh
    assert not table.loc[("plugin:WrongForward(fd)", "param"), "ok"]  # nor is its derivative
    assert not any(f.fault == "disagrees with own forward" for f in v.faults)  # but consistent


def test_a_custom_stage_is_checked_against_its_own_forward(plugins, worker):
    v = validate(f"{plugins / 'mine.py'}:Cube", channel=worker)
    assert v.ok, v.text()
    assert v.comparison.baseline == "plugin:Cube(fd)" and set(v.mine["tensor"]) >= {"u", "v"}
    v = validate("harness.zoo.stages:SwishMissingProductRule", channel=worker)
    assert [f.fault for f in v.faults] == ["disagrees with own forward"]
    assert "worst at" in v.faults[0].message


@pytest.mark.parametrize("attr, kind, phrase", [
    ("NoPair", "exception", "forward returned numpy.ndarray; it must return (out, cache)"),
    ("TooFew", "exception", "backward returned 2 gradients for the inputs (x, W, b)"),
    ("Unknown", "missing attribute", "stage = 'conv2d' is not one of linear"),
    ("NoGrad", "missing attribute", "lacks grad, numpy, which the engine form needs"),
    ("NoOps", "unsupported", "the engine has no array function 'sum'"),
    ("NOT_A_PLUGIN", "wrong type", "is neither a callable (model)"),
])  # fmt: skip
def test_protocol_errors_are_named(plugins, worker, attr, kind, phrase):
    form = {"NoGrad": "engine", "NoOps": "engine"}.get(attr)
    v = validate(
        f"{plugins / 'mine.py'}:{attr}",
        form=form,
        cases=["card_affine_square"],
        references=["reference"],
        channel=worker,
    )
    assert not v.ok
    assert v.faults[0].fault == kind and phrase in v.faults[0].message, v.faults[0]


@pytest.mark.parametrize("obj, form", [
    (lambda p, x: {}, "model"),
    (type("S", (), {"stage": "tanh", "forward": None, "backward": None}), "stage"),
    (type("E", (), {"tensor": None, "grad": None}), "engine"),
    (3, "unknown"),
])  # fmt: skip
def test_the_form_is_guessed_from_the_object(obj, form):
    assert detect_form(obj) == form
