"""The ``manual`` backend: the textbook backward passes of ``reference/manual.py``.

No tape and no ``ops``: a case class declares its hand-derived forward and backward
(``Case.manual``, ``harness.cases.manual_backprop``: how its options and arrays map onto them), and
this module only runs that declaration and packs the answer into a Result. A case without
one is skipped (``NotApplicable``). Forward mode is derived by hand where the declaration
has a ``jvp`` (the MLP and the Elman unroll); there is no hand-derived H·v.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from harness.backends.base import CHAIN_START, Backend, NotApplicable, Prepared
from harness.cases import CATALOG
from harness.cases.base import Arrays, Case
from harness.cases.manual_backprop import Answer, ManualBackprop
from harness.result import Result


def declared(case: Case) -> ManualBackprop | None:
    """The hand-derived backprop ``case``'s class declares (``Case.manual``), or None."""
    manual = getattr(case, "manual", None)
    return manual if isinstance(manual, ManualBackprop) else None


def runner_for(case: Case) -> Callable[..., Answer]:
    """The hand-derived forward/backward for ``case``, as its class declares it. A case of
    a family derived by hand but written with other math (a class that declares none) has
    no hand-derived backward either."""
    manual = declared(case)
    if manual is not None:
        return manual.run
    derived = [c.__name__ for c in CATALOG.values() if c.family == case.family and c.manual]
    if not derived:
        raise NotApplicable(f"no hand-derived backward for family {case.family!r}")
    raise NotApplicable(
        f"no hand-derived backward for case {case.name!r} (family {case.family!r} "
        f"is derived by hand for {', '.join(derived)} cases only)"
    )


class ManualBackend(Backend):
    name = "manual"
    derivation = "autodiff"

    def gradient(self, case: Case, params: Arrays, inputs: Arrays, dtype: str) -> Result:
        run = runner_for(case)
        start = time.perf_counter()
        loss, grads, taps, tap_steps = run(case, params, inputs)
        seconds = time.perf_counter() - start
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            loss=float(loss),
            grads={k: np.asarray(grads[k]) for k in params},
            taps=taps,
            tap_steps=tap_steps,
            seconds=seconds,
        )

    def prepare_chain(self, n_ops, device="cpu"):
        """By hand in numpy: the forward keeps every value, the backward multiplies the
        local derivatives 1 − y² back to front."""
        value = np.full(1, CHAIN_START)

        def forward():
            y = value
            for _ in range(n_ops):
                y = np.tanh(y)
            return y

        def gradient():
            ys = [value]
            for _ in range(n_ops):
                ys.append(np.tanh(ys[-1]))
            g = np.ones(1)
            for y in reversed(ys[1:]):
                g = g * (1 - y * y)
            return g

        return Prepared(forward, gradient)

    def prepare(self, case, params, inputs, device="cpu"):
        """The forward that the case's declared backprop runs before its backward (the
        objective, and ``record``: with its cache), and that backprop; where the
        declaration has a backward of the parameters alone (the MLP: no dL/dX for the h[0]
        tap), that one, as the other backends' gradients are of the parameters only. Its
        BPTT computes dL/dh_t at every step anyway: taps cost it nothing extra."""
        run = runner_for(case)  # raises NotApplicable for a case without a hand-derived backward
        manual = declared(case)
        forward = lambda: manual.forward(case, params, inputs)
        gradient = lambda: run(case, params, inputs)
        if manual.parameter_backward is not None:
            gradient = lambda: manual.parameter_backward(case, forward()[1])
        return Prepared(lambda: forward()[0], gradient, record=forward)

    def jvp(self, case, params, inputs, dtype, tangent):
        manual = declared(case)
        if manual is None or manual.jvp is None:
            derived = dict.fromkeys(c.family for c in CATALOG.values() if c.manual and c.manual.jvp)
            raise NotApplicable(
                f"no hand-derived forward mode for case {case.name!r} "
                f"(derived for {', '.join(derived)} cases)"
            )
        start = time.perf_counter()
        loss, dloss, taps, tap_steps = manual.jvp(case, params, tangent, inputs)
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            mode="fwd",
            loss=float(loss),
            tangent=dloss,
            taps=taps,
            tap_steps=tap_steps,
            seconds=time.perf_counter() - start,
        )
