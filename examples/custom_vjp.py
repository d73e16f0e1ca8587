"""A custom VJP inside a framework, checked: the same layer, y = tanh(x W + b), as a
``torch.autograd.Function`` and as a ``jax.custom_vjp`` function, each with its backward
written by hand, and ``TanhLayer``, a plain forward of the same math.

    gradparity validate examples/custom_vjp.py:TorchTanhLayer --as torch-function
    gradparity validate examples/custom_vjp.py:jax_tanh_layer --as jax-custom-vjp
    gradparity validate examples/custom_vjp.py:TorchTanhLayer --case examples/custom_vjp.py:TanhLayer

Alone, a function is checked against finite differences of its own forward, on the
arrays its ``inputs(rng)`` gives. With ``--case``, the case's parameters and inputs are
its arguments (by name) and the tape, torch and jax differentiate the plain forward as
references beside them. The case returns what the function returns (here the layer's
output, an array); gradparity projects both on the same random d_out.

The backward is called directly with what it returns judged as it is: a gradient of the
wrong shape, or None for an input that needs one, is a fault of its own (torch's autograd
would sum a broadcast shape back for you).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import torch

from harness.cases import Case


def _inputs(rng):
    return rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)


class TorchTanhLayer(torch.autograd.Function):
    """y = tanh(x W + b); its backward from the output: dz = dy (1 − y²)."""

    @staticmethod
    def forward(ctx, x, W, b):
        y = torch.tanh(x @ W + b)
        ctx.save_for_backward(x, W, y)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, W, y = ctx.saved_tensors
        dz = dy * (1 - y * y)
        return dz @ W.T, x.T @ dz, dz.sum(dim=0)  # dx, dW, db (b was added to every row)

    inputs = staticmethod(_inputs)


@jax.custom_vjp
def jax_tanh_layer(x, W, b):
    return jnp.tanh(x @ W + b)


def _forward(x, W, b):
    y = jnp.tanh(x @ W + b)
    return y, (x, W, y)


def _backward(saved, dy):
    x, W, y = saved
    dz = dy * (1 - y * y)
    return dz @ W.T, x.T @ dz, dz.sum(axis=0)


jax_tanh_layer.defvjp(_forward, _backward)
jax_tanh_layer.inputs = _inputs


class TanhLayer(Case):
    """y = tanh(x W + b)   (x: 4×3, W: 3×5, b: 5): the layer's plain forward, returning y."""

    name, family = "tanh_layer", "user"

    def setup(self, rng):
        x, W, b = _inputs(rng)
        return {"W": W, "b": b}, {"x": x}

    def loss(self, xp, p, inputs):
        return xp.tanh(inputs["x"] @ p["W"] + p["b"])


__all__ = ["TanhLayer", "TorchTanhLayer", "jax_tanh_layer"]
