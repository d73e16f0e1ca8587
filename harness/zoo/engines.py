"""The zoo's broken engines: the tiny engine with one rule wrong each."""

from __future__ import annotations

import numpy as np

from harness.zoo.tiny_engine import Tensor, TinyEngine


class OverwriteNotAdd(TinyEngine):
    def accumulate(self, t, g):
        t.grad = g  # BUG: a value used twice keeps only the last path's gradient: add them


class MatmulWrongTranspose(TinyEngine):
    def matmul(self, a, b):
        a, b = self.lift(a), self.lift(b)
        A, B = np.asarray(a.value), np.asarray(b.value)
        if A.ndim < 2 or B.ndim < 2:
            return super().matmul(a, b)
        return self.node(A @ B, (a, b), lambda g: (g @ B, A.T @ g))  # BUG: g Bᵀ, not g B


class NoUnbroadcast(TinyEngine):
    @staticmethod
    def unbroadcast(g, shape):
        return g  # BUG: a broadcast input's gradient must be summed back to its shape


class MeanMissingCount(TinyEngine):
    def mean(self, x, axis=None, keepdims=False):
        out = np.mean(x.value, axis=axis, keepdims=keepdims)
        return self.node(
            out,
            (x,),
            lambda g: (
                np.broadcast_to(  # BUG: no 1/count
                    g if keepdims or axis is None else np.expand_dims(g, axis), x.shape
                ).copy(),
            ),
        )


class DivQuotientRule(TinyEngine):
    def div(self, a, b):
        a, b = self.lift(a), self.lift(b)
        return self.node(
            a.value / b.value, (a, b), lambda g: (g / b.value, -g * a.value / b.value)
        )  # BUG: a / b², not a / b


class SigmoidFromInput(TinyEngine):
    def sigmoid(self, x):
        out = 0.5 * (1 + np.tanh(0.5 * x.value))
        return self.node(out, (x,), lambda g: (g * x.value * (1 - x.value),))  # BUG: from x


class GradsNotReset(TinyEngine):
    """Parameter tensors kept (by value) across calls, their .grad never zeroed."""

    leaves: dict = {}  # shared on purpose: that is the bug

    def tensor(self, array, requires_grad=False):
        if not requires_grad:
            return super().tensor(array, requires_grad)
        key = (np.shape(array), np.asarray(array).tobytes())
        if key not in GradsNotReset.leaves:
            GradsNotReset.leaves[key] = Tensor(np.asarray(array), self, requires_grad=True)
        return GradsNotReset.leaves[key]

    def zero_grads(self, order):
        for node in order:
            if node.parents:  # BUG: the leaves keep the gradient of the previous call
                node.grad = None
