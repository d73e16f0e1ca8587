"""The hand-derived backprop a case class declares (``Case.manual``).

``reference/manual.py`` holds the textbook forward and backward passes, numpy alone. What
a case must say for them to run is how its options and arrays map onto their arguments,
and how their answer names its taps: that is declared here, beside the cases, once. The
``manual`` backend, the bench and the zoo read the declaration; none names a family.

It belongs to a class, not to a family: it follows that class's math, so a subclass
inherits it and a case of the same family written with other math has none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import reference.manual
from harness.cases.base import Arrays

# (loss, grads by parameter, taps by name, tap_steps by name)
Answer = tuple[float, Arrays, Arrays, dict[str, int | None]]


@dataclass(frozen=True)
class ManualBackprop:
    """``forward(case, params, inputs)`` -> (loss, cache); ``backward(case, cache)`` ->
    (grads, taps, tap_steps); ``jvp(case, params, tangent, inputs)`` -> (loss, its
    tangent, tap tangents, tap_steps), None where forward mode is not derived by hand;
    ``parameter_backward(case, cache)``: the backward of the parameters alone where it
    skips work the taps need (the MLP's dL/dX), which is what the bench times, since the
    other backends' timed gradients are of the parameters only (None: ``backward``)."""

    forward: Callable[[Any, Arrays, Arrays], tuple[float, Any]]
    backward: Callable[[Any, Any], tuple[Arrays, Arrays, dict[str, int | None]]]
    jvp: Callable[..., tuple] | None = None
    parameter_backward: Callable[[Any, Any], Any] | None = None

    def run(self, case: Any, params: Arrays, inputs: Arrays) -> Answer:
        """The forward, then the backward: (loss, grads, taps, tap_steps)."""
        loss, cache = self.forward(case, params, inputs)
        grads, taps, tap_steps = self.backward(case, cache)
        return loss, grads, taps, tap_steps


def _mlp_target(case: Any, x: Arrays) -> np.ndarray:
    return x["Y"] if case.objective == "mse" else x["y"]


def _mlp_backward(case: Any, cache: Any) -> tuple:
    grads, dL_dh = reference.manual.mlp_backward(cache)
    taps = {f"h[{l}]": g for l, g in enumerate(dL_dh)}  # noqa: E741
    return grads, taps, dict.fromkeys(taps)


def _mlp_jvp(case: Any, p: Arrays, u: Arrays, x: Arrays) -> tuple:
    loss, dloss, dhs = reference.manual.mlp_jvp(
        p, u, x["X"], _mlp_target(case, x), case.act, case.objective
    )
    taps = {f"h[{l}]": d for l, d in enumerate(dhs)}  # noqa: E741
    return loss, dloss, taps, dict.fromkeys(taps)


MLP = ManualBackprop(
    forward=lambda case, p, x: reference.manual.mlp_forward(
        p, x["X"], _mlp_target(case, x), case.act, case.objective
    ),
    backward=_mlp_backward,
    jvp=_mlp_jvp,
    parameter_backward=lambda case, cache: reference.manual.mlp_backward(cache, input_grad=False),
)


def _elman_backward(case: Any, cache: Any) -> tuple:
    grads, dL_dh = reference.manual.elman_backward(cache)
    return grads, {"h": dL_dh}, {"h": case.T}


def _elman_jvp(case: Any, p: Arrays, u: Arrays, x: Arrays) -> tuple:
    loss, dloss, dh = reference.manual.elman_jvp(
        p, u, x["X"], x["Y"], x["h0"], case.act, case.objective
    )
    return loss, dloss, {"h": dh}, {"h": case.T}


ELMAN = ManualBackprop(
    forward=lambda case, p, x: reference.manual.elman_forward(
        p, x["X"], x["Y"], x["h0"], case.act, case.objective
    ),
    backward=_elman_backward,
    jvp=_elman_jvp,
)


def _lstm_backward(case: Any, cache: Any) -> tuple:
    grads, dL_dh, dL_dc = reference.manual.lstm_backward(cache)
    return grads, {"h": dL_dh, "c": dL_dc}, {"h": case.T, "c": case.T}


LSTM = ManualBackprop(
    forward=lambda case, p, x: reference.manual.lstm_forward(
        p, x["X"], x["Y"], x["h0"], x["c0"], case.objective
    ),
    backward=_lstm_backward,
)


def _gru_backward(case: Any, cache: Any) -> tuple:
    grads, dL_dh = reference.manual.gru_backward(cache)
    return grads, {"h": dL_dh}, {"h": case.T}


GRU = ManualBackprop(
    forward=lambda case, p, x: reference.manual.gru_forward(
        p, x["X"], x["Y"], x["h0"], case.objective
    ),
    backward=_gru_backward,
)


def _adbench_backward(case: Any, cache: Any) -> tuple:
    grads, dL_dh = reference.manual.adbench_lstm_backward(cache)
    return grads, {"h": dL_dh}, {"h": len(dL_dh)}


ADBENCH_LSTM = ManualBackprop(
    forward=lambda case, p, x: reference.manual.adbench_lstm_forward(
        p["main"], p["extra"], x["state"], x["sequence"]
    ),
    backward=_adbench_backward,
)

__all__ = ["ADBENCH_LSTM", "ELMAN", "GRU", "LSTM", "MLP", "Answer", "ManualBackprop"]
