"""The tape: reverse-mode differentiation of a graph of primitives on numpy arrays.

The forward pass records, for every value it makes, the values it was made from (its
parents, in order) and the primitive that made it. ``backward`` orders that graph once
(iteratively, so a chain of any depth is fine) and walks it from the loss back to the
leaves, applying each primitive's VJP and adding every path's contribution:

    dL/dx = Σ_{u uses x}  vjp_u(dL/du)          (the multivariable chain rule)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.primitives import RULES


class RuleError(RuntimeError):
    """A primitive's VJP broke its contract (wrong count or shape of gradients)."""


class Tensor:
    """A numpy value with the graph that produced it.

    ``requires_grad`` marks a value the loss is differentiated with respect to (or one
    that depends on such a value); ``grad`` is filled by ``backward`` for leaves that
    require a gradient and for values marked with ``retain_grad()``.
    """

    __array_ufunc__ = None  # make numpy hand `ndarray <op> Tensor` to our reflected operators

    def __init__(self, value: Any, requires_grad: bool = False):
        # A Python number stays one, so that 2.0 * x keeps x's dtype (numpy's weak scalars).
        self.value = value if isinstance(value, (int, float)) else np.asarray(value)
        self.requires_grad = requires_grad
        self.parents: tuple[Tensor, ...] = ()
        self.op = "leaf"
        self.constants: dict[str, Any] = {}
        self.retains_grad = requires_grad
        self.grad: np.ndarray | None = None

    # --- what a value is
    shape = property(lambda self: self.value.shape)
    ndim = property(lambda self: self.value.ndim)
    dtype = property(lambda self: self.value.dtype)
    T = property(lambda self: apply("transpose", self))

    def __repr__(self) -> str:
        return f"Tensor({self.value!r}, op={self.op})"

    def __len__(self) -> int:
        return len(self.value)

    def retain_grad(self) -> Tensor:
        """Keep dL/d(self) after backward (an intermediate value we want to watch)."""
        self.retains_grad = True
        return self

    # --- Python operators: each one a primitive
    __add__ = lambda a, b: apply("add", a, b)  # noqa: E731
    __radd__ = lambda a, b: apply("add", b, a)  # noqa: E731
    __sub__ = lambda a, b: apply("sub", a, b)  # noqa: E731
    __rsub__ = lambda a, b: apply("sub", b, a)  # noqa: E731
    __mul__ = lambda a, b: apply("mul", a, b)  # noqa: E731
    __rmul__ = lambda a, b: apply("mul", b, a)  # noqa: E731
    __truediv__ = lambda a, b: apply("div", a, b)  # noqa: E731
    __rtruediv__ = lambda a, b: apply("div", b, a)  # noqa: E731
    __matmul__ = lambda a, b: apply("matmul", a, b)  # noqa: E731
    __rmatmul__ = lambda a, b: apply("matmul", b, a)  # noqa: E731
    __neg__ = lambda a: apply("neg", a)  # noqa: E731
    __getitem__ = lambda a, index: apply("getitem", a, index=index)  # noqa: E731

    def __pow__(self, p: float) -> Tensor:
        if isinstance(p, Tensor):
            raise TypeError("pow takes a constant exponent, not a Tensor")
        return apply("pow", self, p=p)

    # --- reverse mode
    def backward(self, grad: np.ndarray | None = None) -> None:
        """Fill ``.grad`` of every leaf (and retained value) with dL/d(value), L = self."""
        if grad is None:
            if self.value.size != 1:
                raise ValueError(f"backward() of a non-scalar of shape {self.shape} needs a grad")
            grad = np.ones_like(self.value)
        grads: dict[int, np.ndarray] = {id(self): np.asarray(grad, dtype=self.dtype)}
        for node in reversed(topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node.retains_grad:
                node.grad = g if node.grad is None else node.grad + g
            if not node.parents:
                continue
            rule = RULES[node.op]
            values = [p.value for p in node.parents]
            parent_grads = rule.vjp(g, node.value, *values, **node.constants)
            if len(parent_grads) != len(node.parents):
                raise RuleError(
                    f"VJP of {node.op!r} returned {len(parent_grads)} gradients "
                    f"for {len(node.parents)} inputs"
                )
            for i, (parent, pg) in enumerate(zip(node.parents, parent_grads, strict=True)):
                if not parent.requires_grad:
                    continue
                pg = np.asarray(pg)
                if rule.broadcasts:
                    pg = unbroadcast(pg, parent.shape)
                if pg.shape != parent.shape:
                    raise RuleError(
                        f"VJP of {node.op!r} returned a gradient of shape {pg.shape} "
                        f"for input {i} of shape {parent.shape}"
                    )
                accumulate(grads, parent, pg)


def accumulate(grads: dict[int, np.ndarray], node: Tensor, g: np.ndarray) -> None:
    """Add one path's contribution: a value used twice gets the sum of both (never +=
    in place, so an array handed to us by a VJP is never modified)."""
    key = id(node)
    grads[key] = grads[key] + g if key in grads else g


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, to get ``shape``.

    If x of shape ``shape`` was broadcast to g.shape in the forward pass, every copy of
    x_i received a gradient, and dL/dx_i is their sum.
    """
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def topological_order(root: Tensor) -> list[Tensor]:
    """Every value ``root`` depends on (through values that require grad), each after
    all of its parents. Iterative depth-first search; parents are visited in their
    recorded order, so the order is the same on every run."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in reversed(node.parents):
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


def as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def apply(op: str, *inputs: Any, **constants: Any) -> Tensor:
    """Run primitive ``op`` forward on ``inputs`` and record how to go back."""
    tensors = [as_tensor(x) for x in inputs]
    out = Tensor(RULES[op].forward(*(t.value for t in tensors), **constants))
    if any(t.requires_grad for t in tensors):
        out.requires_grad = True
        out.parents = tuple(tensors)
        out.op = op
        out.constants = constants
    return out
