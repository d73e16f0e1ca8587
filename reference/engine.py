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

from reference.primitives import RULES, Lazy


class RuleError(RuntimeError):
    """A primitive's VJP broke its contract (wrong count or shape of gradients)."""


class Tensor:
    """A numpy value with the graph that produced it.

    ``requires_grad`` marks a value the loss is differentiated with respect to (or one
    that depends on such a value); ``grad`` is filled by ``backward`` for leaves that
    require a gradient and for values marked with ``retain_grad()``.
    """

    __array_ufunc__ = None  # make numpy hand `ndarray <op> Tensor` to our reflected operators
    # A fixed set of fields: a graph holds one Tensor per value, so no per-object __dict__.
    __slots__ = ("value", "requires_grad", "parents", "op", "constants", "retains_grad", "grad")

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
        grads = Gradients({id(self): np.asarray(grad, dtype=self.dtype)})
        for node in reversed(topological_order(self)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node.retains_grad:
                node.grad = g if node.grad is None else node.grad + g
            parents = node.parents
            if not parents:
                continue
            rule = RULES[node.op]
            parent_grads = rule.vjp(g, node.value, *[p.value for p in parents], **node.constants)
            if len(parent_grads) != len(parents):
                raise RuleError(
                    f"VJP of {node.op!r} returned {len(parent_grads)} gradients "
                    f"for {len(parents)} inputs"
                )
            for i, (parent, pg) in enumerate(zip(parents, parent_grads, strict=True)):
                if not parent.requires_grad:
                    continue  # a constant: its gradient is never computed (see ``Lazy``)
                if isinstance(pg, Lazy):
                    pg = pg()
                pg = pg if type(pg) is np.ndarray else np.asarray(pg)
                shape = parent.value.shape
                if rule.broadcasts and pg.shape != shape:
                    pg = unbroadcast(pg, shape)
                if pg.shape != shape:
                    raise RuleError(
                        f"VJP of {node.op!r} returned a gradient of shape {pg.shape} "
                        f"for input {i} of shape {shape}"
                    )
                accumulate(grads, parent, pg)


class Gradients(dict):
    """dL/d(value) so far, by id(value); ``owned`` names the entries whose array the
    engine made itself (a sum of two paths), the only ones it may add to in place."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.owned: set[int] = set()


def accumulate(grads: dict[int, np.ndarray], node: Tensor, g: np.ndarray) -> None:
    """Add one path's contribution: a value used twice gets the sum of both. An array
    handed to us by a VJP is never modified (add's VJP hands the same g to both inputs):
    the first sum is a new array, and later paths are added into that one in place
    (the same additions in the same order, without a new array for each)."""
    key = id(node)
    if key not in grads:
        grads[key] = g
        return
    total = grads[key]
    owned = getattr(grads, "owned", None)  # a plain dict: always a new array
    if owned is not None and key in owned and type(total) is np.ndarray and total.dtype == g.dtype:
        np.add(total, g, out=total)
    else:
        grads[key] = total + g
        if owned is not None:
            owned.add(key)


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
    tensors = [x if isinstance(x, Tensor) else Tensor(x) for x in inputs]
    out = Tensor(RULES[op].forward(*[t.value for t in tensors], **constants))
    for t in tensors:
        if t.requires_grad:
            out.requires_grad = True
            out.parents = tuple(tensors)
            out.op = op
            out.constants = constants
            break
    return out
