"""Custom VJPs inside torch and JAX, correct and broken: the layer y = tanh(x W + b).

The broken ones make the mistakes a hand-written backward makes: a bias gradient not
summed over the batch (torch's autograd would have summed it back silently), a missing
factor of the chain rule, a gradient left out (None), a transposed dW, a sign, the
derivative taken from the input instead of the output.
"""

from __future__ import annotations

import numpy as np


def inputs(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    return rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)


# --- torch ---------------------------------------------------------------------------------

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency
    torch = None  # type: ignore[assignment]

if torch is not None:

    class TorchTanh(torch.autograd.Function):
        """y = tanh(x W + b); dz = dy (1 − y²); dx = dz Wᵀ, dW = xᵀ dz, db = Σ_rows dz."""

        @staticmethod
        def forward(ctx, x, W, b):
            y = torch.tanh(x @ W + b)
            ctx.save_for_backward(x, W, y)
            return y

        @staticmethod
        def backward(ctx, dy):
            x, W, y = ctx.saved_tensors
            dz = dy * (1 - y * y)
            return dz @ W.T, x.T @ dz, dz.sum(dim=0)

        inputs = staticmethod(inputs)

    class TorchTanhBiasNotSummed(TorchTanh):
        @staticmethod
        def backward(ctx, dy):
            x, W, y = ctx.saved_tensors
            dz = dy * (1 - y * y)
            return dz @ W.T, x.T @ dz, dz  # BUG: db not summed over the batch

    class TorchTanhMissingDerivative(TorchTanh):
        @staticmethod
        def backward(ctx, dy):
            x, W, y = ctx.saved_tensors
            dz = dy  # BUG: tanh's derivative (1 − y²) left out
            return dz @ W.T, x.T @ dz, dz.sum(dim=0)

    class TorchTanhNoWeightGradient(TorchTanh):
        @staticmethod
        def backward(ctx, dy):
            x, W, y = ctx.saved_tensors
            dz = dy * (1 - y * y)
            return dz @ W.T, None, dz.sum(dim=0)  # BUG: W needs a gradient


# --- jax -----------------------------------------------------------------------------------

try:
    import jax
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - jax is a dependency
    jax = None  # type: ignore[assignment]


def _jax_layer(backward):
    """A jax.custom_vjp tanh layer whose backward is ``backward(saved, dy)``."""

    @jax.custom_vjp
    def layer(x, W, b):
        return jnp.tanh(x @ W + b)

    def forward(x, W, b):
        y = jnp.tanh(x @ W + b)
        return y, (x, W, b, y)

    layer.defvjp(forward, backward)
    layer.inputs = inputs
    return layer


def _right(saved, dy):
    x, W, b, y = saved
    dz = dy * (1 - y * y)
    return dz @ W.T, x.T @ dz, dz.sum(axis=0)


def _transposed(saved, dy):
    x, W, b, y = saved
    dz = dy * (1 - y * y)
    return dz @ W.T, dz.T @ x, dz.sum(axis=0)  # BUG: dW = dzᵀ x, the transpose


def _sign(saved, dy):
    x, W, b, y = saved
    dz = dy * (1 - y * y)
    return -(dz @ W.T), x.T @ dz, dz.sum(axis=0)  # BUG: dx with the wrong sign


def _from_input(saved, dy):
    x, W, b, y = saved
    z = x @ W + b
    dz = dy * (1 - z * z)  # BUG: 1 − z², the derivative taken from the input of tanh
    return dz @ W.T, x.T @ dz, dz.sum(axis=0)


if jax is not None:
    jax_tanh = _jax_layer(_right)
    jax_tanh_transposed = _jax_layer(_transposed)
    jax_tanh_sign = _jax_layer(_sign)
    jax_tanh_from_input = _jax_layer(_from_input)
