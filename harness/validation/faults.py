"""What can go wrong with a plug-in besides a wrong number: the faults, by name.

A fault names the case, the backend and (where it has one) the tensor. Its severity says
what it does to the verdict: "fatal" (the call gave nothing to compare), "fault" (the
plug-in fails, its other tensors are still compared), "note" (said, not held against it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# fault name -> what it means, for the report's legend
FAULT_MEANINGS = {
    "import error": "the TARGET's module or file could not be imported",
    "missing attribute": "the module has no such attribute, or the object lacks a method the form needs",
    "exception": "the call raised (the traceback is kept)",
    "exit": "the call called sys.exit",
    "crash": "the worker process died (a signal such as SIGSEGV or SIGABRT, or os._exit)",
    "timeout": "no answer within the time limit: the worker was killed",
    "memory": "MemoryError under the worker's address-space limit",
    "returned None": "the call returned None (a missing `return`?)",
    "wrong type": "the call returned something other than what the form promises",
    "missing tensor": "a parameter's gradient is missing",
    "extra tensor": "a gradient or tap the case does not have",
    "wrong shape": "a gradient whose shape is not its tensor's (never summed or reshaped for you)",
    "wrong dtype": "tensors whose dtype is not the run's: one fault for them all, with its "
    "likely cause; their values are still compared, cast to the run's dtype",
    "not finite": "NaN or Inf in a gradient",
    "mutated inputs": "the call wrote into the arrays it was given",
    "non-deterministic": "two calls on the same inputs returned different gradients",
    "state across calls": "the second call returned the first call's gradients plus a new copy",
    "output flood": "the call printed more than the output limit (a note: its ends are shown)",
    "disagrees with own forward": "the stage's backward is not the derivative of its own forward",
    "converted": "a list, a Python number or a framework tensor was converted to numpy",
    "unsupported": "the engine lacks an array function the case needs, or one to build the "
    "extra the case asked for from (the case is counted apart: not held against it)",
    "source changed": "a file of the user's code changed while it ran (its own import "
    "rewrote it?): the code named by its sha256 may not be all that ran",
    "misnamed function": "the engine has a function the case needs under numpy's name only "
    "(concatenate for concat): did you mean it? the standard's name is given",
}
SEVERITY = {"converted": "note", "unsupported": "note", "output flood": "note"}
FATAL = {
    "import error",
    "missing attribute",
    "exception",
    "exit",
    "crash",
    "timeout",
    "memory",
    "returned None",
    "wrong type",
    "misnamed function",
}
# the faults that leave a tensor's numbers uncompared (``Result.uncompared``): its row
# fails with the fault as its error (a wrong dtype is not among them: those values are
# compared, cast to the run's)
UNCOMPARED = {"wrong type", "wrong shape", "not finite", "missing tensor"}
FAULT_COLUMNS = ["case", "backend", "tensor", "fault", "severity", "message", "traceback"]


@dataclass
class Fault:
    case: str
    backend: str
    tensor: str  # "" where the fault is the whole call's; "a, b" where it is several tensors
    fault: str  # its name, a key of FAULT_MEANINGS
    message: str
    traceback: str = ""
    facts: dict[str, Any] = field(default_factory=dict)  # what the message says, as data

    @property
    def tensors(self) -> list[str]:
        """The tensors the fault is about: its one tensor, or those its facts list."""
        return list(self.facts.get("tensors", [self.tensor] if self.tensor else []))

    @property
    def severity(self) -> str:
        return "fatal" if self.fault in FATAL else SEVERITY.get(self.fault, "fault")

    def row(self) -> dict:
        return {
            "case": self.case,
            "backend": self.backend,
            "tensor": self.tensor,
            "fault": self.fault,
            "severity": self.severity,
            "message": self.message,
            "traceback": self.traceback,
        }

    def line(self) -> str:
        where = f"{self.case}: {self.backend}" + (f", {self.tensor}" if self.tensor else "")
        return f"{where}: {self.fault}: {self.message}"
