"""The bench times what each backend prepares (``Backend.prepare``): the same loss and
gradient as that backend's ``run``, looked up through the registry, with no run code of
the bench's own."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.backends import REGISTRY, get_backend
from harness.backends.base import Backend, NotApplicable, Prepared
from harness.bench.runners import BENCH_BACKENDS, GPU_BACKENDS, prepare
from harness.cases import CATALOG

pytest.importorskip("torch")
pytest.importorskip("jax")


def loss_and_grads(backend: str, params, answer) -> tuple[float, dict[str, np.ndarray]]:
    """(loss, dL/dθ by name) from what ``backend``'s ``gradient()`` returns."""
    if isinstance(answer, dict):  # reference: the grads alone; its loss is the objective's
        return math.nan, answer
    if isinstance(answer[0], dict):  # manual's MLP, the parameters' backward: (grads, dL/dh)
        return math.nan, answer[0]
    if backend == "torch":  # the grads alone, in the order of the parameters
        return math.nan, {k: g.numpy() for k, g in zip(params, answer, strict=True)}
    loss, grads = answer[:2]  # manual: (loss, grads, ...), jax: (loss, grads)
    return float(loss), {k: np.asarray(v) for k, v in grads.items()}


@pytest.mark.parametrize("name", ["lstm", "mlp"])
@pytest.mark.parametrize("backend", BENCH_BACKENDS)
def test_the_bench_times_the_loss_and_gradient_of_the_backends_own_run(backend, name):
    """What the bench times of a backend computes the Result of that backend's ``run``."""
    options = {"T": 4, "H": 3, "D": 2, "B": 2} if name == "lstm" else {"width": 4, "N": 3}
    case = CATALOG[name](**options)
    params, inputs = case.build(0)
    result = get_backend(backend).gradient(case, params, inputs, "float64")
    prepared = prepare(backend, case, params, inputs)
    objective = float(np.asarray(prepared.objective()))
    loss, grads = loss_and_grads(backend, params, prepared.gradient())
    assert math.isclose(objective, result.loss, rel_tol=1e-12)
    assert math.isnan(loss) or math.isclose(loss, result.loss, rel_tol=1e-12)
    assert set(grads) == set(params)
    for k in params:
        np.testing.assert_allclose(grads[k], result.grads[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BENCH_BACKENDS)
def test_the_bench_prepares_through_the_registrys_backend(backend, monkeypatch):
    """``runners.prepare`` hands over to the registered class's ``prepare``, whatever it
    returns; it has no per-backend path of its own."""
    handed = Prepared(lambda: "objective", lambda: "gradient")
    asked = []

    def prepared_by_the_backend(self, case, params, inputs, device="cpu"):
        asked.append((self.name, device))
        return handed

    monkeypatch.setattr(type(get_backend(backend)), "prepare", prepared_by_the_backend)
    case = CATALOG["mlp"](width=4, N=3)
    params, inputs = case.build(0)
    assert prepare(backend, case, params, inputs) is handed
    assert asked == [(backend, "cpu")]


def test_a_backend_the_bench_does_not_time_is_refused():
    case = CATALOG["mlp"](width=4, N=3)
    params, inputs = case.build(0)
    with pytest.raises(
        ValueError, match="bench times reference, manual, torch, jax; not 'numeric'"
    ):
        prepare("numeric", case, params, inputs)
    with pytest.raises(NotApplicable):  # the base class prepares nothing
        get_backend("numeric").prepare(case, params, inputs)
    with pytest.raises(ValueError, match="'manual' runs on the CPU only, not on 'cuda'"):
        prepare("manual", case, params, inputs, "cuda")


def test_the_gpu_backends_are_those_whose_class_says_so():
    assert GPU_BACKENDS == ["torch", "jax"]
    assert all(issubclass(type(get_backend(name)), Backend) for name in REGISTRY)
    assert {name for name in REGISTRY if get_backend(name).gpu} == set(GPU_BACKENDS)


def _chain_gradient(n_ops: int, x: float = 0.5) -> tuple[float, float]:
    """tanh applied n times to x, and its derivative, by the chain rule in float64."""
    y, g = x, 1.0
    for _ in range(n_ops):
        y = math.tanh(y)
        g *= 1 - y * y
    return y, g


@pytest.mark.parametrize("backend", ["manual", "reference", "torch", "jax"])
def test_the_per_op_chain_is_the_backends_own(backend, monkeypatch):
    """The per-op bench times the tanh chain each backend prepares itself
    (``Backend.prepare_chain``): the chain's value and derivative, and ``costs`` asks the
    registered class for it rather than running a framework of its own."""
    from harness.bench import costs

    prepared = get_backend(backend).prepare_chain(7)
    value, slope = _chain_gradient(7)
    assert float(np.asarray(prepared.objective()).reshape(-1)[0]) == pytest.approx(value, rel=1e-14)
    assert float(np.asarray(prepared.gradient()).reshape(-1)[0]) == pytest.approx(slope, rel=1e-12)
    handed = Prepared(lambda: 0.0, lambda: 0.0)
    monkeypatch.setattr(
        type(get_backend(backend)), "prepare_chain", lambda self, n, device="cpu": handed
    )
    rows = costs.per_op_overhead(3, [backend], "cpu", 1)
    assert [r["backend"] for r in rows] == [backend]


def test_a_backend_without_a_chain_says_so():
    with pytest.raises(NotApplicable):
        get_backend("numeric").prepare_chain(3)
