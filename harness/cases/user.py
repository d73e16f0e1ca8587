"""Your own computation as a case: a ``Case`` subclass in your file, or a plain loss
function turned into one with ``@case``.

    from harness.cases import case

    @case(setup=lambda rng, n=5: ({"W": rng.standard_normal((n, n))}, {"x": rng.standard_normal(n)}))
    def quadratic(xp, params, inputs):
        \"\"\"L = Σ tanh(W x)².\"\"\"
        return xp.sum(xp.tanh(params["W"] @ inputs["x"]) ** 2)

``gradparity run --case mine.py:quadratic`` then runs it through every backend, and
``--set n=8`` reaches it: the options are the keyword defaults of ``setup`` (``n=5``).
Either ``setup(rng, **options) -> (params, inputs)`` draws the arrays from a seed, or
``params=`` and ``inputs=`` give them (fixed arrays, the same for every seed). The loss
may take the options too, as keywords.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.cases.base import Case, CaseError


def _keywords(fn: Callable, values: dict[str, Any]) -> dict[str, Any]:
    """The options ``fn`` takes by keyword (all of them, if it takes **kwargs)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return dict(values)
    names = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return {k: v for k, v in values.items() if k in names}


def _defaults(fn: Callable | None) -> dict[str, Any]:
    if fn is None:
        return {}
    parameters = list(inspect.signature(fn).parameters.values())[1:]  # after rng
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def case(
    loss: Callable | None = None,
    *,
    setup: Callable | None = None,
    params: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    name: str | None = None,
    family: str = "user",
    smooth: bool = True,
) -> Any:
    """Turn ``loss(xp, params, inputs)`` into a Case (see the module). The Case's name is
    the function's (or ``name``), its docstring the function's, its options the keyword
    defaults of ``setup``; ``smooth=False`` where the loss has kinks (relu, abs)."""

    def make(fn: Callable) -> type[Case]:
        if setup is None and params is None:
            raise CaseError(f"@case {fn.__name__}: give setup=(rng -> (params, inputs)) or params=")
        fixed = (
            {k: np.asarray(v) for k, v in (params or {}).items()},
            {k: np.asarray(v) for k, v in (inputs or {}).items()},
        )

        def case_setup(self, rng):
            if setup is None:
                return {k: v.copy() for k, v in fixed[0].items()}, dict(fixed[1])
            return setup(rng, **_keywords(setup, self.cfg))

        def case_loss(self, xp, p, x):
            return fn(xp, p, x, **_keywords(fn, self.cfg))

        body = {
            "name": name or fn.__name__,
            "family": family,
            "options": _defaults(setup),
            "smooth": smooth,
            "setup": case_setup,
            "loss": case_loss,
            "__doc__": inspect.getdoc(fn) or f"The loss {fn.__name__}(xp, params, inputs).",
            "__module__": fn.__module__,
            "__qualname__": fn.__qualname__,
        }
        return type(fn.__name__, (Case,), body)

    return make(loss) if loss is not None else make


__all__ = ["case"]
