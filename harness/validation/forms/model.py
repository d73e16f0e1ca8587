"""The model form: your hand-written backprop for one named case.

    grads(params, inputs[, case]) -> {name: dL/dθ}  or  {"grads": …, "loss": L, "taps": {…}}
    jvp(params, inputs, tangent[, case]) -> {"loss": J_L·u, "taps": {tap: J_tap·u}}
    hvp(params, inputs, vector[, case])  -> {name: (H·v)_name}

The target is the function of the one mode asked for, or an object (a class, a module)
with ``grads``, ``jvp`` and ``hvp`` for several. It is checked against the references on
the case it names (``gradparity describe CASE`` prints the names and shapes).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.validation.forms.base import Form, NeedCases

MODE_FUNCTIONS = {"rev": "grads", "fwd": "jvp", "hvp": "hvp"}


def wants_case(fn: Any, position: int = 3) -> bool:
    """Does a model function take the Case, as its ``position``-th argument (3 for
    ``grads(params, inputs, case)``, 4 for ``jvp(params, inputs, tangent, case)``)? A
    parameter there with a default of its own (``bug=None``) is not one, unless it is
    named ``case``: the function is called without it."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params) or "case" in sig.parameters:
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (
        len(positional) >= position and positional[position - 1].default is inspect.Parameter.empty
    )


def model_function(obj: Any, mode: str, modes: tuple[str, ...]) -> tuple[Any, str]:
    """(the model plug-in's function for ``mode``, or None and why): its attribute
    ``grads``, ``jvp`` or ``hvp``; else the target itself, where it is callable and the
    one mode asked for (or "rev" without any of those attributes)."""
    attr = MODE_FUNCTIONS[mode]
    fn = getattr(obj, attr, None)
    if callable(fn):
        return fn, ""
    has_any = any(callable(getattr(obj, a, None)) for a in MODE_FUNCTIONS.values())
    alone = len(modes) == 1 and mode in modes  # the one mode asked for
    if callable(obj) and (alone or (mode == "rev" and "rev" in modes and not has_any)):
        return obj, ""
    what = {"rev": "gradients", "fwd": "forward mode", "hvp": "H·v"}[mode]
    return None, (
        f"the plug-in supplies no {what}: give it a `{attr}` attribute "
        f"({attr}(params, inputs{'' if mode == 'rev' else ', direction'}[, case])), "
        "or ask for that mode alone"
    )


def _copy(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def _mode_call(mode: str, direction: dict):
    """The call of a model's ``jvp`` or ``hvp``: (params, inputs, direction[, case]). A
    JVP's {"loss", "taps"} is passed on as {"grads": {}, "loss", "taps"}."""

    def call(fn, case, params, inputs):
        d = _copy(direction)
        out = fn(params, inputs, d, case) if wants_case(fn, 4) else fn(params, inputs, d)
        if mode == "fwd" and isinstance(out, Mapping):
            return {"grads": {}, "loss": out.get("loss"), "taps": out.get("taps")}
        return out

    return call


class Model(Form):
    name = "model"
    described = "a callable (model)"
    modes = ("rev", "fwd", "hvp")
    peer = "model"

    def detects(self, obj: Any) -> bool:
        """A function, or an object with ``grads``, ``jvp`` or ``hvp``."""
        return callable(obj) or any(
            callable(getattr(obj, a, None)) for a in MODE_FUNCTIONS.values()
        )

    def call(self, fn: Any, case: Any, params: dict, inputs: dict) -> Any:
        return fn(params, inputs, case) if wants_case(fn) else fn(params, inputs)

    def calling(self, obj, mode, modes, direction):
        fn, why = model_function(obj, mode, modes)
        if fn is None:
            return None, None, why
        return fn, (self.call if mode == "rev" else _mode_call(mode, direction)), ""

    def checked_on(self, info, cases, problem, target, resolve):
        """The case it names (a model fits one case's parameters; none named is bad usage)."""
        if problem is None and not (list(cases or []) or list(info.get("cases") or [])):
            raise NeedCases(
                f"a model plug-in fits one case's parameters: name the case "
                f"(--case NAME; in Python, validate(..., cases=[...]); `gradparity describe NAME` "
                f"shows what {target} must return)"
            )
        return super().checked_on(info, cases, problem, target, resolve)

    def for_peer(self, obj: Any, mode: str) -> Any:
        fn, why = model_function(super().for_peer(obj, mode), mode, (mode,))
        if fn is None:
            raise ValueError(why)
        return fn
