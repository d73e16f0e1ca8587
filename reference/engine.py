"""The tape: reverse-mode differentiation, the chain rule applied stage by stage.

Forward, every primitive applied to a value that requires a gradient records a ``Node``:
which primitive made the value, the nodes of its inputs, and what its VJP will read.
Backward walks those nodes newest first. When a node's turn comes its gradient
g = dL/d(value) is complete — every use of the value is newer, and has already sent its
share back — so the primitive's VJP turns g into one contribution per input, and each
input adds up what all of its uses send:

    dL/dx = Σ_{u uses x}  vjp_u(dL/du)          (the multivariable chain rule)

``backward`` below is that sentence: for each node, newest first, take its gradient, apply
its VJP, add each share into the input's gradient. The bookkeeping sits in small helpers
under it (``store_grad``, ``vjp`` with ``conform``, ``accumulate``); the rest of the module
is how values and nodes are made (``apply``, ``Node``, ``Tensor``).
"""

from __future__ import annotations

import math
import weakref
from itertools import count
from operator import attrgetter
from typing import Any

import numpy as np

from reference.array_object import ArrayObject, NotInTape, plain
from reference.primitives import CONSTANTS, RULES, Lazy, Rule, Scatter


def backward(root: Tensor, grad: np.ndarray | None = None) -> None:
    """Fill ``.grad`` of every leaf (and retained value) with dL/d(value), L = ``root``."""
    if grad is None:
        if np.size(root.value) != 1:
            raise ValueError(f"backward() of a non-scalar of shape {root.shape} needs a grad")
        grad = np.ones_like(root.value)
    if root.node is None:
        return  # a constant: nothing it depends on requires a gradient
    grads = Gradients({root.node: np.asarray(grad, dtype=root.node.dtype)})
    for node in reversed(topological_order(root.node)):  # newest first: the tape in reverse
        g = grads.pop(node, None)  # dL/d(node's value), every path summed
        if g is None:
            continue  # the loss does not depend on this value
        store_grad(node, g)
        for parent, parent_grad in vjp(node, g):  # the chain rule, one input at a time
            accumulate(grads, parent, parent_grad)  # add this path's contribution


def store_grad(node: Node, g: np.ndarray) -> None:
    """dL/d(value) into ``.grad`` of the Tensor that asked for it (a leaf, or a value marked
    with ``retain_grad()``), added to what an earlier ``backward`` left there."""
    if node.tensor is not None and (tensor := node.tensor()) is not None:
        tensor.grad = g if tensor.grad is None else tensor.grad + g


def accumulate(grads: Gradients, node: Node, g: np.ndarray | Scatter) -> None:
    """Add one path's contribution to dL/d(node): a value used twice gets the sum of both.

    The first path's array is stored as it is, and never modified (add's VJP hands the same
    g to both of its inputs); the first sum is a new array, which later paths are added into
    in place — the same additions in the same order, without a new array for each
    (speed: R ≤ 3 on the LSTMs, whose weights are used at every step). A slice's gradient
    (``Scatter``) is added at its index only (speed: an LSTM's four gates are slices)."""
    total = grads.get(node)
    if total is None:
        if type(g) is Scatter:
            total = grads[node] = np.zeros(g.shape, g.dtype)
            grads.owned.add(node)
            g.add_into(total)
        else:
            grads[node] = g
    elif node in grads.owned and total.dtype == g.dtype:
        if isinstance(g, Scatter):
            g.add_into(total)
        else:
            np.add(total, g, out=total)
    else:  # a new array (numpy makes a scalar of two 0-d arrays: asarray keeps an array)
        grads[node] = np.asarray(total + (g.dense() if isinstance(g, Scatter) else g))
        grads.owned.add(node)


def vjp(node: Node, g: np.ndarray) -> list[tuple[Node, np.ndarray | Scatter]]:
    """The primitive's VJP at ``node``: (input's node, dL/d(input) along this path) for each
    input that needs a gradient, fitted to that input's shape (``conform``) where the rule
    returned another form. A leaf has no inputs; a constant input gets nothing (``Lazy``)."""
    if not node.parents:
        return []  # a leaf
    rule = RULES[node.op]
    ans = node if node.ans is None else node.ans  # the node stands in for an unkept answer
    parent_grads = rule.vjp(g, ans, *node.inputs, **node.constants)
    if len(parent_grads) != len(node.parents):
        raise RuleError(
            f"VJP of {node.op!r} returned {len(parent_grads)} gradients "
            f"for {len(node.parents)} inputs"
        )
    shares: list[tuple[Node, np.ndarray | Scatter]] = []
    for i, (parent, pg) in enumerate(zip(node.parents, parent_grads, strict=True)):
        if parent is None:
            continue  # a constant: its gradient is never computed (see ``Lazy``)
        if type(pg) is np.ndarray and pg.shape == parent.shape:
            shares.append((parent, pg))
        else:
            shares.append((parent, conform(pg, parent, rule, node, i)))
    return shares


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
    return sorted(seen, key=attrgetter("seq"))


# --- the gradients a VJP returns, made to fit their inputs


class RuleError(RuntimeError):
    """A primitive's VJP broke its contract (wrong count or shape of gradients)."""


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


class Gradients(dict):
    """dL/d(value) so far, by node; ``owned`` names the nodes whose array the engine made
    itself (a sum of two paths), the only ones it may add to in place."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.owned: set[Node] = set()


# --- the forward pass: values, and the nodes that record how they were made

_SEQUENCE = count()  # the order in which nodes are made (``Node.seq``)
NO_CONSTANTS: dict[str, Any] = {}  # one shared dict for the many nodes that take none (memory)


class Node:
    """How one value was made, and what its VJP needs: the graph ``backward`` walks.

    ``parents``: the nodes of the inputs, in order (None for an input that needs no
    gradient). ``ans`` and ``inputs``: the arguments the VJP will get after g — only what
    the primitive's rule ``saves``, so a value no VJP reads is freed as soon as the program
    drops it, as with PyTorch's saved tensors (memory: the tape stores ≤ 2× what must be
    stored per LSTM step). ``ans`` is the answer if kept, else None and the node itself
    stands in for it; ``inputs`` holds the inputs kept and, for the others, their nodes —
    stand-ins with the value's shape, ndim, size and dtype, but no value (``parents``
    itself when none is kept). An input that needs no gradient is data, always kept.
    ``tensor``: a weak reference to the Tensor that wants this node's gradient in
    ``.grad`` (a leaf, or ``retain_grad()``). ``seq``: when it was made, larger than every
    parent's: the order ``backward`` replays the tape in.
    """

    # a fixed set of fields, no per-node __dict__ (memory: one Node per operation)
    __slots__ = ("op", "parents", "ans", "inputs", "constants", "shape", "dtype", "tensor", "seq")

    def __init__(self, op: str, parents: tuple, kept: tuple, constants: dict, value: Any):
        self.op, self.parents, self.constants = op, parents, constants
        self.ans, self.inputs = kept
        if type(value) is np.ndarray:
            self.shape, self.dtype = value.shape, value.dtype
        else:  # a Python number
            self.shape, self.dtype = np.shape(value), np.result_type(value)
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


def apply(op: str, *inputs: Any, **constants: Any) -> Any:
    """Run primitive ``op`` forward on ``inputs`` and record how to go back: a node that
    keeps what the rule's VJP reads (``Rule.keep``) and forgets the rest. Where an input
    is another of the tape's arrays (forward mode's ``Dual``, ``reference.forward``), that
    array runs the primitive its own way (``_apply``: it pushes its tangent), as Python hands
    an operator to the operand that knows it. A function without a derivative
    (``CONSTANTS``: a comparison, logic) records nothing: its answer is a constant,
    whatever its inputs."""
    rule = RULES.get(op)
    if rule is None:
        return Tensor(CONSTANTS[op](*(plain(x) for x in inputs), **constants))
    values, nodes = [], []
    for x in inputs:
        if not isinstance(x, Tensor):
            if isinstance(x, ArrayObject):  # forward mode's Dual: it pushes its tangent
                return x._apply(op, *inputs, **constants)
            x = Tensor(x)
        values.append(x.value)
        nodes.append(x.node)
    out = Tensor(rule.forward(*values, **constants))
    if nodes.count(None) != len(nodes):  # some input requires grad: record
        parents = tuple(nodes)
        kept = rule.keep(out.value, values, parents)
        out.node = Node(op, parents, kept, constants or NO_CONSTANTS, out.value)
    return out


class Tensor(ArrayObject):
    """A numpy value, and the node that records how it was made (None: a constant).

    ``requires_grad`` marks a value the loss is differentiated with respect to (or one
    that depends on such a value); ``grad`` is filled by ``backward`` for leaves that
    require a gradient and for values marked with ``retain_grad()``. Python's operators
    are the array API standard's (``ArrayObject``, reference/array_object.py), each one a
    primitive run by ``apply``.
    """

    __slots__ = ("value", "node", "grad", "__weakref__")  # no per-object __dict__ (memory)
    _apply = staticmethod(apply)

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
    shape = property(lambda self: np.shape(self.value))
    ndim = property(lambda self: np.ndim(self.value))
    dtype = property(lambda self: np.result_type(self.value))

    def __repr__(self) -> str:
        return f"Tensor({self.value!r}, op={self.op})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The value, for numpy; refused for a Tensor that requires a gradient, whose
        gradient numpy would silently drop (torch refuses there too)."""
        if self.node is not None:
            raise NotInTape(
                "numpy cannot take a Tensor that requires a gradient (it would drop the "
                "gradient): compute with the tape's namespace, reference.xp"
            )
        return np.asarray(self.value, dtype=dtype)

    def retain_grad(self) -> Tensor:
        """Keep dL/d(self) after backward (an intermediate value we want to watch)."""
        if self.node is not None:
            self.node.tensor = weakref.ref(self)
        return self

    def backward(self, grad: np.ndarray | None = None) -> None:
        """Fill ``.grad`` of every leaf (and retained value) with dL/d(value), L = self."""
        backward(self, grad)


def as_tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)
