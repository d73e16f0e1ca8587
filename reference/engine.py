"""The tape: reverse-mode differentiation of a graph of primitives on numpy arrays.

The forward pass records, for every value it makes from values that require a gradient,
a ``Node``: the primitive that made it, its parents' nodes (in order), and what that
primitive's VJP will read — only the arrays its rule names in ``saves`` (tanh keeps its
answer, a product its two factors, a sum nothing). A ``Tensor`` is a value and its node; a
value no VJP needs is freed as soon as the program drops its Tensor, as in PyTorch's
saved tensors. Every node gets a sequence number when it is made, so a value's node is
always older than the nodes of the values computed from it. ``backward`` collects the
nodes the loss depends on (iteratively, so a chain of any depth is fine) and replays them
newest first, the tape in reverse (PyTorch's engine, too, runs the ready node with the
highest sequence number first): a node's gradient is complete when its turn comes, since
every use of it is newer and has been processed. Each step applies the primitive's VJP
and adds every path's contribution:

    dL/dx = Σ_{u uses x}  vjp_u(dL/du)          (the multivariable chain rule)
"""

from __future__ import annotations

import math
import weakref
from itertools import count
from operator import attrgetter
from typing import Any

import numpy as np

from reference.primitives import RULES, Lazy, Rule, Scatter


class RuleError(RuntimeError):
    """A primitive's VJP broke its contract (wrong count or shape of gradients)."""


# Every node of a given shape shares one shape tuple: a graph of many same-shaped values
# then holds (and Python's garbage collector walks) one object fewer per node.
SHAPES: dict[tuple[int, ...], tuple[int, ...]] = {}
_SEQUENCE = count()  # the order in which nodes are made (``Node.seq``)


class Node:
    """How one value was made, and what its VJP needs: the graph ``backward`` walks.

    ``parents``: the nodes of the inputs, in order (None for an input that needs no
    gradient). ``ans`` and ``inputs``: the arguments the VJP will get after g. ``ans`` is
    the answer if the rule keeps it, else None and the node itself stands in for it;
    ``inputs`` holds the inputs the rule keeps and, for the others, their nodes — stand-ins
    with the value's shape, ndim, size and dtype, but no value (it is ``parents`` itself
    when the rule keeps no input). An input that needs no gradient is data, always kept.
    ``tensor``: a weak reference to the Tensor that wants this node's gradient in
    ``.grad`` (a leaf, or ``retain_grad()``). ``seq``: when it was made, larger than every
    parent's, the order ``backward`` replays the tape in. A graph has one Node per
    operation, so a Node holds no more Python objects than it must: same-shaped nodes share
    one shape tuple, and no tuple is made for the inputs of a rule that keeps none (fewer
    objects for Python's garbage collector to walk while the graph is recorded).
    """

    __slots__ = ("op", "parents", "ans", "inputs", "constants", "shape", "dtype", "tensor", "seq")

    def __init__(self, op: str, parents: tuple, kept: tuple, constants: dict, value: Any):
        self.op, self.parents, self.constants = op, parents, constants
        self.ans, self.inputs = kept
        if type(value) is np.ndarray:
            shape, self.dtype = value.shape, value.dtype
        else:  # a Python number
            shape, self.dtype = np.shape(value), np.result_type(value)
        self.shape = SHAPES.setdefault(shape, shape)  # one tuple per distinct shape
        self.tensor: weakref.ref | None = None
        self.seq = next(_SEQUENCE)  # made after every node it depends on: a larger number

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))

    def __repr__(self) -> str:
        return f"Node({self.op}, shape={self.shape})"

    def _unsaved(self, *args: Any, **kwargs: Any) -> Any:
        raise RuleError(
            f"a VJP read the value of {self!r}, which its rule does not keep: "
            f"name it in the rule's saves (reference/primitives.py)"
        )

    # A stand-in answers shape questions only: numpy arithmetic on it is an error.
    __array__ = __array_ufunc__ = __array_function__ = _unsaved


class Tensor:
    """A numpy value, and the node that records how it was made (None: a constant).

    ``requires_grad`` marks a value the loss is differentiated with respect to (or one
    that depends on such a value); ``grad`` is filled by ``backward`` for leaves that
    require a gradient and for values marked with ``retain_grad()``.
    """

    __array_ufunc__ = None  # make numpy hand `ndarray <op> Tensor` to our reflected operators
    # A fixed set of fields: a graph holds many Tensors, so no per-object __dict__.
    __slots__ = ("value", "node", "grad", "__weakref__")

    def __init__(self, value: Any, requires_grad: bool = False):
        # A Python number stays one, so that 2.0 * x keeps x's dtype (numpy's weak scalars).
        self.value = value if isinstance(value, (int, float)) else np.asarray(value)
        self.grad: np.ndarray | None = None
        self.node: Node | None = None
        if requires_grad:
            self.node = Node("leaf", (), (None, ()), NO_CONSTANTS, self.value)
            self.node.tensor = weakref.ref(self)

    # --- what a value is
    requires_grad = property(lambda self: self.node is not None)
    op = property(lambda self: "const" if self.node is None else self.node.op)
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
        if self.node is not None:
            self.node.tensor = weakref.ref(self)
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
            if np.size(self.value) != 1:
                raise ValueError(f"backward() of a non-scalar of shape {self.shape} needs a grad")
            grad = np.ones_like(self.value)
        if self.node is None:
            return  # a constant: nothing it depends on requires a gradient
        root = self.node
        grads = Gradients({root: np.asarray(grad, dtype=root.dtype)})
        pop = grads.pop
        for node in reversed(topological_order(root)):  # newest first
            g = pop(node, None)
            if g is None:
                continue
            if type(g) is not np.ndarray:  # (only if ``accumulate`` was replaced)
                g = g.dense() if isinstance(g, Scatter) else np.asarray(g)
            if node.tensor is not None and (tensor := node.tensor()) is not None:
                tensor.grad = g if tensor.grad is None else tensor.grad + g
            parents = node.parents
            if not parents:
                continue
            rule = RULES[node.op]
            ans = node if node.ans is None else node.ans  # the node stands in if not kept
            parent_grads = rule.vjp(g, ans, *node.inputs, **node.constants)
            if len(parent_grads) != len(parents):
                raise RuleError(
                    f"VJP of {node.op!r} returned {len(parent_grads)} gradients "
                    f"for {len(parents)} inputs"
                )
            for i, (parent, pg) in enumerate(zip(parents, parent_grads, strict=True)):
                if parent is None:
                    continue  # a constant: its gradient is never computed (see ``Lazy``)
                if type(pg) is not np.ndarray or pg.shape != parent.shape:
                    pg = conform(pg, parent, rule, node, i)
                accumulate(grads, parent, pg)


def conform(pg: Any, parent: Node, rule: Rule, node: Node, i: int) -> np.ndarray | Scatter:
    """The gradient a VJP returned for input ``i`` of ``node``, as an array of that input's
    shape: a ``Lazy`` computed, a broadcast shape summed back (``unbroadcast``), a
    ``Scatter`` kept as it is for ``accumulate`` to add in place. Any other shape is the
    rule's error."""
    if type(pg) is not np.ndarray:
        if isinstance(pg, Lazy):
            pg = pg()
        if isinstance(pg, Scatter):
            if pg.shape == parent.shape:
                return pg  # a slice's gradient: added in place
            pg = pg.dense()
        pg = np.asarray(pg)
    if pg.shape != parent.shape and rule.broadcasts:
        pg = unbroadcast(pg, parent.shape)
    if pg.shape != parent.shape:
        raise RuleError(
            f"VJP of {node.op!r} returned a gradient of shape {pg.shape} "
            f"for input {i} of shape {parent.shape}"
        )
    return pg


class Gradients(dict):
    """dL/d(value) so far, by node; ``owned`` names the nodes whose array the engine made
    itself (a sum of two paths), the only ones it may add to in place."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.owned: set[Node] = set()


def accumulate(grads: Gradients, node: Node, g: np.ndarray | Scatter) -> None:
    """Add one path's contribution: a value used twice gets the sum of both. An array
    handed to us by a VJP is never modified (add's VJP hands the same g to both inputs):
    the first sum is a new array, and later paths are added into that one in place
    (the same additions in the same order, without a new array for each). A slice's
    gradient (``Scatter``) is added into such an array at its index only."""
    total = grads.get(node)
    if total is None:
        if type(g) is Scatter:
            total = grads[node] = np.zeros(g.shape, g.dtype)
            grads.owned.add(node)
            g.add_into(total)
        else:
            grads[node] = g
    elif node in grads.owned and total.dtype == g.dtype:
        if type(g) is Scatter:
            g.add_into(total)
        else:
            np.add(total, g, out=total)
    else:
        grads[node] = total + (g.dense() if type(g) is Scatter else g)
        grads.owned.add(node)


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, to get ``shape``.

    If x of shape ``shape`` was broadcast to g.shape in the forward pass, every copy of
    x_i received a gradient, and dL/dx_i is their sum.
    """
    while g.ndim > len(shape):
        g = np.add.reduce(g, axis=0)  # what g.sum(axis=0) calls, without its Python layer
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = np.add.reduce(g, axis=axis, keepdims=True)
    return g


def topological_order(root: Tensor | Node) -> list[Node]:
    """Every node ``root`` depends on (through values that require grad), oldest first:
    each after all of its parents, since a node is made after its inputs' nodes
    (``Node.seq``). The same order on every run; iterative, so any depth is fine."""
    if isinstance(root, Tensor):
        if root.node is None:
            return []
        root = root.node
    seen = {root}
    stack = [root]
    while stack:
        for parent in stack.pop().parents:
            if parent is not None and parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return sorted(seen, key=_sequence)


_sequence = attrgetter("seq")


def as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def apply(op: str, *inputs: Any, **constants: Any) -> Tensor:
    """Run primitive ``op`` forward on ``inputs`` and record how to go back: a node that
    keeps what the rule's VJP reads (``Rule.keep``) and forgets the rest."""
    rule = RULES[op]
    values, nodes = [], []
    for x in inputs:
        if not isinstance(x, Tensor):
            x = Tensor(x)
        values.append(x.value)
        nodes.append(x.node)
    out = Tensor(rule.forward(*values, **constants))
    if nodes.count(None) != len(nodes):  # some input requires grad: record
        parents = tuple(nodes)
        kept = rule.keep(out.value, values, parents)
        out.node = Node(op, parents, kept, constants or NO_CONSTANTS, out.value)
    return out


NO_CONSTANTS: dict[str, Any] = {}  # shared by the nodes of primitives that take none (read only)
