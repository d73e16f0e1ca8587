"""The worker: runs a plug-in's calls, in a process of its own (``python -m
harness.validation.worker``) or, for a callable no fresh process can import, in this one.

It imports numpy, ``harness.xp`` and the cases, never pandas or a framework, so that it
starts fast. Per request it loads the target (once), makes each call on fresh copies of
the arrays, catches what the call does (an exception with its traceback, ``sys.exit``,
a MemoryError under the address-space limit), records what it printed (capped), which of
its inputs it wrote into, and turns what it returned into numpy arrays with a note of
their original type. Judging all that is the parent's job (``checks.py``).
"""

from __future__ import annotations

import inspect
import io
import os
import pickle
import struct
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.target import LoadFault, Target, load

HEAD, TAIL = 4000, 1000
ATTRIBUTES = (
    "stage",
    "forward",
    "backward",
    "tensor",
    "grad",
    "numpy",
)  # characters of printed output kept from each end


class Capture(io.TextIOBase):
    """A stand-in for sys.stdout/stderr that counts everything and keeps the ends."""

    def __init__(self) -> None:
        self.head, self.tail, self.size = [], "", 0
        self._kept = 0

    def write(self, s: str) -> int:
        s = str(s)
        if self._kept < HEAD:
            self.head.append(s[: HEAD - self._kept])
            self._kept += len(self.head[-1])
        self.tail = (self.tail + s[-TAIL:])[-TAIL:]
        self.size += len(s)
        return len(s)

    def writable(self) -> bool:
        return True

    def text(self) -> str:
        head = "".join(self.head)
        if self.size <= HEAD:
            return head
        return f"{head}\n[... {self.size - HEAD - TAIL} characters left out ...]\n{self.tail}"


def type_name(x: Any) -> str:
    t = type(x)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def plain(x: Any, dtype: str) -> dict[str, Any]:
    """A returned value as {"array", "type", "note"}: numpy arrays as they are; a Python
    number or a list converted to the run's dtype, a torch/jax array converted keeping
    its dtype (each with a note); anything else left as None with its type named."""
    name = type_name(x)
    out: dict[str, Any] = {"array": None, "type": name, "note": None}
    if x is None:
        out["type"] = "None"
    elif isinstance(x, np.ndarray):
        out["array"] = np.array(x, copy=True)
    elif isinstance(x, np.generic):
        out["array"] = np.asarray(x)
    elif type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach"):
        out["array"] = np.array(x.detach().cpu().numpy(), copy=True)
        out["note"] = f"a {name}, converted with .detach().cpu().numpy() (dtype kept)"
    elif type(x).__module__.split(".")[0] in ("jax", "jaxlib") and hasattr(x, "__array__"):
        out["array"] = np.array(x, copy=True)
        out["note"] = f"a {name}, converted with np.asarray (dtype kept)"
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        out["array"] = np.asarray(x, dtype=dtype)
        out["note"] = f"a Python {name}, converted to a {dtype} array"
    elif isinstance(x, (list, tuple)):
        try:
            out["array"] = np.asarray(x, dtype=dtype)
            out["note"] = f"a {name}, converted with np.asarray(..., dtype={dtype})"
        except (ValueError, TypeError):
            out["repr"] = repr(x)[:80]
    else:
        out["repr"] = repr(x)[:80]
    if out["array"] is not None and out["array"].dtype.kind not in "fiub":
        out["repr"], out["array"] = f"an array of dtype {out['array'].dtype}", None
    return out


def _tree(values: Any, dtype: str) -> Any:
    """{name: plain} from a mapping (None if it is not one)."""
    if not isinstance(values, Mapping):
        return None
    return {str(k): plain(v, dtype) for k, v in values.items()}


def normalise(out: Any, dtype: str) -> dict[str, Any]:
    """What a model (or engine) returned: a dict of grads, or {"grads", "loss", "taps"}."""
    if out is None:
        return {"top": "None"}
    if not isinstance(out, Mapping):
        return {"top": type_name(out), "repr": repr(out)[:80]}
    structured = isinstance(out.get("grads"), Mapping)
    grads = out["grads"] if structured else out
    taps = out.get("taps") if structured else None
    loss = out.get("loss") if structured else None
    taps_plain = {}
    if taps is not None and not isinstance(taps, Mapping):
        return {"top": "dict", "bad_taps": type_name(taps)}
    for name, value in (taps or {}).items():
        if isinstance(value, list) and value and not isinstance(value[0], (int, float, list)):
            steps = [plain(v, dtype) for v in value]  # per-step tensors (engine form)
            bad = next((s for s in steps if s["array"] is None), None)
            taps_plain[str(name)] = bad or {
                "array": np.stack([s["array"] for s in steps]), "type": steps[0]["type"],
                "note": steps[0]["note"],
            }  # fmt: skip
        else:
            taps_plain[str(name)] = plain(value, dtype)
    return {
        "top": "dict", "grads": _tree(grads, dtype), "taps": taps_plain,
        "loss": None if loss is None else plain(loss, dtype),
    }  # fmt: skip


def wants_case(fn: Any, position: int = 3) -> bool:
    """Does a model function take the Case, as its ``position``-th argument (3 for
    ``grads(params, inputs, case)``, 4 for ``jvp(params, inputs, tangent, case)``)?"""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params) or "case" in sig.parameters:
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= position


def detect_form(obj: Any) -> str:
    """torch-function: a ``torch.autograd.Function`` subclass; jax-custom-vjp: a
    ``jax.custom_vjp`` function; stage: has ``stage``, ``forward`` and ``backward``;
    engine: has ``tensor`` and ``grad`` (or is a class with them); model: any other
    callable, or an object with ``grads``, ``jvp`` or ``hvp``."""
    from harness.validation.frameworks import is_jax_custom_vjp, is_torch_function

    if is_torch_function(obj):
        return "torch-function"
    if is_jax_custom_vjp(obj):
        return "jax-custom-vjp"
    from harness.validation.functional import is_functional

    if is_functional(obj) and not hasattr(obj, "tensor"):
        return "functional"
    if all(hasattr(obj, a) for a in ("forward", "backward")) and hasattr(obj, "stage"):
        return "stage"
    if hasattr(obj, "tensor") and hasattr(obj, "grad"):
        return "engine"
    if callable(obj) or any(callable(getattr(obj, a, None)) for a in MODE_FUNCTIONS.values()):
        return "model"  # a function, or an object with grads / jvp / hvp
    return "unknown"


def _copy(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def _mutated(given: Mapping[str, Any], pristine: Mapping[str, np.ndarray], where: str) -> list:
    """The arrays the call wrote into: [(name, elements changed, first index)]."""
    found = []
    for name, before in pristine.items():
        after = given.get(name)
        if not isinstance(after, np.ndarray) or after.shape != before.shape:
            found.append((f"{where}[{name!r}]", -1, "replaced"))
            continue
        changed = ~((after == before) | (np.isnan(after) & np.isnan(before)))
        if before.dtype.kind not in "fc":
            changed = after != before
        if changed.any():
            first = tuple(int(i) for i in np.argwhere(changed)[0])
            found.append((f"{where}[{name!r}]", int(changed.sum()), str(first)))
    return found


class Worker:
    """Loads targets once and answers requests (the same code in- and out-of-process)."""

    def __init__(self, objects: dict[str, Any] | None = None) -> None:
        self.loaded: dict[str, Any] = dict(objects or {})

    def obj(self, target: Target) -> Any:
        if target.text not in self.loaded:
            self.loaded[target.text] = load(target)
        return self.loaded[target.text]

    def _load(self, target: Target) -> Any:
        try:
            return self.obj(target)
        except LoadFault as e:
            return e

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        return getattr(self, f"do_{request['op']}")(request)

    # --- calls, with what they print and raise captured
    def _call(self, fn, *args) -> dict[str, Any]:
        saved = sys.stdout, sys.stderr
        out, err = Capture(), Capture()
        record: dict[str, Any] = {"error": None, "value": None}
        start = time.perf_counter()
        sys.stdout, sys.stderr = out, err
        try:
            record["value"] = fn(*args)
        except MemoryError as e:
            record["error"] = _error("memory", e)
        except SystemExit as e:
            record["error"] = {"kind": "exit", "type": "SystemExit", "message": f"sys.exit({e.code!r})",
                               "traceback": traceback.format_exc()}  # fmt: skip
        except BaseException as e:  # noqa: BLE001 - everything a plug-in raises is reported
            record["error"] = _error("exception", e)
        finally:
            sys.stdout, sys.stderr = saved
        record.update(seconds=time.perf_counter() - start, stdout=out.text(),
                      stdout_chars=out.size, stderr=err.text(), stderr_chars=err.size)  # fmt: skip
        return record

    def do_load(self, request):
        target: Target = request["target"]
        record = self._call(self._load, target)
        info: dict[str, Any] = {
            k: record[k] for k in ("stdout", "stdout_chars", "stderr", "stderr_chars")
        }
        if record["error"] is not None:
            return {**info, "fault": record["error"]}
        obj = record["value"]
        if isinstance(obj, LoadFault):
            return {**info, "fault": {"kind": obj.kind, "type": "", "message": obj.message,
                                      "traceback": obj.traceback}}  # fmt: skip
        form = request.get("form") or detect_form(obj)
        if form in FRAMEWORK_FORMS:  # from here on it is a custom stage of the framework's
            from harness.validation.frameworks import JaxCustomVJPStage, TorchFunctionStage, adapt

            if not isinstance(obj, (TorchFunctionStage, JaxCustomVJPStage)):  # not yet adapted
                made = self._call(adapt, obj, form)
                if made["error"] is not None:
                    return {**info, "fault": {**made["error"], "kind": "wrong type"}}
                obj = self.loaded[target.text] = made["value"]
            info.update(names=obj.names, smooth=obj.smooth)
        info.update(form=form, stage=getattr(obj, "stage", None), cases=getattr(obj, "cases", None),
                    attributes=[a for a in ATTRIBUTES if hasattr(obj, a)])  # fmt: skip
        if getattr(obj, "stage", None) == "custom" and (form == "stage" or hasattr_inputs(obj)):
            made = self._call(_custom_inputs, obj)
            if made["error"] is not None:
                return {**info, "fault": made["error"]}
            info.update(made["value"])
        return info

    def do_run(self, request):
        target: Target = request["target"]
        try:
            obj = self.obj(target)
        except LoadFault as e:
            return {
                "fault": {
                    "kind": e.kind,
                    "type": "",
                    "message": e.message,
                    "traceback": e.traceback,
                }
            }
        form, case, dtype = request["form"], request["case"], request["dtype"]
        if isinstance(case, tuple) and case[0] == "catalog":
            from harness.cases import CATALOG

            case = CATALOG[case[1]](**case[2])
        elif isinstance(case, tuple) and case[0] == "target":
            case = load(case[1])(**case[2])
        params, inputs = request["params"], request["inputs"]
        mode, direction = request.get("mode", "rev"), request.get("direction")
        call = CALLS[form]
        if form == "model":
            fn, why = model_function(obj, mode, request.get("modes") or (mode,))
            if fn is None:
                return {"skip": why}
            obj, call = fn, (_model_call if mode == "rev" else _model_mode_call(mode, direction))
        calls = []
        for _ in range(request.get("calls", 2)):
            p, x = _copy(params), _copy(inputs)
            record = self._call(call, obj, case, p, x)
            record["mutated"] = _mutated(p, params, "params") + _mutated(x, inputs, "inputs")
            value, record["value"] = record["value"], None
            if record["error"] is None:
                if isinstance(value, dict) and "_mutated" in value:
                    record["mutated"] += value.pop("_mutated")
                record["output"] = normalise(value, dtype)
            calls.append(record)
            if record["error"] is not None:
                break
        reply: dict[str, Any] = {"calls": calls}
        if CALLS[form] is _stage_call and request.get("fd") and calls[0]["error"] is None:
            fd = self._call(_stage_fd, obj, case, params, inputs)
            reply["fd"] = {k: v for k, v in fd.items() if k != "value"}
            reply["fd"]["value"] = fd["value"]
        return reply


def _error(kind: str, e: BaseException) -> dict[str, str]:
    tb = traceback.format_exc()
    if len(tb) > 6000:
        tb = tb[:1500] + "\n[...]\n" + tb[-4000:]
    return {
        "kind": kind,
        "type": type(e).__name__,
        "message": f"{type(e).__name__}: {e}",
        "traceback": tb,
    }


# --- one call per form ----------------------------------------------------------------------


def _model_call(fn, case, params, inputs):
    return fn(params, inputs, case) if wants_case(fn) else fn(params, inputs)


MODE_FUNCTIONS = {"rev": "grads", "fwd": "jvp", "hvp": "hvp"}


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
    return None, (f"the plug-in supplies no {what}: give it a `{attr}` attribute "
                  f"({attr}(params, inputs{'' if mode == 'rev' else ', direction'}[, case])), "
                  "or ask for that mode alone")  # fmt: skip


def _model_mode_call(mode: str, direction: dict):
    """The call of a model's ``jvp`` or ``hvp``: (params, inputs, direction[, case]). A
    JVP's {"loss", "taps"} is passed on as {"grads": {}, "loss", "taps"}."""

    def call(fn, case, params, inputs):
        d = _copy(direction)
        out = fn(params, inputs, d, case) if wants_case(fn, 4) else fn(params, inputs, d)
        if mode == "fwd" and isinstance(out, Mapping):
            return {"grads": {}, "loss": out.get("loss"), "taps": out.get("taps")}
        return out

    return call


def _functional_call(engine, case, params, inputs):
    from harness.validation.functional import run_functional

    out = run_functional(engine, case, params, inputs)
    return {"grads": out["grads"], "taps": out["taps"], "loss": out["loss"]}


def _engine_call(engine, case, params, inputs):
    from harness.validation.engine import run_engine

    return run_engine(engine, case, params, inputs)


class StageProtocolError(TypeError):
    """A stage plug-in broke its protocol (forward's pair, backward's count)."""


def _stage_object(obj):
    return obj() if isinstance(obj, type) else obj


def _stage_call(obj, case, params, inputs):
    from harness.validation.stages import weighted_loss

    stage = _stage_object(obj)
    args = case.arguments(params, inputs)
    result = stage.forward(*args)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise StageProtocolError(
            f"forward returned {type_name(result)}; it must return (out, cache)"
        )
    out, cache = result
    d_out = case.d_out(inputs)
    loss = weighted_loss(out, d_out)
    given = [np.array(d, copy=True) for d in d_out]
    d_arg = given[0] if len(given) == 1 else tuple(given)
    if np.ndim(d_arg) == 0 and not isinstance(d_arg, tuple):
        d_arg = float(d_arg)
    grads = stage.backward(d_arg, cache)
    mutated = []
    for k, (before, after) in enumerate(zip(d_out, given, strict=True)):
        if not np.array_equal(before, after):
            changed = np.argwhere(np.asarray(before != after).reshape(np.shape(before)))
            mutated.append((f"d_out{'' if len(d_out) == 1 else k}", int(len(changed)),
                            str(tuple(int(i) for i in changed[0])) if len(changed) else "()"))  # fmt: skip
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    floats = [n for n in case.names if n not in case.labels]
    if len(grads) == len(case.names):
        named = {n: g for n, g in zip(case.names, grads, strict=True) if n not in case.labels}
    elif len(grads) == len(floats):
        named = dict(zip(floats, grads, strict=True))
    else:
        raise StageProtocolError(
            f"backward returned {len(grads)} gradients for the inputs ({', '.join(case.names)})"
        )
    loss = np.asarray(loss, dtype=d_out[0].dtype)  # computed here, in the run's dtype
    return {"grads": named, "loss": loss, "_mutated": mutated}


def _stage_fd(obj, case, params, inputs):
    """Finite differences of the plug-in's own forward (float64 copies of the inputs)."""
    from harness.validation.stages import (
        MAX_ELEMENTWISE,
        directional_differences,
        finite_differences,
        weighted_loss,
    )

    stage = _stage_object(obj)
    d_out = [np.asarray(d, dtype=np.float64) for d in case.d_out(inputs)]
    args = [np.array(a, dtype=np.float64) if n not in case.labels else a
            for n, a in zip(case.names, case.arguments(params, inputs), strict=True)]  # fmt: skip
    which = [i for i, n in enumerate(case.names) if n not in case.labels]
    names = [case.names[i] for i in which]

    def loss(a):
        return weighted_loss(stage.forward(*a)[0], d_out)

    if sum(np.size(args[i]) for i in which) > MAX_ELEMENTWISE:  # large: along directions
        found = directional_differences(loss, args, which, case.smooth)
        return {"directional": dict(zip(names, found, strict=True))}
    grads, errors = finite_differences(loss, args, which, case.smooth)
    return {"grads": dict(zip(names, grads, strict=True)),
            "errors": dict(zip(names, errors, strict=True))}  # fmt: skip


def _parameter_names(forward, count: int) -> list[str]:
    """The names of forward's parameters (``forward(self, x, h, W)`` -> x, h, W), where it has
    that many named ones; else x0, x1, …"""
    try:
        parameters = [p for p in inspect.signature(forward).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip
    except (TypeError, ValueError):
        parameters = []
    if len(parameters) == count:
        return [p.name for p in parameters]
    return [f"x{i}" for i in range(count)]


def _custom_inputs(obj):
    """A custom stage's example inputs and the shapes of its outputs."""
    stage = _stage_object(obj)
    arrays = tuple(np.asarray(a) for a in stage.inputs(np.random.default_rng(0)))
    names = tuple(getattr(stage, "names", None) or _parameter_names(stage.forward, len(arrays)))
    out = stage.forward(*arrays)[0]
    outs = out if isinstance(out, tuple) else (out,)
    return {"arrays": arrays, "names": names, "smooth": bool(getattr(stage, "smooth", True)),
            "out_shapes": [np.shape(o) for o in outs]}  # fmt: skip


def hasattr_inputs(stage: Any) -> bool:
    """Does a framework function bring example inputs (``inputs(rng)``) of its own?"""
    function = getattr(stage, "function", None)
    return callable(getattr(function, "inputs", None)) or callable(
        getattr(getattr(function, "fun", None), "inputs", None)
    )


FRAMEWORK_FORMS = ("torch-function", "jax-custom-vjp")
CALLS = {"model": _model_call, "engine": _engine_call, "stage": _stage_call,
         "torch-function": _stage_call, "jax-custom-vjp": _stage_call,
         "functional": _functional_call}  # fmt: skip


# --- the process ----------------------------------------------------------------------------


def read_message(stream) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack("<Q", header)
    return pickle.loads(stream.read(size))


def write_message(stream, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def main(argv: list[str] | None = None) -> None:
    """Requests on stdin, replies on stdout; the plug-in's own file descriptors 0 and 1
    are /dev/null and stderr, so what it prints cannot corrupt a reply."""
    import faulthandler

    args = argv if argv is not None else sys.argv[1:]
    memory = int(args[0]) if args else 0
    if memory > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ImportError, ValueError, OSError):  # no address-space limit on this system
            pass
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    faulthandler.enable(file=sys.__stderr__)
    import harness.cases  # noqa: F401  (the catalog, before the first timed request)
    from harness.validation.processes import become_subreaper, reap_children

    become_subreaper()  # the plug-in's orphans stay in this tree, where the parent finds them
    worker = Worker()
    write_message(replies, {"ready": os.getpid()})
    while True:
        request = read_message(requests)
        if request is None:
            return
        reap_children()  # the zombies of processes the parent killed after the last case
        try:
            reply = worker.handle(request)
            write_message(replies, reply)
        except MemoryError as e:
            write_message(replies, {"fault": _error("memory", e)})
        except Exception as e:  # noqa: BLE001 - e.g. a reply that does not pickle
            write_message(replies, {"fault": _error("exception", e)})


if __name__ == "__main__":
    main()
