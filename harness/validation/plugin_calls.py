"""A plug-in's calls, as a worker process (``harness.sandbox``) answers them.

The requests ``load`` (import the target, say what it is) and ``run`` (one case, the plug-in
called twice on fresh copies of its arrays, as its form calls it: ``harness.validation.forms``)
run the plug-in's code under ``harness.sandbox.call``: what it returned, printed and
raised, as data. Values come back as numpy arrays with a note of their original type; the
arrays it was given come back too, as they were after each call, so that this process —
not the worker, whose numpy the plug-in may have replaced — finds what it wrote into them.
Judging all that is the parent's job (``checks.py``). ``LOAD_REPLY`` and ``RUN_REPLY`` are
the shapes of the replies, which the parent checks before it reads them.

It imports numpy, ``harness.namespace`` and the cases, never pandas or a framework (unless the
plug-in is a framework's function), so that it starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.cases.base import rebuild
from harness.sandbox.wire import Mapping as MapOf
from harness.sandbox.wire import Tuple
from harness.sandbox.worker import Worker, call
from harness.target import Target
from harness.target import load as load_target
from harness.validation.forms import FORMS, attributes
from harness.validation.forms.base import type_name
from harness.validation.forms.stage import custom_inputs, own_forward_differences

LOAD = "harness.validation.plugin_calls:load"
RUN = "harness.validation.plugin_calls:run"

# --- the shapes of the replies (``harness.sandbox.wire.conforms``)
ARRAY = (np.ndarray, np.generic)
FAULT = {
    "fault_name": str,
    "type": str,
    "message": str,
    "traceback": str,
    "facts?": MapOf(str, str),
}
PRINTED = {
    "stdout": str,
    "stdout_chars": int,
    "stdout_lines?": int,
    "stderr": str,
    "stderr_chars": int,
    "stderr_lines?": int,
    "fd?": str,  # what it wrote to file descriptors 1 and 2 (os.write, C code, a subprocess)
    "fd_chars?": int,
    "fd_lines?": int,
}
LEAF = {
    "array": (None, *ARRAY),
    "type": str,
    "note": (None, str),
    "repr?": str,
    "dtype?": str,  # an array's dtype where it is no number's (complex, object, str)
}
OUTPUT = {
    "top": str,
    "repr?": str,
    "bad_taps?": str,
    "bad_names?": str,  # the types of keys that are no str
    "grads?": (None, MapOf(str, LEAF)),
    "taps?": MapOf(str, LEAF),
    "loss?": (None, LEAF),
}
CALL = {
    **PRINTED,
    "error": (None, FAULT),
    "seconds": float,
    "output?": OUTPUT,
    "after?": {
        "params": MapOf(str, ARRAY),
        "inputs": MapOf(str, ARRAY),
        "d_out?": [ARRAY],
        "d_out_names?": [str],
    },
}
FD = {
    **PRINTED,
    "error": (None, FAULT),
    "seconds": float,
    "value": (
        None,
        {"grads": MapOf(str, ARRAY), "errors": MapOf(str, ARRAY)},
        {"directional": MapOf(str, Tuple(ARRAY, ARRAY, ARRAY))},
    ),
}
RUN_REPLY = ({"calls": [CALL], "fd?": FD}, {"skip": str}, {"fault": FAULT})
LOAD_REPLY = (
    {**PRINTED, "fault": FAULT},
    {**PRINTED, "form": str, "stage": (None, str), "cases": (None, [str]),
     "attributes": [str], "names?": [str], "smooth?": bool, "arrays?": [ARRAY],
     "out_shapes?": [[int]], "fault?": FAULT},
)  # fmt: skip


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
    elif isinstance(x, (int, float, list, tuple)) and not isinstance(x, bool):
        try:
            out["array"] = np.asarray(x, dtype=dtype)
            out["note"] = (
                f"a Python {name}, converted to a {dtype} array"
                if isinstance(x, (int, float))
                else f"a {name}, converted with np.asarray(..., dtype={dtype})"
            )
        except OverflowError:  # an int beyond the dtype's range
            out["repr"] = f"an integer too large for {dtype}"
        except (ValueError, TypeError):
            out["repr"] = repr(x)[:80]
    else:
        out["repr"] = repr(x)[:80]
    if out["array"] is not None and out["array"].dtype.kind not in "fiub":
        dtype_of = str(out["array"].dtype)  # complex, object, str: judged once a call (checks)
        out["repr"], out["dtype"], out["array"] = f"an array of dtype {dtype_of}", dtype_of, None
    return out


def _tree(values: Any, dtype: str) -> Any:
    """{name: plain} from a mapping (None if it is not one); its keys are str
    (``_not_names``)."""
    if not isinstance(values, Mapping):
        return None
    return {_name(k): plain(v, dtype) for k, v in values.items()}


def _name(key: str) -> str:
    """A str key's own value: a subclass's ``__str__`` could give another tensor's name."""
    return str.__str__(key)


def _not_names(*mappings: Any) -> str:
    """The types of the keys that are no str, "" where every key is one: ``str()`` of
    anything else could name a tensor twice, the last one silently winning."""
    odd = {
        type_name(k)
        for m in mappings
        if isinstance(m, Mapping)
        for k in m
        if not isinstance(k, str)
    }
    return ", ".join(sorted(odd))


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
    odd = _not_names(grads, taps)
    if odd:
        return {"top": "dict", "bad_names": odd}
    for name, value in (taps or {}).items():
        if isinstance(value, list) and value and not isinstance(value[0], (int, float, list)):
            steps = [plain(v, dtype) for v in value]  # per-step tensors (engine form)
            bad = next((s for s in steps if s["array"] is None), None)
            taps_plain[_name(name)] = bad or {
                "array": np.stack([s["array"] for s in steps]),
                "type": steps[0]["type"],
                "note": steps[0]["note"],
            }
        else:
            taps_plain[_name(name)] = plain(value, dtype)
    return {
        "top": "dict",
        "grads": _tree(grads, dtype),
        "taps": taps_plain,
        "loss": None if loss is None else plain(loss, dtype),
    }


def detect_form(obj: Any) -> str:
    """The name of the first registered form that recognises ``obj``
    (``harness.validation.forms``), or "unknown"."""
    from harness.validation.forms import detect_form as detect

    return detect(obj)


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
    info: dict[str, Any] = {
        k: record[k]
        for stream in ("stdout", "stderr", "fd")
        for k in (stream, f"{stream}_chars", f"{stream}_lines")
    }
    if record["error"] is not None:
        return {**info, "fault": record["error"]}
    obj = record["value"]
    form = request.get("form") or detect_form(obj)
    plugin_form = FORMS.get(form)
    if (
        plugin_form is not None and plugin_form.framework
    ):  # from here on it is a custom stage of the framework's
        made = call(plugin_form.adapt, obj)
        if made["error"] is not None:
            return {**info, "fault": {**made["error"], "fault_name": "wrong type"}}
        obj = worker.loaded[target.text] = made["value"]
        info.update(names=list(obj.names), smooth=bool(obj.smooth))
    cases = getattr(obj, "cases", None)
    if cases is not None and not (
        isinstance(cases, (list, tuple)) and all(isinstance(c, str) for c in cases)
    ):
        return {
            **info,
            "fault": {
                "fault_name": "wrong type",
                "type": "",
                "traceback": "",
                "message": "its `cases` attribute is not a list of case names",
            },
        }
    stage = getattr(obj, "stage", None)
    info.update(
        form=form,
        stage=stage if isinstance(stage, str) else None,
        cases=None if cases is None else list(cases),
        attributes=[a for a in attributes() if hasattr(obj, a)],
    )
    if plugin_form is not None and plugin_form.has_example_inputs(obj):
        made = call(custom_inputs, obj)
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
        return {
            "fault": {
                "fault_name": "exception",
                "type": "",
                "traceback": "",
                "message": "the case cannot be sent to the plug-in's worker: define its class "
                "at the top level of a module or file",
            }
        }
    made = call(rebuild, request["case"])
    if made["error"] is not None:
        return {"fault": made["error"]}
    case = made["value"]
    params, inputs = request["params"], request["inputs"]
    mode, direction = request.get("mode", "rev"), request.get("direction")
    plugin_form = FORMS[form]
    obj, fn, why = plugin_form.calling(obj, mode, tuple(request.get("modes") or (mode,)), direction)
    if fn is None:
        return {"skip": why}
    calls = []
    for _ in range(request.get("calls", 2)):
        p, x = _copy(params), _copy(inputs)
        record = call(fn, obj, case, p, x)
        value, record["value"] = record["value"], None
        record["after"] = {"params": p, "inputs": x}
        if record["error"] is None:
            if isinstance(value, dict) and "_d_out_after" in value:
                record["after"]["d_out"] = value.pop("_d_out_after")
                record["after"]["d_out_names"] = value.pop("_d_out_names")
            record["output"] = normalise(value, dtype)
        calls.append(record)
        if record["error"] is not None:
            break
    reply: dict[str, Any] = {"calls": calls}
    if plugin_form.own_forward and request.get("fd") and calls[0]["error"] is None:
        reply["fd"] = call(own_forward_differences, obj, case, params, inputs)
    return reply
