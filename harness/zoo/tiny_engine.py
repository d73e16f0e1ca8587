"""A tiny reverse-mode engine on numpy arrays, micrograd-style, in the engine form.

Each operation builds its output and, right beside it, the closure that sends the
gradient back to its inputs (``back(g) -> one gradient per input``). ``grad`` orders the
graph once (iteratively: a 1000-step unroll is fine), walks it from the loss back and
*adds* every path's contribution, undoing broadcasting in one helper. The engine is the
zoo's correct engine and the README's engine example; the zoo's broken engines
(``harness.zoo.engines``) override one rule each.

    gradparity validate harness.zoo.tiny_engine:TinyEngine --as engine
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Tensor:
    """A value, the tensors it was made from (in order) and how to send a gradient back."""

    __array_ufunc__ = None  # numpy hands `array <op> Tensor` to our reflected operators

    def __init__(
        self,
        value: Any,
        engine: TinyEngine,
        parents: tuple = (),
        back=None,
        requires_grad: bool = False,
    ):
        # A Python number stays one, so that 2.0 * x keeps x's dtype (numpy's weak scalars).
        self.value = value if isinstance(value, (int, float)) else np.asarray(value)
        self.engine, self.parents, self.back = engine, parents, back
        self.requires_grad = requires_grad
        self.grad: np.ndarray | None = None

    shape = property(lambda self: np.shape(self.value))
    ndim = property(lambda self: np.ndim(self.value))
    dtype = property(lambda self: np.asarray(self.value).dtype)

    def __len__(self) -> int:
        return len(np.asarray(self.value))

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape})"

    __add__ = lambda a, b: a.engine.add(a, b)
    __radd__ = lambda a, b: a.engine.add(b, a)
    __sub__ = lambda a, b: a.engine.sub(a, b)
    __rsub__ = lambda a, b: a.engine.sub(b, a)
    __mul__ = lambda a, b: a.engine.mul(a, b)
    __rmul__ = lambda a, b: a.engine.mul(b, a)
    __truediv__ = lambda a, b: a.engine.div(a, b)
    __rtruediv__ = lambda a, b: a.engine.div(b, a)
    __matmul__ = lambda a, b: a.engine.matmul(a, b)
    __rmatmul__ = lambda a, b: a.engine.matmul(b, a)
    __neg__ = lambda a: a.engine.neg(a)
    __pow__ = lambda a, p: a.engine.pow(a, p)
    __getitem__ = lambda a, index: a.engine.getitem(a, index)


def _expand(g: np.ndarray, x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """Put the axes a reduction removed back into ``g``, so it broadcasts against x."""
    if keepdims:
        return g
    if axis is None:
        return np.reshape(g, (1,) * np.ndim(x))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return np.expand_dims(g, tuple(a % np.ndim(x) for a in axes))


class TinyEngine:
    """The engine protocol: tensor, grad, numpy, and the array functions below (the array
    API standard's names, and the extras sigmoid, relu, logsumexp, softmax_cross_entropy)."""

    # --- the protocol
    def tensor(self, array: Any, requires_grad: bool = False) -> Tensor:
        return Tensor(np.asarray(array), self, requires_grad=requires_grad)

    def numpy(self, t: Any) -> np.ndarray:
        return np.asarray(t.value if isinstance(t, Tensor) else t)

    def grad(self, loss: Tensor, wrt: list[Tensor]) -> list[np.ndarray | None]:
        order = self.topological_order(loss)
        self.zero_grads(order)
        loss.grad = np.ones_like(np.asarray(loss.value))
        for node in reversed(order):
            if node.grad is None or not node.parents:
                continue
            for parent, g in zip(node.parents, node.back(node.grad), strict=True):
                if parent.requires_grad:
                    self.accumulate(parent, self.unbroadcast(np.asarray(g), parent.shape))
        return [w.grad for w in wrt]

    # --- the machinery
    def zero_grads(self, order: list[Tensor]) -> None:
        for node in order:
            node.grad = None

    def accumulate(self, t: Tensor, g: np.ndarray) -> None:
        """Add one path's contribution: a value used twice gets the sum of both."""
        t.grad = g if t.grad is None else t.grad + g

    @staticmethod
    def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
        """Sum g over the axes broadcasting added or stretched, back to ``shape``."""
        while g.ndim > len(shape):
            g = g.sum(axis=0)
        for axis, size in enumerate(shape):
            if size == 1 and g.shape[axis] != 1:
                g = g.sum(axis=axis, keepdims=True)
        return g

    @staticmethod
    def topological_order(root: Tensor) -> list[Tensor]:
        """Every tensor root depends on, each after its parents (iterative DFS)."""
        order, seen, stack = [], set(), [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack += [(p, False) for p in reversed(node.parents) if id(p) not in seen]
        return order

    def lift(self, x: Any) -> Tensor:
        return x if isinstance(x, Tensor) else Tensor(x, self)

    def node(self, value: Any, parents: tuple, back) -> Tensor:
        needs = any(p.requires_grad for p in parents)
        return Tensor(value, self, parents if needs else (), back, needs)

    # --- arithmetic: each rule's forward, and beside it the gradient sent back
    def add(self, a, b):
        a, b = self.lift(a), self.lift(b)
        return self.node(a.value + b.value, (a, b), lambda g: (g, g))

    def sub(self, a, b):
        a, b = self.lift(a), self.lift(b)
        return self.node(a.value - b.value, (a, b), lambda g: (g, -g))

    def mul(self, a, b):
        a, b = self.lift(a), self.lift(b)
        return self.node(a.value * b.value, (a, b), lambda g: (g * b.value, g * a.value))

    def div(self, a, b):
        a, b = self.lift(a), self.lift(b)
        return self.node(
            a.value / b.value, (a, b), lambda g: (g / b.value, -g * a.value / (b.value * b.value))
        )

    def neg(self, a):
        return self.node(-a.value, (a,), lambda g: (-g,))

    def pow(self, a, p: float):
        return self.node(a.value**p, (a,), lambda g: (g * p * a.value ** (p - 1),))

    def matmul(self, a, b):
        a, b = self.lift(a), self.lift(b)
        A, B = np.asarray(a.value), np.asarray(b.value)

        def back(g):
            if A.ndim == 1 and B.ndim == 1:
                return g * B, g * A
            if B.ndim == 1:  # (m, n) @ (n,)
                return np.outer(g, B), A.T @ g
            if A.ndim == 1:  # (n,) @ (n, m)
                return B @ g, np.outer(A, g)
            return g @ B.T, A.T @ g

        return self.node(A @ B, (a, b), back)

    def getitem(self, a, index):
        def back(g):
            dx = np.zeros_like(a.value)
            np.add.at(dx, index, g)
            return (dx,)

        return self.node(a.value[index], (a,), back)

    # --- the array functions
    def exp(self, x):
        out = np.exp(x.value)
        return self.node(out, (x,), lambda g: (g * out,))

    def log(self, x):
        return self.node(np.log(x.value), (x,), lambda g: (g / x.value,))

    def tanh(self, x):
        out = np.tanh(x.value)
        return self.node(out, (x,), lambda g: (g * (1 - out * out),))

    def sigmoid(self, x):
        out = 0.5 * (1 + np.tanh(0.5 * x.value))  # σ(x) without overflow
        return self.node(out, (x,), lambda g: (g * out * (1 - out),))

    def relu(self, x):
        return self.node(np.maximum(x.value, 0), (x,), lambda g: (g * (x.value > 0),))

    def sum(self, x, axis=None, keepdims=False):
        out = np.sum(x.value, axis=axis, keepdims=keepdims)
        return self.node(
            out,
            (x,),
            lambda g: (np.broadcast_to(_expand(g, x.value, axis, keepdims), x.shape).copy(),),
        )

    def mean(self, x, axis=None, keepdims=False):
        count = np.size(x.value) // max(np.size(np.sum(x.value, axis=axis)), 1)
        return self.sum(x, axis, keepdims) / count

    def logsumexp(self, x, axis=None, keepdims=False):
        m = np.max(x.value, axis=axis, keepdims=True)
        full = m + np.log(np.sum(np.exp(x.value - m), axis=axis, keepdims=True))
        out = full if keepdims else np.squeeze(full, axis=axis)
        return self.node(
            out, (x,), lambda g: (_expand(g, x.value, axis, keepdims) * np.exp(x.value - full),)
        )

    def reshape(self, x, shape):
        return self.node(np.reshape(x.value, shape), (x,), lambda g: (np.reshape(g, x.shape),))

    def permute_dims(self, x, axes):
        inverse = tuple(np.argsort(axes))
        return self.node(np.transpose(x.value, axes), (x,), lambda g: (np.transpose(g, inverse),))

    def concat(self, xs, axis=0):
        xs = [self.lift(x) for x in xs]
        cuts = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return self.node(
            np.concatenate([x.value for x in xs], axis=axis),
            tuple(xs),
            lambda g: tuple(np.split(g, cuts, axis=axis)),
        )

    def stack(self, xs, axis=0):
        xs = [self.lift(x) for x in xs]
        return self.node(
            np.stack([x.value for x in xs], axis=axis),
            tuple(xs),
            lambda g: tuple(np.moveaxis(g, axis, 0)),
        )

    def softmax_cross_entropy(self, logits, labels):
        z, n = logits.value, len(labels)
        log_p = z - np.max(z, axis=-1, keepdims=True)
        log_p = log_p - np.log(np.sum(np.exp(log_p), axis=-1, keepdims=True))

        def back(g):
            d = np.exp(log_p)
            d[np.arange(n), labels] -= 1
            return (g * d / n,)

        return self.node(-np.sum(log_p[np.arange(n), labels]) / n, (logits,), back)
