"""The engine form: your autodiff engine runs the case itself, through ``xp``.

An engine is an object (or a class, instantiated once per call) with

    tensor(array, requires_grad) -> T      a tensor of your type from a numpy array
    grad(loss, wrt) -> [array, ...]         dL/dw for each w in wrt (a list of T); None = 0
    numpy(t) -> np.ndarray                  the value of a tensor

and, on T, the array API functions the cases use (``harness/namespace.py``), under the
standard's names:

    tanh exp log  sum mean (axis=None, keepdims=False)  reshape permute_dims concat stack

and, if it has them, the extras ``sigmoid relu logsumexp softmax_cross_entropy`` (where it
has not, they are built from its ``exp``, ``log``, ``where``, ``max``, … as
``harness.namespace.Namespace`` writes them). A function the engine lacks ends that case with
the function named, and the extra the case asked for where it was building one
(``MissingOp``: the case is unsupported, counted apart). A function the engine has under
numpy's name only (``concatenate`` for ``concat``, ``transpose`` for ``permute_dims``)
is no missing function but a misnamed one (``MisnamedOp``: a fault, with the standard's
name to give it). Which functions each catalog case calls: ``harness.validation.forms.
engine_needs`` and the README's table. T supports the Python operators ``+ - * / ** @``,
unary ``-``, indexing and slicing (``a[t]``, ``a[:, :H]``) and ``len()``, with numpy
broadcasting and Python numbers on either side. ``tap`` and ``scan`` are the harness's (a
plain loop): the engine never sees them. Parameters are made with ``requires_grad=True``,
float inputs with False (integer inputs, class labels, stay numpy arrays). ``wrt`` holds
the parameters and every tapped value (a tapped input is first re-made as a leaf), so
``grad`` must give the gradient of any tensor of the graph, not only of leaves.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from harness.namespace import EXTRAS, NUMPY_NAMES, Namespace, Unsupported
from harness.validation.forms.base import Form

ENGINE_METHODS = ("tensor", "grad", "numpy")


class MissingOp(Unsupported):
    """The engine lacks an array function the case needs: the case is unsupported there.
    ``facts``: ``missing`` (the function it lacks) and, where that was a building block
    of an extra, ``asked`` (the extra the case called)."""

    def __init__(self, missing: str, asked: str = "", where: str = "the engine") -> None:
        self.facts = {"missing": missing, "asked": asked or missing}
        self.missing, self.asked, self.where = missing, asked or missing, where
        super().__init__(self.message())

    def message(self) -> str:
        if self.asked == self.missing:
            return f"{self.where} has no array function {self.missing!r} (see harness/namespace.py)"
        return (
            f"{self.where} has no array function {self.asked!r}, nor {self.missing!r} to "
            "build it from (see harness/namespace.py)"
        )

    def building(self, asked: str) -> MissingOp:
        """The same missing function, said as a building block of ``asked``."""
        return type(self)(self.missing, asked, self.where)


class MisnamedOp(AttributeError):
    """The engine has a function the case needs under numpy's name, not the standard's:
    a fault (did you mean it?), not an unsupported case."""

    def __init__(self, standard: str, numpy_name: str, where: str = "the engine") -> None:
        self.facts = {"missing": standard, "has": numpy_name}
        super().__init__(
            f"{where} has no array function {standard!r} but has {numpy_name!r}: "
            f"did you mean it? the standard's name is `{standard}` (add "
            f"{standard} = {numpy_name})"
        )


def lacking(name: str, namespace: Any, where: str = "the engine") -> AttributeError:
    """What to raise for a function ``namespace`` lacks: misnamed, where it has numpy's
    name for it; else missing."""
    numpy_name = NUMPY_NAMES.get(name)
    if numpy_name is not None and callable(getattr(namespace, numpy_name, None)):
        return MisnamedOp(name, numpy_name, where)
    return MissingOp(name, where=where)


def built(extra: str, fn: Any) -> Any:
    """``fn``, an extra built from the engine's functions: a building block it lacks is
    said as what the case asked for (``sigmoid``, built from ``exp``)."""

    def extra_fn(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MissingOp as e:
            raise e.building(extra) from None

    return extra_fn


class MissingMethod(AttributeError):
    """The engine lacks a method the form needs (tensor, grad, numpy): it is not an engine."""


class EngineNamespace(Namespace):
    """``xp`` for a case on the engine: every array function is the engine's own; an extra
    the engine lacks is built from its standard functions."""

    name = "engine"

    def __init__(self, engine: Any, tensor_type: type, constants: set[int]) -> None:
        super().__init__()
        self.engine, self.tensor_type, self.constants = engine, tensor_type, constants
        self.standard = _Engine(engine)
        self.watched: dict[str, list[Any]] = {}
        for extra in EXTRAS:
            own = getattr(engine, extra, None)
            if extra in ("tap", "scan"):  # the harness's, never the engine's
                continue
            setattr(self, extra, own if callable(own) else built(extra, getattr(self, extra)))

    def _watch(self, name, x, step):
        if not isinstance(x, self.tensor_type) or id(x) in self.constants:
            value = self.engine.numpy(x) if isinstance(x, self.tensor_type) else np.asarray(x)
            x = self.engine.tensor(value, True)
        self.watched.setdefault(name, []).append(x)
        return x


class _Engine:
    """The engine's functions by name; a missing one is a ``MissingOp`` that names it."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._engine, name, None)
        if fn is None or name.startswith("_"):
            raise lacking(name, self._engine)
        return fn


def instantiate(engine: Any) -> Any:
    """A class is instantiated (a fresh engine per call); an instance is used as it is."""
    return engine() if isinstance(engine, type) else engine


def run_engine(engine: Any, case: Any, params: dict, inputs: dict) -> dict[str, Any]:
    """Run ``case`` through the engine: its loss, dL/dθ per parameter, dL/d(tap) per tap
    (a list per step for taps inside a scan). Values are returned as the engine gave them."""
    engine = instantiate(engine)
    for method in ENGINE_METHODS:
        if not callable(getattr(engine, method, None)):
            raise MissingMethod(f"the engine has no method {method!r} (needs: tensor, grad, numpy)")
    start = time.perf_counter()
    P = {k: engine.tensor(v, True) for k, v in params.items()}
    X = {
        k: engine.tensor(v, False) if np.issubdtype(v.dtype, np.floating) else v
        for k, v in inputs.items()
    }
    some = next(iter(P.values()), None)
    tensor_type = type(some) if some is not None else object
    constants = {id(v) for v in X.values() if isinstance(v, tensor_type)}
    ops = EngineNamespace(engine, tensor_type, constants)
    loss = case.loss(ops, P, X)
    watched = [(name, v) for name, values in ops.watched.items() for v in values]
    wrt = [*P.values(), *(v for _, v in watched)]
    grads = list(engine.grad(loss, wrt))
    if len(grads) != len(wrt):
        raise ValueError(f"engine.grad returned {len(grads)} gradients for {len(wrt)} tensors")
    seconds = time.perf_counter() - start
    zeros = {id(v): np.zeros(np.shape(engine.numpy(v)), dtype=engine.numpy(v).dtype) for v in wrt}
    grads = [zeros[id(v)] if g is None else g for v, g in zip(wrt, grads, strict=True)]
    out_grads = dict(zip(P, grads[: len(P)], strict=True))
    taps: dict[str, Any] = {}
    for (name, _), g in zip(watched, grads[len(P) :], strict=True):
        taps.setdefault(name, []).append(g)
    taps = {n: (gs if ops.tap_steps[n] is not None else gs[0]) for n, gs in taps.items()}
    return {
        "grads": out_grads,
        "taps": taps,
        "loss": engine.numpy(loss),
        "tap_steps": dict(ops.tap_steps),
        "seconds": seconds,
    }


class Engine(Form):
    name = "engine"
    may_lack = True
    described = "an engine (tensor, grad, numpy)"
    needs = ENGINE_METHODS
    peer = "engine"

    def detects(self, obj: Any) -> bool:
        return hasattr(obj, "tensor") and hasattr(obj, "grad")

    def call(self, engine: Any, case: Any, params: dict, inputs: dict) -> Any:
        return run_engine(engine, case, params, inputs)
