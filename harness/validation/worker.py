"""A plug-in's calls, as a worker process (``harness.sandbox``) answers them.

The requests ``load`` (import the target, say what it is) and ``run`` (one case, the plug-in
called twice on fresh copies of its arrays) run the plug-in's code under
``harness.sandbox.call``: what it returned, printed and raised, as data. Values come back
as numpy arrays with a note of their original type; the arrays it was given come back too,
as they were after each call, so that this process — not the worker, whose numpy the
plug-in may have replaced — finds what it wrote into them. Judging all that is the
parent's job (``checks.py``). ``LOAD_REPLY`` and ``RUN_REPLY`` are the shapes of the
replies, which the parent checks before it reads them.

It imports numpy, ``harness.xp`` and the cases, never pandas or a framework (unless the
plug-in is a framework's function), so that it starts fast.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.cases.base import rebuild
from harness.sandbox.wire import Mapping as MapOf
from harness.sandbox.wire import Tuple
from harness.sandbox.worker import Worker, call
from harness.target import Target
from harness.target import load as load_target

LOAD = "harness.validation.worker:load"
RUN = "harness.validation.worker:run"
ATTRIBUTES = ("stage", "forward", "backward", "tensor", "grad", "numpy")

# --- the shapes of the replies (``harness.sandbox.wire.conforms``)
ARRAY = (np.ndarray, np.generic)
FAULT = {"kind": str, "type": str, "message": str, "traceback": str}
PRINTED = {"stdout": str, "stdout_chars": int, "stderr": str, "stderr_chars": int}
LEAF = {"array": (None, *ARRAY), "type": str, "note": (None, str), "repr?": str}
OUTPUT = {"top": str, "repr?": str, "bad_taps?": str, "grads?": (None, MapOf(str, LEAF)),
          "taps?": MapOf(str, LEAF), "loss?": (None, LEAF)}  # fmt: skip
CALL = {**PRINTED, "error": (None, FAULT), "seconds": float, "output?": OUTPUT,
        "after?": {"params": MapOf(str, ARRAY), "inputs": MapOf(str, ARRAY),
                   "d_out?": [ARRAY]}}  # fmt: skip
FD = {**PRINTED, "error": (None, FAULT), "seconds": float,
      "value": (None, {"grads": MapOf(str, ARRAY), "errors": MapOf(str, ARRAY)},
                {"directional": MapOf(str, Tuple(ARRAY, ARRAY, ARRAY))})}  # fmt: skip
RUN_REPLY = ({"calls": [CALL], "fd?": FD}, {"skip": str}, {"fault": FAULT})
LOAD_REPLY = (
    {**PRINTED, "fault": FAULT},
    {**PRINTED, "form": str, "stage": (None, str), "cases": (None, [str]),
     "attributes": [str], "names?": [str], "smooth?": bool, "arrays?": [ARRAY],
     "out_shapes?": [[int]], "fault?": FAULT},
)  # fmt: skip


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


def _obj(worker: Worker, target: Target) -> Any:
    if target.text not in worker.loaded:
        worker.loaded[target.text] = load_target(target)
    return worker.loaded[target.text]


def load(worker: Worker, request: dict[str, Any]) -> dict[str, Any]:
    """Import the target and say what it is: its form, stage, cases and attributes; a
    custom stage's example inputs and output shapes."""
    target = Target.from_data(request["target"])
    record = call(_obj, worker, target)
    info: dict[str, Any] = {k: record[k] for k in ("stdout", "stdout_chars", "stderr",
                                                   "stderr_chars")}  # fmt: skip
    if record["error"] is not None:
        return {**info, "fault": record["error"]}
    obj = record["value"]
    form = request.get("form") or detect_form(obj)
    if form in FRAMEWORK_FORMS:  # from here on it is a custom stage of the framework's
        from harness.validation.frameworks import JaxCustomVJPStage, TorchFunctionStage, adapt

        if not isinstance(obj, (TorchFunctionStage, JaxCustomVJPStage)):  # not yet adapted
            made = call(adapt, obj, form)
            if made["error"] is not None:
                return {**info, "fault": {**made["error"], "kind": "wrong type"}}
            obj = worker.loaded[target.text] = made["value"]
        info.update(names=list(obj.names), smooth=bool(obj.smooth))
    cases = getattr(obj, "cases", None)
    if cases is not None and not (isinstance(cases, (list, tuple))
                                  and all(isinstance(c, str) for c in cases)):  # fmt: skip
        return {**info, "fault": {"kind": "wrong type", "type": "", "traceback": "",
                                  "message": "its `cases` attribute is not a list of case names"}}  # fmt: skip
    stage = getattr(obj, "stage", None)
    info.update(form=form, stage=stage if isinstance(stage, str) else None,
                cases=None if cases is None else list(cases),
                attributes=[a for a in ATTRIBUTES if hasattr(obj, a)])  # fmt: skip
    if stage == "custom" and (form == "stage" or hasattr_inputs(obj)):
        made = call(_custom_inputs, obj)
        if made["error"] is not None:
            return {**info, "fault": made["error"]}
        info.update(made["value"])
    return info


def run(worker: Worker, request: dict[str, Any]) -> dict[str, Any]:
    """One case through the plug-in: ``calls`` calls (2 by default) on fresh copies of the
    arrays, each with what it returned, printed and raised and the arrays as the call left
    them; for a stage, finite differences of its own forward (``fd``)."""
    target = Target.from_data(request["target"])
    found = call(_obj, worker, target)
    if found["error"] is not None:
        return {"fault": found["error"]}
    obj = found["value"]
    form, dtype = request["form"], request["dtype"]
    if request.get("case") is None:
        return {"fault": {"kind": "exception", "type": "", "traceback": "", "message":
                          "the case cannot be sent to the plug-in's worker: define its class "
                          "at the top level of a module or file"}}  # fmt: skip
    made = call(rebuild, request["case"])
    if made["error"] is not None:
        return {"fault": made["error"]}
    case = made["value"]
    params, inputs = request["params"], request["inputs"]
    mode, direction = request.get("mode", "rev"), request.get("direction")
    fn = CALLS[form]
    if form == "model":
        obj, why = model_function(obj, mode, tuple(request.get("modes") or (mode,)))
        if obj is None:
            return {"skip": why}
        fn = _model_call if mode == "rev" else _model_mode_call(mode, direction)
    calls = []
    for _ in range(request.get("calls", 2)):
        p, x = _copy(params), _copy(inputs)
        record = call(fn, obj, case, p, x)
        value, record["value"] = record["value"], None
        record["after"] = {"params": p, "inputs": x}
        if record["error"] is None:
            if isinstance(value, dict) and "_d_out_after" in value:
                record["after"]["d_out"] = value.pop("_d_out_after")
            record["output"] = normalise(value, dtype)
        calls.append(record)
        if record["error"] is not None:
            break
    reply: dict[str, Any] = {"calls": calls}
    if CALLS[form] is _stage_call and request.get("fd") and calls[0]["error"] is None:
        reply["fd"] = call(_stage_fd, obj, case, params, inputs)
    return reply


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
    return {"grads": named, "loss": loss, "_d_out_after": given}


def _stage_fd(obj, case, params, inputs):
    """Finite differences of the plug-in's own forward (float64 copies of the inputs)."""
    from harness.finite_differences import (
        MAX_ELEMENTWISE,
        arguments_along_directions,
        arguments_per_element,
    )
    from harness.validation.stages import weighted_loss

    stage = _stage_object(obj)
    d_out = [np.asarray(d, dtype=np.float64) for d in case.d_out(inputs)]
    args = [np.array(a, dtype=np.float64) if n not in case.labels else a
            for n, a in zip(case.names, case.arguments(params, inputs), strict=True)]  # fmt: skip
    which = [i for i, n in enumerate(case.names) if n not in case.labels]
    names = [case.names[i] for i in which]

    def loss(a):
        return weighted_loss(stage.forward(*a)[0], d_out)

    if sum(np.size(args[i]) for i in which) > MAX_ELEMENTWISE:  # large: along directions
        found = arguments_along_directions(loss, args, which, case.smooth)
        return {"directional": dict(zip(names, found, strict=True))}
    grads, errors = arguments_per_element(loss, args, which, case.smooth)
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
    return {"arrays": list(arrays), "names": list(names),
            "smooth": bool(getattr(stage, "smooth", True)),
            "out_shapes": [[int(n) for n in np.shape(o)] for o in outs]}  # fmt: skip


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
