"""A plug-in as a Backend: runs a case through the user's code (in a worker) and returns
a Result like any other backend, with the faults found on the way attached."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from harness.backends.base import Backend, NotApplicable
from harness.backends.numeric import taps_of
from harness.cases.base import Arrays, Case
from harness.result import Result
from harness.sandbox.case import spec_of
from harness.sandbox.channel import DEFAULT_TIMEOUT, fault
from harness.sandbox.wire import conforms
from harness.target import Target
from harness.validation.checks import MAX_OUTPUT, Judgement
from harness.validation.faults import Fault
from harness.validation.forms import FORMS
from harness.validation.plugin_calls import RUN, RUN_REPLY
from harness.validation.printed import Printed


@dataclass
class PluginResult(Result):
    """A Result with the plug-in's faults (raw-output checks, isolation, repeat calls)."""

    judged: ClassVar[bool] = True  # the rows are judged against the references, never it

    faults: list[Fault] = field(default_factory=list)
    printed: list[Printed] = field(default_factory=list)


class PluginBackend(Backend):
    """The user's implementation, in one of its forms (see ``harness.validation``).

    In the model form it may also supply forward mode and H·v (``harness.modes``):

        jvp(params, inputs, tangent[, case]) -> {"loss": J_L·u, "taps": {name: J_v·u}}
        hvp(params, inputs, vector[, case])  -> {param: (H·v)_param}

    ``tangent`` and ``vector`` are dicts of arrays shaped like ``params``. The functions
    are the target's attributes ``grads``, ``jvp`` and ``hvp`` (an object, a class or a
    module with them), or, where one mode alone is asked for, the target itself.
    """

    derivation = "autodiff"

    def __init__(
        self,
        target: Target,
        form: str,
        channel: Any,
        timeout: float = DEFAULT_TIMEOUT,
        max_output: int = MAX_OUTPUT,
        calls: int = 2,
        name: str | None = None,
        modes: tuple[str, ...] = ("rev",),
    ):
        self.target, self.form, self.channel = target, form, channel
        self.timeout, self.max_output, self.calls = timeout, max_output, calls
        self.name = name or f"plugin:{target.name}"  # type: ignore[misc]
        self.modes = tuple(modes)
        self.extra: dict[str, list[Result]] = {}

    def gradient(self, case: Case, params: Arrays, inputs: Arrays, dtype: str) -> Result:
        return self._ask(case, params, inputs, dtype, "rev", None)

    def jvp(self, case, params, inputs, dtype, tangent):
        self._can("fwd")
        return self._ask(case, params, inputs, dtype, "fwd", tangent)

    def hvp(self, case, params, inputs, dtype, vector):
        self._can("hvp")
        return self._ask(case, params, inputs, dtype, "hvp", vector)

    def _can(self, mode: str) -> None:
        if mode not in FORMS[self.form].modes:
            what = "forward mode" if mode == "fwd" else "H·v"
            raise NotApplicable(
                f"the {self.form} form has no {what} (a model plug-in may "
                "supply one: see `gradparity validate --help`)"
            )

    def _ask(self, case, params, inputs, dtype, mode, direction) -> Result:
        taps, tap_steps = taps_of(case, params, inputs)
        request = {"op": RUN, "target": self.target.data(), "form": self.form,
                   "case": spec_of(case), "params": params, "inputs": inputs, "dtype": dtype,
                   "calls": self.calls, "fd": FORMS[self.form].own_forward,
                   "mode": mode, "modes": list(self.modes), "direction": direction}  # fmt: skip
        reply = self.channel.request(request, self.timeout)
        miss = conforms(reply, RUN_REPLY)
        if miss:
            reply = fault("malformed reply", f"the plug-in's worker broke the protocol: {miss}")
        if reply.get("skip"):
            raise NotApplicable(reply["skip"])
        expected = {} if mode == "fwd" else params
        judged = Judgement(
            case,
            self.name,
            dtype,
            expected,
            taps,
            tap_steps,
            self.max_output,
            mode,
            (params, inputs),
            may_lack=FORMS[self.form].may_lack,
        )
        result = judged.result(reply)
        if mode == "rev":
            self.extra[case.label] = judged.extra_results
        result.mode = mode
        if mode == "fwd":
            result.tangent, result.loss = result.loss, math.nan
            if result.ok and math.isnan(result.tangent) and ("loss", "loss") in result.withheld:
                judged.tensor_fault(
                    ("loss", "loss"),
                    "missing tensor",
                    'no "loss": a JVP returns {"loss": J_L·u, "taps": {...}}',
                )
                del result.withheld["loss", "loss"]
                result.uncompared = dict(judged.uncompared)
                result.error = "missing tensor: no loss tangent"
        return PluginResult(**{f.name: getattr(result, f.name) for f in fields(result)},
                            faults=judged.faults, printed=judged.printed)  # fmt: skip
