"""The peers: ``torch.autograd.gradcheck`` and ``jax.test_util.check_grads`` on the same
implementations that ``gradparity validate`` judges.

One adapter serves every implementation and both peers, so no checker gets a better one:
an implementation becomes a ``Pair`` — a function of its differentiated arrays, f(*x),
and that function's VJP as the implementation computes it, vjp(x, ct) -> one gradient per
array. For a stage, f is the stage's own forward and the VJP its backward; for a model
plug-in, f is the case's loss (the textbook forward of ``reference.manual``, in the run's
dtype) and the VJP ct·(the implementation's gradients). The Pair is then wrapped

- as a ``torch.autograd.Function`` whose forward is f and whose backward is the VJP, for
  gradcheck (which compares that backward with finite differences of that forward);
- as a ``jax.custom_vjp`` function whose primal and VJP call f and the VJP through
  ``jax.pure_callback``, for check_grads (order 1, reverse mode: directional checks).

A peer's verdict is "pass", "fail" (its own error: gradcheck's GradcheckError,
check_grads' AssertionError) or "error" (anything else it raised: a wrong shape, a
missing name), with its message kept as the user would read it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.target import load, parse_target


@dataclass
class Pair:
    """An implementation as f(*arrays) -> output and vjp(arrays, cotangent) -> grads."""

    f: Callable[..., Any]
    vjp: Callable[[tuple, Any], tuple]
    primals: tuple[np.ndarray, ...]
    names: tuple[str, ...]


@dataclass
class Verdict:
    checker: str
    verdict: str  # "pass", "fail" or "error"
    message: str
    seconds: float


def stage_pair(obj: Any, dtype: str, seed: int = 0) -> Pair:
    """A stage: f = its forward's output, the VJP its backward (labels held fixed)."""
    import inspect

    from harness.validation.stages import STAGES

    rng = np.random.default_rng(seed)
    if obj.stage == "custom":  # its own inputs(rng), its forward's argument names
        arrays = [np.asarray(a) for a in obj.inputs(rng)]
        names: tuple[str, ...] = tuple(inspect.signature(obj.forward).parameters)
        labels: set[int] = set()
    else:
        spec = STAGES[obj.stage]
        arrays = [np.asarray(a) for a in spec.make(rng)]
        names = spec.names
        labels = {i for i, n in enumerate(names) if n in spec.labels}
    arrays = [a if i in labels else a.astype(dtype) for i, a in enumerate(arrays)]
    moving = [i for i in range(len(arrays)) if i not in labels]

    def full(xs):
        out = list(arrays)
        for i, x in zip(moving, xs, strict=True):
            out[i] = np.asarray(x)
        return out

    def f(*xs):
        out, _ = obj.forward(*full(xs))
        return out

    def vjp(xs, ct):
        _, cache = obj.forward(*full(xs))
        grads = obj.backward(ct, cache)
        grads = grads if isinstance(grads, tuple | list) else (grads,)
        return tuple(grads[i] for i in moving)

    return Pair(f, vjp, tuple(arrays[i] for i in moving), tuple(names[i] for i in moving))


def model_pair(fn: Any, case: Any, dtype: str, seed: int = 0) -> Pair:
    """A model plug-in on ``case``: f = the case's loss (``reference.manual``'s forward),
    the VJP ct times the plug-in's gradients."""
    from harness.backends.manual import runner_for
    from harness.validation.worker import wants_case

    params, inputs = case.build(seed, dtype)
    names = tuple(params)
    forward = runner_for(case)

    def as_params(xs):
        return {k: np.asarray(x) for k, x in zip(names, xs, strict=True)}

    def f(*xs):
        return np.asarray(forward(case, as_params(xs), inputs)[0], dtype=dtype)

    def vjp(xs, ct):
        p = as_params(xs)
        out = fn(p, dict(inputs), case) if wants_case(fn) else fn(p, dict(inputs))
        grads = out["grads"] if isinstance(out.get("grads"), dict) else out
        return tuple(np.asarray(ct) * np.asarray(grads[k]) for k in names)

    return Pair(f, vjp, tuple(params[k] for k in names), names)


def pair_of(target: str, form: str, cases: list | None, dtype: str) -> Pair:
    """The Pair of a zoo entry (or any TARGET) in the stage or model form."""
    obj = load(parse_target(target))
    if form == "stage":
        return stage_pair(obj() if isinstance(obj, type) else obj, dtype)
    if form == "model":
        if not cases:
            raise ValueError("a model needs a case")
        return model_pair(obj() if isinstance(obj, type) else obj, cases[0], dtype)
    raise ValueError(f"the peers take stages and models, not the {form} form")


def _timed(checker: str, run: Callable[[], Any], failure: tuple[type, ...]) -> Verdict:
    start = time.perf_counter()
    try:
        run()
        verdict, message = "pass", ""
    except failure as e:
        verdict, message = "fail", str(e).strip()
    except Exception as e:  # noqa: BLE001 - what the peer let through, as the user sees it
        verdict, message = "error", f"{type(e).__name__}: {e}".strip()
    return Verdict(checker, verdict, message, time.perf_counter() - start)


def gradcheck(pair: Pair, fast_mode: bool = False) -> Verdict:
    """``torch.autograd.gradcheck`` with its default tolerances on the Pair as a Function."""
    import torch
    from torch.autograd.gradcheck import GradcheckError

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.arrays = tuple(x.detach().numpy() for x in xs)
            return torch.as_tensor(np.asarray(pair.f(*ctx.arrays)))

        @staticmethod
        def backward(ctx, ct):
            grads = pair.vjp(ctx.arrays, ct.detach().numpy())
            return tuple(torch.as_tensor(np.asarray(g)) for g in grads)

    xs = tuple(torch.tensor(a, requires_grad=True) for a in pair.primals)
    name = "gradcheck (fast_mode)" if fast_mode else "gradcheck"
    return _timed(name, lambda: torch.autograd.gradcheck(Wrapped.apply, xs, fast_mode=fast_mode),
                  (GradcheckError,))  # fmt: skip


def check_grads(pair: Pair) -> Verdict:
    """``jax.test_util.check_grads(order=1, modes=["rev"])`` with its default tolerances on
    the Pair as a ``jax.custom_vjp`` function (float64 switched on inside the call)."""
    import jax
    from jax.test_util import check_grads as peer

    def run():
        quiet = logging.getLogger("jax._src.callback")  # it logs what it then raises
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            checked()
        finally:
            quiet.setLevel(level)

    def checked():
        with jax.enable_x64(True):
            primals = tuple(jax.numpy.asarray(a) for a in pair.primals)
            out = np.asarray(pair.f(*pair.primals))
            out_shape = jax.ShapeDtypeStruct(out.shape, out.dtype)
            in_shapes = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in pair.primals)

            @jax.custom_vjp
            def f(*xs):
                return jax.pure_callback(
                    lambda *a: np.asarray(pair.f(*a), out.dtype), out_shape, *xs
                )

            def fwd(*xs):
                return f(*xs), xs

            def bwd(xs, ct):
                def grads(*a):
                    got = pair.vjp(a[:-1], a[-1])
                    return tuple(
                        np.asarray(g, dtype=s.dtype) for g, s in zip(got, in_shapes, strict=True)
                    )

                return jax.pure_callback(grads, in_shapes, *xs, ct)

            f.defvjp(fwd, bwd)
            peer(f, primals, order=1, modes=["rev"])

    return _timed("check_grads", run, (AssertionError,))


__all__ = ["Pair", "Verdict", "check_grads", "gradcheck", "model_pair", "pair_of", "stage_pair"]
