"""The functional form: an engine in the style of HIPS autograd or JAX, which differentiates
a function (``grad(f)``, ``value_and_grad(f)``) rather than a tape after the fact.

A functional engine is an object (or a class, or a module's namespace held in one) with

    xp                       the array namespace its traced functions run on (autograd.numpy,
                             jax.numpy): the array API names the cases use, or numpy's
    value_and_grad(f)        -> g, g(arg) = (f(arg), df/darg), arg a dict of arrays; or
    grad(f)                  -> g, g(arg) = df/darg (the value is then computed apart)

and may bring its own ``sigmoid``, ``relu``, ``logsumexp``, ``softmax_cross_entropy``
(else they are built from ``xp``'s functions, as ``harness.namespace`` writes them). The case's
loss becomes ``f({"params": θ, "taps": ε})``: a tap adds a zero ε to the tapped value (per
step inside a scan), so df/dε = dL/d(tap), as the JAX backend does; the engine sees only
its own arrays.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from harness.namespace import Namespace
from harness.validation.forms.base import Form
from harness.validation.forms.tensor_engine import built, instantiate, lacking

EXTRAS = ("sigmoid", "relu", "logsumexp", "softmax_cross_entropy")


class FunctionalNamespace(Namespace):
    """``xp`` for a case traced by a functional engine: ``engine.xp``, taps as perturbations."""

    name = "functional"

    def __init__(self, engine: Any, taps: dict[str, Any]) -> None:
        super().__init__()
        self.standard = engine.xp
        self.taps = taps
        for extra in EXTRAS:
            own = getattr(engine, extra, None)
            setattr(self, extra, own if callable(own) else built(extra, getattr(self, extra)))

    def _watch(self, name, x, step):
        return x + (self.taps[name] if step is None else self.taps[name][step])

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("_"):
                raise
            raise lacking(name, self.standard, "the engine's xp") from None


def is_functional(obj: Any) -> bool:
    return hasattr(obj, "xp") and (
        callable(getattr(obj, "value_and_grad", None)) or callable(getattr(obj, "grad", None))
    )


def run_functional(engine: Any, case: Any, params: dict, inputs: dict) -> dict[str, Any]:
    """The case's loss, dL/dθ per parameter and dL/d(tap) per tap, by the engine."""
    from harness.backends.numeric import NumpyNamespace

    engine = instantiate(engine)
    if not is_functional(engine):
        raise AttributeError("a functional engine needs xp and value_and_grad(f) or grad(f)")
    probe = NumpyNamespace()  # which taps there are, and their shapes, from plain numpy
    case.loss(probe, {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}, inputs)
    dtype = next(iter(params.values())).dtype if params else np.float64
    zeros = {}
    for name, seen in probe.values.items():
        shape = seen[0].shape if probe.tap_steps[name] is None else (len(seen), *seen[0].shape)
        zeros[name] = np.zeros(shape, dtype)

    def f(arg):
        return case.loss(FunctionalNamespace(engine, arg["taps"]), arg["params"], inputs)

    start = time.perf_counter()
    arg = {"params": dict(params), "taps": zeros}
    if callable(getattr(engine, "value_and_grad", None)):
        loss, grads = engine.value_and_grad(f)(arg)
    else:
        loss, grads = f(arg), engine.grad(f)(arg)
    seconds = time.perf_counter() - start
    return {
        "grads": dict(grads["params"]),
        "taps": dict(grads.get("taps", {})),
        "loss": loss,
        "seconds": seconds,
    }


class Functional(Form):
    name = "functional"
    may_lack = True
    described = "a functional engine (xp and grad or value_and_grad)"

    def detects(self, obj: Any) -> bool:
        return is_functional(obj) and not hasattr(obj, "tensor")

    def call(self, engine: Any, case: Any, params: dict, inputs: dict) -> Any:
        out = run_functional(engine, case, params, inputs)
        return {"grads": out["grads"], "taps": out["taps"], "loss": out["loss"]}


__all__ = ["Functional", "FunctionalNamespace", "is_functional", "run_functional"]
