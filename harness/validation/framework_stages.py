"""Custom VJPs inside a framework, as custom stages: a ``torch.autograd.Function`` subclass
(``--as torch-function``) or a ``jax.custom_vjp`` function (``--as jax-custom-vjp``).

Each becomes an object with the custom stage's protocol — ``forward(*arrays) -> (out,
cache)``, ``backward(d_out, cache) -> grads``, ``names`` — so it goes through the same
worker, raw-output checks and finite differences of its own forward as any stage. The
user's backward is called *directly* — ``Function.backward(ctx, *grad_outputs)`` with a
context of our own, ``f.bwd(residuals, d_out)`` — never through the framework's autograd,
which would sum a broadcast-shaped gradient back to its input's shape (hiding a missing
sum over the batch) and check shapes for it: what comes back is judged as it is.

Where the inputs come from: ``--case CASE`` (a plain forward of the same math, whose
parameters and inputs are the function's arguments, by name; the tape, torch and jax
differentiate it as the references), or an ``inputs(rng)`` static method on the function
(finite differences of its own forward are then the only reference).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


def is_torch_function(obj: Any) -> bool:
    return isinstance(obj, type) and any(
        c.__name__ == "Function" and c.__module__.startswith("torch.autograd") for c in obj.__mro__
    )


def is_jax_custom_vjp(obj: Any) -> bool:
    return type(obj).__name__ == "custom_vjp" and type(obj).__module__.startswith("jax")


def _names(fn: Any, skip: int) -> tuple[str, ...]:
    parameters = list(inspect.signature(fn).parameters.values())[skip:]
    return tuple(
        p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


class Context:
    """What ``Function.forward`` and ``backward`` use of torch's ctx: saved tensors, which
    inputs need a gradient, and attributes set on it."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple = ()
        self.materialize_grads = True

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *args: Any) -> None:
        pass

    def mark_dirty(self, *args: Any) -> None:
        pass

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value


class TorchFunctionStage:
    """A ``torch.autograd.Function`` subclass as a custom stage."""

    stage = "custom"

    def __init__(self, function: Any) -> None:  # a user's class: its methods are its own
        self.function = function
        self.new_style = any(  # forward(*args) and setup_context(ctx, inputs, output)
            "setup_context" in vars(c)
            for c in function.__mro__
            if not c.__module__.startswith("torch")
        )
        self.names = _names(function.forward, 0 if self.new_style else 1)  # after ctx
        self.smooth = bool(getattr(function, "smooth", True))

    def inputs(self, rng: np.random.Generator) -> tuple:
        return tuple(self.function.inputs(rng))

    def forward(self, *arrays: Any) -> tuple[Any, Any]:
        import torch

        args = [torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in arrays]
        needs = tuple(bool(torch.is_tensor(a) and a.is_floating_point()) for a in args)
        ctx = Context(needs)
        with torch.no_grad():
            if self.new_style:
                out = self.function.forward(*args)
                self.function.setup_context(ctx, tuple(args), out)
            else:
                out = self.function.forward(ctx, *args)
        outs = out if isinstance(out, tuple) else (out,)
        values = tuple(o.detach().numpy() if torch.is_tensor(o) else np.asarray(o) for o in outs)
        return (values if isinstance(out, tuple) else values[0]), (ctx, outs)

    def backward(self, d_out: Any, cache: Any) -> tuple:
        import torch

        ctx, outs = cache
        d = d_out if isinstance(d_out, tuple) else (d_out,)
        grad_outputs = [
            torch.as_tensor(np.asarray(g, dtype=o.detach().numpy().dtype))
            for g, o in zip(d, outs, strict=True)
        ]
        with torch.no_grad():
            grads = self.function.backward(ctx, *grad_outputs)
        grads = grads if isinstance(grads, tuple) else (grads,)
        return tuple(g.detach().numpy() if torch.is_tensor(g) else g for g in grads)


class JaxCustomVJPStage:
    """A ``jax.custom_vjp`` function (with ``defvjp(fwd, bwd)``) as a custom stage."""

    stage = "custom"

    def __init__(self, function: Any) -> None:
        self.function = function
        self.names = _names(function.fun, 0)
        self.smooth = bool(getattr(function, "smooth", getattr(function.fun, "smooth", True)))

    def inputs(self, rng: np.random.Generator) -> tuple:
        make = getattr(self.function, "inputs", None) or getattr(self.function.fun, "inputs", None)
        if make is None:
            raise AttributeError("the function has no inputs(rng): give --case")
        return tuple(make(rng))

    def forward(self, *arrays: Any) -> tuple[Any, Any]:
        import jax
        import jax.numpy as jnp

        with jax.enable_x64(True):
            args = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in arrays]
            out, residuals = self.function.fwd(*args)
            outs = out if isinstance(out, tuple) else (out,)
            values = tuple(np.asarray(o) for o in outs)
        return (values if isinstance(out, tuple) else values[0]), (residuals, outs)

    def backward(self, d_out: Any, cache: Any) -> tuple:
        import jax
        import jax.numpy as jnp

        residuals, outs = cache
        with jax.enable_x64(True):
            d = d_out if isinstance(d_out, tuple) else (d_out,)
            cotangent = tuple(
                jnp.asarray(np.asarray(g, dtype=np.asarray(o).dtype))
                for g, o in zip(d, outs, strict=True)
            )
            grads = self.function.bwd(residuals, cotangent if len(outs) > 1 else cotangent[0])
            grads = grads if isinstance(grads, tuple) else (grads,)
            return tuple(None if g is None else np.asarray(g) for g in grads)


__all__ = ["JaxCustomVJPStage", "TorchFunctionStage", "is_jax_custom_vjp", "is_torch_function"]
