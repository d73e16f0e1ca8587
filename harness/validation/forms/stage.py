"""The stage form: one local step, its forward and your hand-written backward.

    stage = "linear"                      which step (``harness.validation.stage_cases.STAGES``,
                                          or "custom" with ``inputs(rng)``)
    forward(*inputs) -> (out, cache)
    backward(d_out, cache) -> grads       one gradient per input, in order

It is checked against the harness's own definition of the stage on the references and
against finite differences of its own forward (``own_forward``), so that a backward that
matches a wrong forward still shows. The stage catalog and the case a stage becomes are
``harness.validation.stage_cases``.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np

from harness.validation.forms.base import Form, type_name


class StageProtocolError(TypeError):
    """A stage plug-in broke its protocol (forward's pair, backward's count)."""


def stage_object(obj: Any) -> Any:
    """A class is instantiated once; an instance is used as it is."""
    return obj() if isinstance(obj, type) else obj


def stage_call(obj, case, params, inputs):
    """forward, then backward with the case's fixed d_out: the gradients by input name,
    L = Σ ⟨d_out, out⟩ in the run's dtype, and d_out as the backward left it."""
    from harness.validation.stage_cases import weighted_loss

    stage = stage_object(obj)
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
    return {
        "grads": named,
        "loss": loss,
        "_d_out_after": given,
        "_d_out_names": d_out_names(stage, len(given)),
    }


def d_out_names(stage: Any, n: int) -> list[str]:
    """The ``n`` gradients of the outputs as the backward itself calls them: its first
    parameter's name (``dnext``), indexed where it is given a tuple (``dnext[1]``)."""
    try:
        first = next(iter(inspect.signature(stage.backward).parameters))
    except (TypeError, ValueError, StopIteration):
        first = "d_out"
    return [first] if n == 1 else [f"{first}[{k}]" for k in range(n)]


def own_forward_differences(obj, case, params, inputs):
    """Finite differences of the plug-in's own forward (float64 copies of the inputs)."""
    from harness.finite_differences import (
        MAX_ELEMENTWISE,
        arguments_along_directions,
        arguments_per_element,
    )
    from harness.validation.stage_cases import weighted_loss

    stage = stage_object(obj)
    d_out = [np.asarray(d, dtype=np.float64) for d in case.d_out(inputs)]
    args = [
        np.array(a, dtype=np.float64) if n not in case.labels else a
        for n, a in zip(case.names, case.arguments(params, inputs), strict=True)
    ]
    which = [i for i, n in enumerate(case.names) if n not in case.labels]
    names = [case.names[i] for i in which]

    def loss(a):
        return weighted_loss(stage.forward(*a)[0], d_out)

    if sum(np.size(args[i]) for i in which) > MAX_ELEMENTWISE:  # large: along directions
        found = arguments_along_directions(loss, args, which, case.smooth)
        return {"directional": dict(zip(names, found, strict=True))}
    grads, errors = arguments_per_element(loss, args, which, case.smooth)
    return {
        "grads": dict(zip(names, grads, strict=True)),
        "errors": dict(zip(names, errors, strict=True)),
    }


def _parameter_names(forward, count: int) -> list[str]:
    """The names of forward's parameters (``forward(self, x, h, W)`` -> x, h, W), where it has
    that many named ones; else x0, x1, …"""
    try:
        parameters = [
            p
            for p in inspect.signature(forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        parameters = []
    if len(parameters) == count:
        return [p.name for p in parameters]
    return [f"x{i}" for i in range(count)]


def custom_inputs(obj):
    """A custom stage's example inputs and the shapes of its outputs."""
    stage = stage_object(obj)
    arrays = tuple(np.asarray(a) for a in stage.inputs(np.random.default_rng(0)))
    names = tuple(getattr(stage, "names", None) or _parameter_names(stage.forward, len(arrays)))
    out = stage.forward(*arrays)[0]
    outs = out if isinstance(out, tuple) else (out,)
    return {"arrays": list(arrays), "names": list(names),
            "smooth": bool(getattr(stage, "smooth", True)),
            "out_shapes": [[int(n) for n in np.shape(o)] for o in outs]}  # fmt: skip


class Stage(Form):
    name = "stage"
    described = "a stage (stage, forward, backward)"
    needs: ClassVar[tuple[str, ...]] = ("stage", "forward", "backward")
    own_forward = True
    peer = "stage"

    def detects(self, obj: Any) -> bool:
        return all(hasattr(obj, a) for a in ("forward", "backward")) and hasattr(obj, "stage")

    def has_example_inputs(self, obj: Any) -> bool:
        return getattr(obj, "stage", None) == "custom"

    def call(self, obj: Any, case: Any, params: dict, inputs: dict) -> Any:
        return stage_call(obj, case, params, inputs)

    def checked_on(self, info, cases, problem, target, resolve):
        """The stage it names is its one case (a custom stage's on its own example inputs);
        a name not in the catalog is a problem."""
        from harness.validation.stage_cases import STAGES, StageVjpCase

        stage = info.get("stage")
        if problem is None and stage not in STAGES and stage != "custom":
            problem = {
                "fault_name": "missing attribute",
                "message": f"stage = {stage!r} is not one of {', '.join(STAGES)} or 'custom'",
            }
        if stage == "custom" and problem is None:
            return [custom_stage_case(info)], problem
        return [StageVjpCase(stage if stage in STAGES else "linear")], problem

    def references(self, info, references, chosen, notes):
        """None for a custom stage (finite differences of its own forward are the one
        reference); no numeric one for a stage with a kink."""
        from harness.validation.stage_cases import STAGES

        stage = info.get("stage")
        if stage == "custom":
            return []
        if stage in STAGES and not STAGES[stage].smooth and "numeric" in references:
            notes.append(
                f"  · stage {stage!r} has a kink at exact input values (relu'(0) = 0 "
                "by convention): the numeric reference is left out; your backward is "
                "still checked against finite differences of your own forward, which "
                "accept any subgradient there"
            )
            return [r for r in references if r != "numeric"]
        return references


def custom_stage_case(info: dict) -> Any:
    """The case of a custom stage, on the example inputs its worker sent."""
    from harness.validation.stage_cases import StageVjpCase

    return StageVjpCase("custom", info["arrays"], info["names"], info["smooth"], info["out_shapes"])
