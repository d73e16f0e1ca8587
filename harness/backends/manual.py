"""The ``manual`` backend: the textbook backward passes of ``reference/manual.py``.

No tape and no ``ops``: each case family has its forward and backward derived by hand,
and this module only unpacks a case's options and arrays into them and packs the answer
into a Result. A case without a hand-derived backward is skipped (``NotApplicable``).
Forward mode is derived by hand for the MLP and the Elman unroll (``M.mlp_jvp``,
``M.elman_jvp``); there is no hand-derived H·v.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

import reference.manual as M
from harness.backends.base import Backend, NotApplicable
from harness.cases.adbench import ADBenchLSTM
from harness.cases.base import Arrays, Case
from harness.cases.networks import MLP
from harness.cases.recurrent import GRU, LSTM, Elman
from harness.result import Result

# (loss, grads by parameter, taps by name, tap_steps by name)
Answer = tuple[float, Arrays, Arrays, dict[str, int | None]]


def run_mlp(case: Case, p: Arrays, x: Arrays) -> Answer:
    target = x["Y"] if case.objective == "mse" else x["y"]
    loss, cache = M.mlp_forward(p, x["X"], target, case.act, case.objective)
    grads, dL_dh = M.mlp_backward(cache)
    taps = {f"h[{l}]": g for l, g in enumerate(dL_dh)}  # noqa: E741
    return loss, grads, taps, dict.fromkeys(taps)


def run_elman(case: Case, p: Arrays, x: Arrays) -> Answer:
    loss, cache = M.elman_forward(p, x["X"], x["Y"], x["h0"], case.act, case.objective)
    grads, dL_dh = M.elman_backward(cache)
    return loss, grads, {"h": dL_dh}, {"h": case.T}


def run_lstm(case: Case, p: Arrays, x: Arrays) -> Answer:
    loss, cache = M.lstm_forward(p, x["X"], x["Y"], x["h0"], x["c0"], case.objective)
    grads, dL_dh, dL_dc = M.lstm_backward(cache)
    return loss, grads, {"h": dL_dh, "c": dL_dc}, {"h": case.T, "c": case.T}


def run_gru(case: Case, p: Arrays, x: Arrays) -> Answer:
    loss, cache = M.gru_forward(p, x["X"], x["Y"], x["h0"], case.objective)
    grads, dL_dh = M.gru_backward(cache)
    return loss, grads, {"h": dL_dh}, {"h": case.T}


def run_adbench_lstm(case: Case, p: Arrays, x: Arrays) -> Answer:
    loss, cache = M.adbench_lstm_forward(p["main"], p["extra"], x["state"], x["sequence"])
    grads, dL_dh = M.adbench_lstm_backward(cache)
    return loss, grads, {"h": dL_dh}, {"h": len(dL_dh)}


# family -> (the case class whose math the manual code implements, its runner)
BY_FAMILY: dict[str, tuple[type[Case], Callable[..., Answer]]] = {
    "mlp": (MLP, run_mlp),
    "elman": (Elman, run_elman),
    "lstm": (LSTM, run_lstm),
    "gru": (GRU, run_gru),
}
BY_NAME: dict[str, tuple[type[Case], Callable[..., Answer]]] = {
    "adbench_lstm": (ADBenchLSTM, run_adbench_lstm),
}


# Forward mode, by hand: (loss, its tangent, tap tangents, tap steps)
def jvp_mlp(case: Case, p: Arrays, u: Arrays, x: Arrays) -> tuple:
    target = x["Y"] if case.objective == "mse" else x["y"]
    loss, dloss, dhs = M.mlp_jvp(p, u, x["X"], target, case.act, case.objective)
    taps = {f"h[{l}]": d for l, d in enumerate(dhs)}  # noqa: E741
    return loss, dloss, taps, dict.fromkeys(taps)


def jvp_elman(case: Case, p: Arrays, u: Arrays, x: Arrays) -> tuple:
    loss, dloss, dh = M.elman_jvp(p, u, x["X"], x["Y"], x["h0"], case.act, case.objective)
    return loss, dloss, {"h": dh}, {"h": case.T}


JVP_BY_FAMILY: dict[str, tuple[type[Case], Callable[..., tuple]]] = {
    "mlp": (MLP, jvp_mlp),
    "elman": (Elman, jvp_elman),
}


def runner_for(case: Case) -> Callable[..., Answer]:
    """The hand-derived forward/backward for ``case``: by name (adbench_lstm), else by
    family. A case of that family written with other math (not a subclass of the class
    the manual code follows) has no hand-derived backward either."""
    cls, run = BY_NAME.get(case.name) or BY_FAMILY.get(case.family) or (None, None)
    if run is None:
        raise NotApplicable(f"no hand-derived backward for family {case.family!r}")
    if not isinstance(case, cls):
        raise NotApplicable(
            f"no hand-derived backward for case {case.name!r} (family {case.family!r} "
            f"is derived by hand for {cls.__name__} cases only)"
        )
    return run


class ManualBackend(Backend):
    name = "manual"
    kind = "autodiff"

    def run(self, case: Case, params: Arrays, inputs: Arrays, dtype: str) -> Result:
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

    def jvp(self, case, params, inputs, dtype, tangent):
        cls, run = JVP_BY_FAMILY.get(case.family, (None, None))
        if run is None or not isinstance(case, cls) or case.name in BY_NAME:
            raise NotApplicable(f"no hand-derived forward mode for case {case.name!r} "
                                f"(derived for {', '.join(JVP_BY_FAMILY)} cases)")  # fmt: skip
        start = time.perf_counter()
        loss, dloss, taps, tap_steps = run(case, params, tangent, inputs)
        return Result(case=case.label, backend=self.name, dtype=dtype, mode="fwd",
                      loss=float(loss), tangent=dloss, taps=taps, tap_steps=tap_steps,
                      seconds=time.perf_counter() - start)  # fmt: skip
