"""A case of the user's, seen from this process: what it is, never its code.

``--case mine.py:NAME`` (in run, report, describe, bench and validate) is loaded in a
worker process (``harness.sandbox``), which says what the case is — its name, family,
options and what each takes, its docstring — as data. This process makes an
``IsolatedCase`` of that: a Case whose options are checked here as any case's are, but
whose ``setup`` and ``loss`` run in a worker only. ``build`` draws the arrays there;
``harness.runner`` runs the backends there; what comes back is data. A case that exits,
crashes, loops, eats memory or starts processes takes its worker with it, and nothing else.

Each IsolatedCase keeps one worker for its requests (``ask``), until ``release``; the
limits (seconds per request, bytes of data segment) are the case class's ``limits``.
A case travels to a worker as its ``spec`` (data: where its file is, its options), and
the worker makes it again with ``harness.cases.base.rebuild``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.cases.base import Allowed, Case, CaseError, one_line_names, rebuild
from harness.provenance import digest
from harness.sandbox.channel import DEFAULT_MEMORY, Isolated
from harness.sandbox.wire import Mapping, conforms
from harness.sandbox.worker import Worker, call
from harness.target import BadTarget, Target, parse_target, target_of
from harness.target import load as load_target

DEFAULT_TIMEOUT = 600.0  # seconds: a whole case, every backend and the noise runs together
DESCRIBE = "harness.sandbox.case:describe"
BUILD = "harness.sandbox.case:build"
PLAIN = (bool, int, float, str)


@dataclass(frozen=True)
class Limits:
    """What a worker running a case of the user's may take: seconds per request (a whole
    case), and bytes of data segment (0: no limit)."""

    timeout: float = DEFAULT_TIMEOUT
    memory: int = DEFAULT_MEMORY


class LoadError(ValueError):
    """A case of the user's could not be loaded; the message says why (a usage error)."""


class CaseFault(RuntimeError):
    """A request about a case of the user's failed in its worker: ``fault_name`` (a fault
    of ``harness.validation.faults``: exit, crash, timeout, memory, …), the message, and
    what it printed or its traceback."""

    def __init__(self, fault: dict[str, Any]):
        self.fault_name = str(fault.get("fault_name", "crash"))
        self.message = str(fault.get("message", ""))
        self.traceback = str(fault.get("traceback", ""))
        super().__init__(self.summary())

    def summary(self) -> str:
        """One line: the fault's name, the message, and where it happened — the innermost frame of
        an exception's traceback, or the last words a crashed worker wrote on stderr."""
        where = ""
        lines = [line.strip() for line in self.traceback.strip().splitlines() if line.strip()]
        frames = [line for line in lines if line.startswith("File ")]
        if self.fault_name in ("exception", "exit") and frames:
            where = f" ({frames[-1]})"
        elif self.fault_name == "crash" and any(
            line.startswith("Fatal Python error") for line in lines
        ):
            fatal = next(i for i, line in enumerate(lines) if line.startswith("Fatal Python error"))
            innermost = next((line for line in lines[fatal:] if line.startswith("File ")), "")
            where = f" ({lines[fatal]}; {innermost})" if innermost else f" ({lines[fatal]})"
        elif self.fault_name == "crash" and lines and lines != ["(nothing on stderr)"]:
            where = f"; its last words: {' ⏎ '.join(lines[-3:])[-300:]}"
        return f"{self.fault_name}: {self.message}{where}"


class OutsideWorker(RuntimeError):
    """The code of a case of the user's was about to run in this process (a bug)."""


class IsolatedCase(Case):
    """A user's case, as this process knows it (see the module)."""

    isolated: ClassVar[bool] = True
    limits: ClassVar[Limits] = Limits()
    target: ClassVar[Target]
    loaded_sha256: ClassVar[str | None] = None  # of its file, taken before it was loaded
    described_takes: ClassVar[dict[str, str]] = {}

    @classmethod
    def takes(cls, key: str) -> str:
        return cls.described_takes.get(key) or super().takes(key)

    def setup(self, rng: np.random.Generator) -> Any:
        raise OutsideWorker(f"case {self.name!r}: its setup runs in its worker, not here")

    def loss(self, xp: Any, params: dict[str, Any], inputs: dict[str, Any]) -> Any:
        raise OutsideWorker(f"case {self.name!r}: its loss runs in its worker, not here")

    def spec(self) -> dict[str, Any]:
        return {
            "rebuild": "harness.sandbox.case:from_target",
            "target": self.target.data(),
            "cfg": dict(self.cfg),
        }

    def build(self, seed: int = 0, dtype: str = "float64") -> tuple[dict, dict]:
        """The parameters and inputs, drawn by the case's own setup in its worker."""
        reply = ask(self, {"op": BUILD, "seed": seed, "dtype": dtype})
        arrays = Mapping(str, np.ndarray)
        miss = conforms(reply, ({"params": arrays, "inputs": arrays}, {"case_error": str}))
        if miss:
            raise CaseFault({"fault_name": "malformed reply", "message": miss})
        if "case_error" in reply:
            raise CaseError(reply["case_error"])
        one_line_names(self.name, reply["params"], reply["inputs"])  # its own build too
        return reply["params"], reply["inputs"]


def spec_of(case: Case) -> dict[str, Any] | None:
    """How a worker makes ``case`` again (``Case.spec``); for a case class of the caller's
    own that a fresh process can import by name, by where it lives; else None."""
    spec = case.spec()
    if spec is not None:
        return spec
    target = target_of(type(case))
    if target is None:
        return None
    return {
        "rebuild": "harness.sandbox.case:from_target",
        "target": target.data(),
        "cfg": dict(getattr(case, "cfg", {})),
    }


# --- this process's side ---------------------------------------------------------------------


def ask(case: Case, message: dict[str, Any]) -> dict[str, Any]:
    """The reply of ``case``'s worker to ``message`` (the case's spec added to it); a
    fault there is a CaseFault. A case has a worker per thread that asks (validate runs
    a plug-in beside the references, in two threads)."""
    channels = case.__dict__.setdefault("_channels", {})
    channel = channels.get(threading.get_ident())
    if channel is None:
        channel = channels[threading.get_ident()] = _unpark(type(case))
    reply = channel.request({**message, "case": case.spec()}, case.limits.timeout)
    if "fault" in reply:
        raise CaseFault(reply["fault"] if isinstance(reply["fault"], dict) else {})
    return reply


def release(case: Case) -> None:
    """This thread's worker of ``case`` is done with it: kept idle for the next request
    about a case of the same class (the next run of it, its options varied), else closed."""
    channel = case.__dict__.get("_channels", {}).pop(threading.get_ident(), None)
    if channel is not None:
        _park(type(case), channel)


# A worker takes seconds to start (it imports the libraries), and the runs of one case come
# one after another: its description, its run, the drift plot's 14. So each thread keeps
# the worker of the last case class it asked about, idle; a request about another class
# closes it. A case class's worker never serves another class's code, and a worker that a
# fault ended is started afresh by its next request (``Isolated.request``).
_idle: dict[int, tuple[type, Isolated]] = {}


def _park(cls: type, channel: Isolated) -> None:
    _, previous = _idle.pop(threading.get_ident(), (None, None))
    if previous is not None and previous is not channel:
        previous.close()
    _idle[threading.get_ident()] = (cls, channel)


def _unpark(cls: type[Case]) -> Isolated:
    kept, channel = _idle.pop(threading.get_ident(), (None, None))
    if channel is not None and kept is cls:
        return channel
    if channel is not None:
        channel.close()
    return Isolated(cls.limits.memory if issubclass(cls, IsolatedCase) else DEFAULT_MEMORY)


_DESCRIPTION = {
    "name": str, "family": str, "doc": str, "smooth": bool, "slow": bool,
    "options": Mapping(str, PLAIN), "takes": Mapping(str, str),
    "allowed": Mapping(str, {"low": (float, None), "high": (float, None), "above": bool,
                             "choices": [PLAIN]}),
}  # fmt: skip
_loaded: dict[tuple, type[IsolatedCase]] = {}


def load(text: str, limits: Limits = Limits()) -> type[IsolatedCase]:
    """The case ``text`` (``file.py:NAME`` or ``module:NAME``) names, loaded in a worker
    and described here; LoadError (with the reason) where it cannot be."""
    try:
        target = parse_target(text)
    except BadTarget as e:
        raise LoadError(str(e)) from None
    key = (target, target.sys_path, limits)
    if key in _loaded:
        return _loaded[key]
    channel = Isolated(limits.memory)
    sha256 = digest(target)  # before its code runs: a file its import rewrites is named as it ran
    try:
        reply = channel.request({"op": DESCRIBE, "target": target.data()}, limits.timeout)
        cls = _described(target, limits, reply, sha256)
    except BaseException:
        channel.close()
        raise
    _park(cls, channel)  # its first run goes on in the worker that loaded it
    _loaded[key] = cls
    return cls


def _described(
    target: Target, limits: Limits, reply: dict[str, Any], sha256: str | None = None
) -> type[IsolatedCase]:
    """The IsolatedCase class a worker's description of ``target`` makes (LoadError where
    the reply is a fault or not a case's description)."""
    if "fault" in reply:
        raise LoadError(_loading_fault(CaseFault(reply["fault"])))
    if "not_a_case" in reply:
        raise LoadError(str(reply["not_a_case"]))
    miss = conforms(reply, _DESCRIPTION)
    if miss:
        raise LoadError(f"its worker's description of it is malformed: {miss}")
    if reply["name"].splitlines() != [reply["name"]]:  # empty, or a line break in it
        raise LoadError(
            f"its name {reply['name']!r} is not one line of text; a case's "
            "name begins lines of the output"
        )
    allowed = {
        k: Allowed(a["low"], a["high"], a["above"], tuple(a["choices"]))
        for k, a in reply["allowed"].items()
    }
    body = {
        "name": reply["name"],
        "family": reply["family"],
        "options": dict(reply["options"]),
        "allowed": allowed,
        "smooth": reply["smooth"],
        "slow": reply["slow"],
        "__doc__": reply["doc"],
        "target": target,
        "loaded_sha256": sha256,
        "limits": limits,
        "described_takes": dict(reply["takes"]),
        "__module__": __name__,
    }
    return type("IsolatedCase", (IsolatedCase,), body)


def _loading_fault(fault: CaseFault) -> str:
    """A fault met while loading, in one sentence."""
    lines = fault.traceback.strip().splitlines()
    detail = lines[-1] if lines and fault.fault_name == "import error" else ""
    if fault.fault_name in ("import error", "missing attribute"):
        return fault.message + (f" ({detail})" if detail and detail not in fault.message else "")
    return f"loading it failed in its worker ({fault.fault_name}): {fault.message}"


# --- the worker's side -----------------------------------------------------------------------


def from_target(spec: dict[str, Any]) -> Case:
    """The case a target spec names, made with its options (in a worker)."""
    cls = load_target(Target.from_data(spec["target"]))
    return _checked(cls)(**spec["cfg"])


def _checked(found: Any) -> type[Case]:
    if not (isinstance(found, type) and issubclass(found, Case)):
        raise CaseError(
            f"it is not a case (it is of type {type(found).__name__}): write a Case subclass "
            "(setup(self, rng) and loss(self, xp, params, inputs)) or decorate a loss "
            "function with @harness.cases.case"
        )
    if not hasattr(found, "name"):
        found.name = found.__name__
    if not hasattr(found, "family"):
        found.family = "user"
    return found


def _describe(target: Target) -> dict[str, Any]:
    found = _checked(load_target(target))
    clashes = [k for k in found.options if k in vars(Case) or callable(getattr(found, k, None))]
    if clashes:
        raise CaseError(f"options {clashes} hide attributes of the class")
    odd = {k: type(v).__name__ for k, v in found.options.items() if not isinstance(v, PLAIN)}
    if odd:
        raise CaseError(f"options {odd} have defaults that are not a number, a word or true/false")
    for key, allowed in found.allowed.items():
        if not isinstance(allowed, Allowed):
            raise CaseError(
                f"allowed[{key!r}] is a {type(allowed).__name__}, not an Allowed "
                "(at_least, between, positive, one_of)"
            )
    return {
        "name": str(found.name), "family": str(found.family), "doc": found.doc(),
        "smooth": bool(found.smooth), "slow": bool(found.slow), "options": dict(found.options),
        "takes": {k: found.takes(k) for k in found.options},
        "allowed": {k: {"low": a.low, "high": a.high, "above": bool(a.above),
                        "choices": list(a.choices)} for k, a in found.allowed.items()},
    }  # fmt: skip


def failed(record: dict[str, Any]) -> dict[str, Any]:
    """The reply for a call of the user's code that raised: a CaseError is the case's own
    word on its options (said as it is); anything else is a fault."""
    err = record["error"]
    if err["type"] == "CaseError":
        return {"case_error": err["message"].removeprefix("CaseError: ")}
    return {"fault": err}


def describe(worker: Worker, request: dict[str, Any]) -> dict[str, Any]:
    """What the case is (see ``load``), or why it is none."""
    record = call(_describe, Target.from_data(request["target"]))
    if record["error"] is None:
        return record["value"]
    err = record["error"]
    if err["type"] == "CaseError":
        return {"not_a_case": err["message"].removeprefix("CaseError: ")}
    return {"fault": err}


def build(worker: Worker, request: dict[str, Any]) -> dict[str, Any]:
    """The case's arrays for a seed and dtype."""
    made = call(rebuild, request["case"])
    if made["error"] is not None:
        return failed(made)
    record = call(made["value"].build, request["seed"], request["dtype"])
    if record["error"] is not None:
        return failed(record)
    params, inputs = record["value"]
    return {
        "params": {str(k): np.asarray(v) for k, v in params.items()},
        "inputs": {str(k): np.asarray(v) for k, v in inputs.items()},
    }


__all__ = [
    "CaseFault",
    "IsolatedCase",
    "Limits",
    "LoadError",
    "ask",
    "failed",
    "load",
    "release",
    "spec_of",
]
