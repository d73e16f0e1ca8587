"""Forward mode: the chain rule from the inputs on, on the same primitives as the tape.

Move the inputs along a direction u, θ(ε) = θ + ε·u. Every value x of the computation
moves too, x(ε) = x + ε·ẋ + O(ε²), and its *tangent* ẋ = dx/dε is what forward mode
carries beside it: a ``Dual(value, tangent)``. Each primitive pushes the tangents of its
inputs through its local Jacobian, the ``jvp`` of its rule in ``reference.primitives``,
beside the ``vjp`` the tape uses:

    ẏ = Σ_i ∂y/∂x_i · ẋ_i                 (the chain rule, multiplied from the input side)

One pass gives the derivative of every value along one u — the loss's is ⟨∇L, u⟩, a
tap's the change of the tapped value — where one reverse pass gives ∇L along every u at
once. The two are held together by the transpose identity ⟨v, J u⟩ = ⟨Jᵀ v, u⟩.

A computation written against ``reference.xp`` runs in forward mode unchanged: give it
Duals, and every function of that namespace (and every Python operator) pushes them
(``engine.apply`` hands a Dual to ``push``).

Second order, ``hvp``: the JVP rules are written with array API names, so they run on the
tape's Tensors too. Make the Duals' values Tensors that require a gradient, and the tape
records the tangent's computation as well; the tangent of the loss is ⟨∇L, v⟩, and its
reverse pass gives ∇_θ⟨∇L, v⟩ = H·v (Pearlmutter 1994, reverse-over-forward). The other
order, forward over the tape's reverse pass, would need the VJPs to run on Duals; they are
written on raw numpy arrays (``Lazy`` products, ``Scatter`` adds in place, ``np.add.at``)
for the tape's speed, so they cannot, and this is the same H·v from the other side.

This module imports numpy and the modules below it: the primitives, the tape and its namespace.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

import reference.xp as tape_xp
from reference.array_object import ArrayObject, NotInTape, plain
from reference.engine import Tensor, apply
from reference.primitives import RULES


def push(op: str, *inputs: Any, **constants: Any) -> Any:
    """Primitive ``op`` on ``inputs``, some of them Duals: the answer, and its tangent by
    the rule's JVP. On numpy values the answer is the rule's forward; on Tensors (``hvp``)
    it is the tape's ``apply``, and the JVP runs on the tape's namespace, so that the tape
    records both. The answer is a Dual where some input has a tangent. A function without
    a derivative (``CONSTANTS``: a comparison, logic) has none: its answer is the tape's
    constant."""
    rule = RULES.get(op)
    if rule is None:
        return apply(op, *inputs, **constants)
    values = [x.value if type(x) is Dual else x for x in inputs]
    tangents = [x.tangent if type(x) is Dual else None for x in inputs]
    on_tape = any(isinstance(v, Tensor) and v.requires_grad for v in values)
    xp: ModuleType
    if on_tape:
        xp = tape_xp
        ans = apply(op, *values, **constants)
    else:
        xp = np
        values = [plain(v) for v in values]
        ans = rule.forward(*values, **constants)
    if all(t is None for t in tangents):
        return ans  # no input moves: the answer is a constant
    tangent = answer_tangent(xp, rule, tangents, ans, values, constants)
    if tuple(tangent.shape) != tuple(np.shape(plain(ans))):  # a broadcast input's tangent
        tangent = xp.broadcast_to(tangent, tuple(np.shape(plain(ans))))
    return Dual(ans, tangent)


def answer_tangent(
    xp: Any, rule: Any, tangents: list, ans: Any, values: list, constants: dict
) -> Any:
    """ẏ = Σ_i ∂y/∂x_i · ẋ_i by the rule's JVP, where ``tangents`` has None for an input
    that does not move: a rule of one term per input gets the terms of the inputs that move
    added up, a rule of all the tangents gets zeros for the others (``reference.primitives``)."""
    if callable(rule.jvp):
        zeros = [
            xp.zeros_like(v) if t is None else t for t, v in zip(tangents, values, strict=True)
        ]
        return rule.jvp(xp, zeros, ans, *values, **constants)
    terms = [
        term(xp, t, ans, *values, **constants)
        for term, t in zip(rule.jvp, tangents, strict=True)
        if t is not None
    ]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


class Dual(ArrayObject):
    """A value and its tangent (``None`` only where a caller makes one without: zero).
    Python's operators are the array API standard's (``ArrayObject``,
    reference/array_object.py), each one a primitive pushed forward by ``push``."""

    __slots__ = ("value", "tangent")
    _apply = staticmethod(push)

    def __init__(self, value: Any, tangent: Any) -> None:
        self.value, self.tangent = value, tangent

    shape = property(lambda self: tuple(np.shape(plain(self.value))))
    ndim = property(lambda self: np.ndim(plain(self.value)))
    dtype = property(lambda self: np.result_type(plain(self.value)))

    def __repr__(self) -> str:
        return f"Dual({self.value!r}, tangent={self.tangent!r})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        raise NotInTape(
            "numpy cannot take a Dual (it would drop its tangent): compute with the "
            "tape's namespace, reference.xp"
        )


def jvp(fn: Any, primals: dict[str, Any], tangents: dict[str, Any]) -> tuple[Any, Any]:
    """(fn(θ), d/dε fn(θ + ε·u)) for ``primals`` θ and ``tangents`` u (dicts by name):
    ``fn`` takes the dict of inputs and computes with ``reference.xp`` (or operators)."""
    out = fn({k: Dual(np.asarray(v), np.asarray(tangents[k])) for k, v in primals.items()})
    if type(out) is not Dual:
        return out, np.zeros_like(out)
    return out.value, out.tangent


def hvp(fn: Any, primals: dict[str, Any], v: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """(L(θ), H·v) for the scalar ``fn`` at ``primals`` θ along ``v``: the tape's reverse
    pass over this module's forward pass, H·v = ∇_θ ⟨∇L(θ), v⟩."""
    leaves = {k: Tensor(np.asarray(x), requires_grad=True) for k, x in primals.items()}
    out = fn({k: Dual(leaf, np.asarray(v[k])) for k, leaf in leaves.items()})
    if type(out) is not Dual or not isinstance(out.tangent, Tensor):
        return float(plain(out)), {k: np.zeros_like(plain(x)) for k, x in leaves.items()}
    out.tangent.backward()  # the tangent is ⟨∇L, v⟩; its gradient, H·v
    return float(plain(out)), {
        k: np.zeros_like(leaf.value) if leaf.grad is None else leaf.grad
        for k, leaf in leaves.items()
    }


__all__ = ["Dual", "hvp", "jvp", "plain", "push"]
