"""A plug-in as a Backend: runs a case through the user's code (in a worker) and returns
a Result like any other backend, with the faults found on the way attached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.backends.base import Backend
from harness.cases.base import CATALOG, Arrays, Case
from harness.result import Result
from harness.target import Target
from harness.validation.checks import MAX_OUTPUT, Judgement
from harness.validation.faults import Fault
from harness.validation.isolation import DEFAULT_TIMEOUT


@dataclass
class PluginResult(Result):
    """A Result with the plug-in's faults (raw-output checks, isolation, repeat calls)."""

    faults: list[Fault] = field(default_factory=list)


def expected_taps(case: Case, params: Arrays, inputs: Arrays) -> tuple[dict, dict]:
    """The case's taps and their shapes (stacked over steps inside a scan), from a
    forward-only float64 run: what a plug-in may report, and under which names."""
    from harness.backends.numeric import NumpyNamespace

    if getattr(case, "definition", True) is None:  # a custom stage: no taps
        return {}, {}
    probe = NumpyNamespace()
    floats = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    case.loss(probe, floats, inputs)
    shapes = {
        n: (v[0].shape if probe.tap_steps[n] is None else (len(v), *v[0].shape))
        for n, v in probe.values.items()
    }
    return shapes, dict(probe.tap_steps)


class PluginBackend(Backend):
    """The user's implementation, in one of three forms (see ``harness.validation``)."""

    kind = "autodiff"

    def __init__(self, target: Target, form: str, channel: Any, timeout: float = DEFAULT_TIMEOUT,
                 max_output: int = MAX_OUTPUT, calls: int = 2, name: str | None = None):  # fmt: skip
        self.target, self.form, self.channel = target, form, channel
        self.timeout, self.max_output, self.calls = timeout, max_output, calls
        self.name = name or f"plugin:{target.name}"  # type: ignore[misc]
        self.extra: dict[str, list[Result]] = {}

    def run(self, case: Case, params: Arrays, inputs: Arrays, dtype: str) -> Result:
        taps, tap_steps = expected_taps(case, params, inputs)
        # A catalog case travels by name and options (its class may not pickle by reference).
        registered = CATALOG.get(getattr(case, "name", None)) is type(case)
        if registered:  # a catalog case travels by name and options
            sent: Any = ("catalog", case.name, dict(case.cfg))
        elif getattr(type(case), "loaded_from", None) is not None:  # a user's, by where it lives
            sent = ("target", type(case).loaded_from, dict(case.cfg))
        else:
            sent = case
        request = {"op": "run", "target": self.target, "form": self.form, "case": sent,
                   "params": params, "inputs": inputs, "dtype": dtype, "calls": self.calls,
                   "fd": self.form in ("stage", "torch-function", "jax-custom-vjp")}  # fmt: skip
        reply = self.channel.request(request, self.timeout)
        judged = Judgement(case, self.name, dtype, params, taps, tap_steps, self.max_output)
        result = judged.result(reply)
        self.extra[case.label] = judged.extra_results
        return PluginResult(**{f: getattr(result, f) for f in result.__dataclass_fields__},
                            faults=judged.faults)  # fmt: skip
