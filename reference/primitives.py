"""The primitives: each operation's forward, its vector-Jacobian product and its
Jacobian-vector product, side by side.

A rule is ``Rule(forward, vjp, jvp=...)``. ``forward(*values, **constants)`` computes the answer
from numpy arrays; ``vjp(g, ans, *values, **constants)`` receives the gradient ``g`` of
the loss with respect to the answer and returns one gradient per input, in order:

    vjp_i(g) = g · ∂ans/∂input_i        (a row vector times the local Jacobian)

The JVP gives the tangent of the answer from the tangents of the inputs, the other end of
the same chain rule (``engine`` walks it from the loss back, ``forward`` from the inputs on):

    jvp(t) = Σ_i ∂ans/∂input_i · t_i     (the local Jacobian times a column vector)

An input that does not move (data, a constant) has a zero tangent, and there are two ways
to write a rule so that none of them spells that case out:

- one term per input, ``(term_0, term_1, ...)``, each ``term_i(xp, t, ans, *values,
  **constants) = ∂ans/∂input_i · t`` for that input's tangent ``t``: forward mode computes
  the terms of the inputs that move and adds them up (a zero term is never formed, nor the
  partial derivative it would multiply);
- one function ``jvp(xp, t, ans, *values, **constants)`` of the list ``t`` of every
  input's tangent, an array of zeros for an input that does not move: for one input, and
  for an answer that places its inputs whole (concat, stack, where).

A JVP is written with the array API names of ``xp`` (numpy, or the tape's own namespace
``reference.xp``), so it runs on arrays and on Tensors alike: on Tensors, the tape
records it, and its reverse pass differentiates the tangent — a Hessian-vector product
(``reference.forward.hvp``).

Rules marked ``broadcasts=True`` may return a gradient in the broadcast shape of the
answer; the engine sums it back to the input's shape in one helper (``unbroadcast``).
Every other rule must return exactly its input's shape, and the engine checks that.
A VJP may return ``Lazy(f, *args)`` instead of an array: ``f(*args)``, computed only if
that input needs a gradient (matmul's ``x`` in ``x @ W`` is often data, not a parameter).

Functions without a derivative — comparisons, logic, bits, ``sign``, floor division, whose
answer is a constant — are not rules: ``CONSTANTS``, at the end, has their forward alone.

``saves`` names what the VJP reads, so the tape keeps those values for the backward and
no others: ``ans`` (the answer), ``x`` and ``y`` (the first and second inputs), ``inputs``
(all of them). tanh's VJP reads only its answer, a product reads both factors, a sum reads
nothing. An input not saved reaches the VJP as a stand-in with its ``shape``, ``ndim``,
``size`` and ``dtype`` and no value (reading its value is a ``RuleError``); an input that
needs no gradient is data and always arrives as it is. The default saves everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np


class Lazy(partial):
    """A gradient the engine computes (by calling it) only for an input that needs one."""


SAVES = ("ans", "x", "y", "inputs")


@dataclass(frozen=True)
class Rule:
    forward: Callable[..., Any]  # an array, or a NumPy scalar where a reduction gives one
    vjp: Callable[..., tuple[np.ndarray, ...]]
    broadcasts: bool = False
    saves: str = "ans inputs"
    jvp: Callable[..., Any] | tuple[Callable[..., Any], ...] | None = None
    # what ``keep`` stores, read from ``saves`` once (set in __post_init__)
    _ans: bool = field(init=False, repr=False, compare=False)
    _x: bool = field(init=False, repr=False, compare=False)
    _y: bool = field(init=False, repr=False, compare=False)
    _rest: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = self.saves.split()
        if unknown := set(names) - set(SAVES):
            raise ValueError(f"saves names {sorted(unknown)}; it takes {', '.join(SAVES)}")
        everything = "inputs" in names
        object.__setattr__(self, "_ans", "ans" in names)
        object.__setattr__(self, "_x", everything or "x" in names)
        object.__setattr__(self, "_y", everything or "y" in names)
        object.__setattr__(self, "_rest", everything)

    def keep(self, ans: Any, values: list, parents: tuple) -> tuple[Any, tuple]:
        """What the tape stores for this VJP: (the answer or None, the inputs), each input
        ``saves`` names as it is, the others as their nodes (``parents[i]``: shape and
        dtype only; ``parents`` itself when no input is kept). Data (an input with no
        node, ``parents[i] is None``) is kept as it is."""
        kept_ans = ans if self._ans else None
        if len(values) == 1:  # the common arities first, without a loop
            return kept_ans, ((values[0],) if self._x or parents[0] is None else parents)
        if len(values) == 2:
            (x, y), (px, py) = values, parents
            keep_x, keep_y = self._x or px is None, self._y or py is None
            if not (keep_x or keep_y):
                return kept_ans, parents
            return kept_ans, (x if keep_x else px, y if keep_y else py)
        wanted = [self._x, self._y] + [self._rest] * (len(values) - 2)
        kept = tuple(
            v if w or p is None else p for v, p, w in zip(values, parents, wanted, strict=True)
        )
        return kept_ans, kept


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{-x}), evaluated without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    d = 1.0 + e
    return np.where(x >= 0, 1.0 / d, e / d).astype(x.dtype, copy=False)


def _logsumexp(x: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
    """log Σ e^{x}, shifted by the maximum so that no term overflows."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _keep(g: np.ndarray, x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """Reinsert the reduced axes into ``g`` so it broadcasts against ``x``."""
    if keepdims:
        return g
    if axis is None:
        return g.reshape((1,) * x.ndim)
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return np.expand_dims(g, tuple(a % x.ndim for a in axes))


def _spread(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A new array of ``shape`` holding ``g`` broadcast over it."""
    out = np.empty(shape, np.result_type(g))
    out[...] = g
    return out


def _count(x: np.ndarray, axis) -> int:
    if axis is None:
        return x.size
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return int(np.prod([x.shape[a] for a in axes]))


def _matmul_vjp(g, ans, x, y):
    """ans = x @ y.  dx = g @ yᵀ, dy = xᵀ @ g (1-D operands promoted as numpy does)."""
    if x.ndim == 1 and y.ndim == 1:
        return g * y, g * x
    if x.ndim == 1:  # (n,) @ (..., n, m) -> (..., m)
        return (y @ g[..., None])[..., 0], x[:, None] * g[..., None, :]
    if y.ndim == 1:  # (..., m, n) @ (n,) -> (..., m)
        return g[..., None] * y, (np.swapaxes(x, -1, -2) @ g[..., None])[..., 0]
    if x.ndim == 2 and y.ndim == 2:  # .T is swapaxes(·, -1, -2) here, without numpy's Python layer
        return Lazy(np.matmul, g, y.T), Lazy(np.matmul, x.T, g)
    return Lazy(np.matmul, g, np.swapaxes(y, -1, -2)), Lazy(np.matmul, np.swapaxes(x, -1, -2), g)


_BASIC_INDEX = (int, np.integer, slice, type(None), type(Ellipsis))


class Scatter:
    """dL/dx for ans = x[index]: g at ``index`` of an array of x's shape, zeros elsewhere.

    The engine adds it straight into the gradient it is summing for x (``add_into``), so
    k slices of one value cost one array, not k zero arrays and k − 1 full additions;
    ``dense()`` makes the array where one is needed. Added where an index repeats."""

    __slots__ = ("g", "index", "shape", "dtype")

    def __init__(self, g: np.ndarray, index: Any, shape: tuple[int, ...], dtype: Any):
        self.g, self.index, self.shape, self.dtype = g, index, shape, dtype

    def add_into(self, total: np.ndarray) -> None:
        """total[index] += g. A basic index (ints, slices) never repeats an element, so g
        is added into the view total[index] in place (much faster than add.at); an index
        that leaves a single number is written back."""
        index = self.index
        for i in index if type(index) is tuple else (index,):
            if not isinstance(i, _BASIC_INDEX):
                np.add.at(total, index, self.g)
                return
        part = total[index]  # a view of total (a number where every axis is indexed)
        if type(part) is np.ndarray:
            np.add(part, self.g, out=part)
        else:
            total[index] = part + self.g

    def dense(self) -> np.ndarray:
        total = np.zeros(self.shape, self.dtype)
        self.add_into(total)
        return total


def _getitem_vjp(g, ans, x, index):
    """ans = x[index]: scatter g back (see ``Scatter``)."""
    return (Scatter(g, index, x.shape, x.dtype),)


def _split(g, *xs, axis=0):
    """The VJP of concatenate: cut g back into the pieces' sizes along ``axis``."""
    pieces, start, before = [], 0, (slice(None),) * (axis % g.ndim)
    for x in xs:
        stop = start + x.shape[axis]
        pieces.append(g[(*before, slice(start, stop))])
        start = stop
    return tuple(pieces)


def _unstack(g, *xs, axis=0):
    return tuple(np.take(g, i, axis=axis) for i in range(len(xs)))


def _softmax_xent(logits, labels):
    """L = -(1/N) Σ_n log softmax(z_n)[y_n] for logits z of shape (N, C), integer labels y."""
    n = logits.shape[0]
    log_p = logits - _logsumexp(logits, axis=-1, keepdims=True)
    return -np.sum(log_p[np.arange(n), labels]) / n


def _softmax_xent_vjp(g, ans, logits, labels):
    """dL/dz_n = (softmax(z_n) - onehot(y_n)) / N."""
    n = logits.shape[0]
    p = np.exp(logits - _logsumexp(logits, axis=-1, keepdims=True))
    p[np.arange(n), labels] -= 1
    return (g * p / n,)


def _tie_split(g, ans, x, y):
    """maximum's VJP: g to the larger input, half to each where they are equal (as torch
    and JAX split it)."""
    half = np.where(x == y, 0.5, 1.0).astype(np.result_type(g), copy=False)
    return g * half * (x >= y), g * half * (y >= x)


def _extremum_vjp(g, ans, x, axis=None, keepdims=False):
    """max and min: g shared evenly among the elements that reach the extremum."""
    hit = x == _keep(ans, x, axis, keepdims)
    ties = np.sum(hit, axis=axis, keepdims=True, dtype=np.result_type(g))
    return (_keep(g, x, axis, keepdims) * hit / ties,)


def _where_vjp(g, ans, condition, x, y):
    """where(c, x, y): g to x where c holds, to y elsewhere; the condition is data."""
    zero = np.zeros((), np.result_type(g))
    return None, np.where(condition, g, zero), np.where(condition, zero, g)


def _power_vjp(g, ans, x, y):
    """ans = x^y, the exponent an array too: ∂/∂x and ∂/∂y (``_power_partials``), each
    computed only for an input that needs it (2^t needs the second alone)."""
    return (
        Lazy(lambda: g * _power_partials(np, ans, x, y, 0)),
        Lazy(lambda: g * _power_partials(np, ans, x, y, 1)),
    )


def _power_partials(xp, ans, x, y, i):
    """∂(x^y)/∂x = y·x^(y−1) (i = 0), ∂(x^y)/∂y = x^y·log x (i = 1), in ``xp``'s names.
    Where y = 0, ∂/∂x is held at 0 (x⁰ = 1 is constant), as torch and JAX hold it — and
    so is its own derivative in y, which their second derivatives take; the exponent
    y − 1 is 1 there, so that 0^(−1) = ∞ is never formed. Where x = 0, ∂/∂y is 0 (the
    limit of x^y·log x for y > 0)."""
    if i == 0:
        held = xp.equal(y, 0)
        return xp.where(held, 0, y * x ** xp.where(held, 1, y - 1))
    log_x = xp.log(xp.where(xp.equal(x, 0), 1, x))
    return ans * xp.astype(log_x, ans.dtype)  # 2.0^t in float32: the log in float32 too


def _remainder_vjp(g, ans, x, y):
    """ans = x mod y = x − ⌊x/y⌋·y: ∂/∂x = 1, ∂/∂y = −⌊x/y⌋ (away from the jumps, where
    ⌊x/y⌋ changes)."""
    return g, Lazy(_remainder_divisor_vjp, g, x, y)


def _remainder_divisor_vjp(g, x, y):
    return -g * np.floor_divide(x, y)


def _inverse(axes):
    return None if axes is None else tuple(np.argsort([a % len(axes) for a in axes]))


# --- the JVPs' helpers: written with ``xp``'s names, for arrays and Tensors alike


def _pow_vjp(g, ans, x, p):
    """g·p·x^(p−1); for p = 0 and 1 without the power, which at x = 0 would give 0·∞ = NaN
    where the derivative is 0 (p = 0) or 1 (p = 1), as torch and jax give it."""
    if p == 1:
        return (g,)
    if p == 0:
        return (np.zeros_like(g),)
    return (g * p * x ** (p - 1),)


def _pow_jvp(xp, t, ans, x, p):
    """p·x^(p−1)·t; for p = 1 and 0 without the power, whose own derivative at x = 0 would
    be 0·∞ (the Hessian, through this JVP, is 0 there)."""
    if p == 1:
        return t[0] * 1
    if p == 0:
        return t[0] * 0
    return t[0] * p * x ** (p - 1)


def _mask(xp: Any, condition: Any, like: Any) -> Any:
    """A 0/1 array in ``like``'s dtype: where a tangent passes (relu, clip, max)."""
    return xp.astype(xp.asarray(condition), like.dtype)


def _kept(x: Any, axis: Any, keepdims: bool) -> tuple[int, ...]:
    """The shape a reduction over ``axis`` of ``x`` has with keepdims=True."""
    if axis is None:
        return (1,) * len(x.shape)
    axes = {int(a) % len(x.shape) for a in ((axis,) if np.ndim(axis) == 0 else axis)}
    return tuple(1 if i in axes else n for i, n in enumerate(x.shape))


def _tie_share(xp, t, ans, x, y, wins):
    """maximum's and minimum's term for one input: its tangent where it ``wins`` (is the
    larger, or the smaller), half of it where the two are equal."""
    half = xp.where(xp.equal(x, y), 0.5, 1.0)
    return t * _mask(xp, wins, ans) * _mask(xp, half, ans)


def _extremum_jvp(xp, t, ans, x, axis=None, keepdims=False):
    """max and min: the tangents of the elements that reach the extremum, averaged."""
    hit = _mask(xp, xp.equal(x, xp.reshape(ans, _kept(x, axis, keepdims))), ans)
    ties = xp.sum(hit, axis=axis, keepdims=True)
    return xp.sum(t[0] * hit / ties, axis=axis, keepdims=keepdims)


def _softmax_xent_jvp(xp, t, ans, logits, labels):
    """dL = (1/N) Σ_n Σ_c (softmax(z_n)_c − onehot(y_n)_c) · dz_nc."""
    n, c = logits.shape
    e = xp.exp(logits - xp.max(logits, axis=-1, keepdims=True))  # any shift: it cancels
    p = e / xp.sum(e, axis=-1, keepdims=True)
    onehot = (np.reshape(labels, (-1, 1)) == np.arange(c)).astype(logits.dtype)
    return xp.sum((p - onehot) * t[0]) / n


def _clip_jvp(xp, t, ans, x, min=None, max=None):  # clip's own names
    inside = xp.ones_like(x) if min is None else _mask(xp, xp.greater_equal(x, min), ans)
    if max is not None:
        inside = inside * _mask(xp, xp.less_equal(x, max), ans)
    return t[0] * inside


# One line per primitive: forward, its VJP (g, ans, *inputs, **constants) -> grads, and
# what that VJP reads (``saves``), which the tape keeps from the forward pass; beside it
# its JVP: one term per input (xp, t, ans, *inputs, **constants) -> ∂ans/∂input · t, or
# one function of every input's tangent, t[i] (see the module's docstring).
RULES: dict[str, Rule] = {
    "add": Rule(np.add, lambda g, ans, x, y: (g, g), broadcasts=True, saves="",
                jvp=(lambda xp, t, ans, x, y: t, lambda xp, t, ans, x, y: t)),
    "sub": Rule(np.subtract, lambda g, ans, x, y: (g, -g), broadcasts=True, saves="",
                jvp=(lambda xp, t, ans, x, y: t, lambda xp, t, ans, x, y: -t)),
    "mul": Rule(np.multiply, lambda g, ans, x, y: (g * y, g * x), broadcasts=True, saves="x y",
                jvp=(lambda xp, t, ans, x, y: t * y, lambda xp, t, ans, x, y: x * t)),
    "div": Rule(np.divide, lambda g, ans, x, y: (g / y, -g * ans / y), broadcasts=True,
                saves="ans y",
                jvp=(lambda xp, t, ans, x, y: t / y, lambda xp, t, ans, x, y: -t * ans / y)),
    "neg": Rule(np.negative, lambda g, ans, x: (-g,), saves="",
                jvp=lambda xp, t, ans, x: -t[0]),
    "pow": Rule(lambda x, p: x**p, _pow_vjp, saves="x", jvp=_pow_jvp),
    "power": Rule(np.power, _power_vjp, broadcasts=True, saves="ans x y",
                  jvp=(lambda xp, t, ans, x, y: t * _power_partials(xp, ans, x, y, 0),
                       lambda xp, t, ans, x, y: t * _power_partials(xp, ans, x, y, 1))),
    "remainder": Rule(np.remainder, _remainder_vjp, broadcasts=True, saves="x y",
                      jvp=(lambda xp, t, ans, x, y: t,
                           lambda xp, t, ans, x, y: -t * xp.floor_divide(x, y))),
    "matmul": Rule(np.matmul, _matmul_vjp, broadcasts=True, saves="x y",
                   jvp=(lambda xp, t, ans, x, y: t @ y, lambda xp, t, ans, x, y: x @ t)),
    "exp": Rule(np.exp, lambda g, ans, x: (g * ans,), saves="ans",
                jvp=lambda xp, t, ans, x: t[0] * ans),
    "log": Rule(np.log, lambda g, ans, x: (g / x,), saves="x",
                jvp=lambda xp, t, ans, x: t[0] / x),
    "tanh": Rule(np.tanh, lambda g, ans, x: (g * (1 - ans * ans),), saves="ans",
                 jvp=lambda xp, t, ans, x: t[0] * (1 - ans * ans)),
    "sigmoid": Rule(_sigmoid, lambda g, ans, x: (g * ans * (1 - ans),), saves="ans",
                    jvp=lambda xp, t, ans, x: t[0] * ans * (1 - ans)),
    "relu": Rule(lambda x: np.maximum(x, 0), lambda g, ans, x: (g * (ans > 0),), saves="ans",
                 jvp=lambda xp, t, ans, x: t[0] * _mask(xp, xp.greater(ans, 0), ans)),
    "sum": Rule(
        lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
        lambda g, ans, x, axis=None, keepdims=False: (
            _spread(_keep(g, x, axis, keepdims), x.shape),
        ),
        saves="",
        jvp=lambda xp, t, ans, x, axis=None, keepdims=False: xp.sum(t[0], axis=axis,
                                                                    keepdims=keepdims),
    ),
    "mean": Rule(
        lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
        lambda g, ans, x, axis=None, keepdims=False: (
            np.broadcast_to(_keep(g, x, axis, keepdims) / _count(x, axis), x.shape).copy(),
        ),
        saves="",
        jvp=lambda xp, t, ans, x, axis=None, keepdims=False: xp.mean(t[0], axis=axis,
                                                                     keepdims=keepdims),
    ),
    "reshape": Rule(np.reshape, lambda g, ans, x, shape: (np.reshape(g, x.shape),), saves="",
                    jvp=lambda xp, t, ans, x, shape: xp.reshape(t[0], shape)),
    "transpose": Rule(
        lambda x, axes=None: np.transpose(x, axes),
        lambda g, ans, x, axes=None: (np.transpose(g, _inverse(axes)),),
        saves="",
        jvp=lambda xp, t, ans, x, axes=None: xp.permute_dims(
            t[0], tuple(range(len(x.shape)))[::-1] if axes is None else axes),
    ),
    "getitem": Rule(lambda x, index: x[index], _getitem_vjp, saves="",
                    jvp=lambda xp, t, ans, x, index: t[0][index]),
    "concatenate": Rule(
        lambda *xs, axis=0: np.concatenate(xs, axis=axis),
        lambda g, ans, *xs, axis=0: _split(g, *xs, axis=axis),
        saves="",
        jvp=lambda xp, t, ans, *xs, axis=0: xp.concat(t, axis=axis),
    ),
    "stack": Rule(
        lambda *xs, axis=0: np.stack(xs, axis=axis),
        lambda g, ans, *xs, axis=0: _unstack(g, *xs, axis=axis),
        saves="",
        jvp=lambda xp, t, ans, *xs, axis=0: xp.stack(t, axis=axis),
    ),
    "logsumexp": Rule(
        _logsumexp,
        lambda g, ans, x, axis=None, keepdims=False: (
            _keep(g, x, axis, keepdims) * np.exp(x - _keep(ans, x, axis, keepdims)),
        ),
        saves="ans x",
        jvp=lambda xp, t, ans, x, axis=None, keepdims=False: xp.sum(  # Σ softmax(x)·t
            t[0] * xp.exp(x - xp.reshape(ans, _kept(x, axis, keepdims))), axis=axis,
            keepdims=keepdims),
    ),
    "softmax_cross_entropy": Rule(_softmax_xent, _softmax_xent_vjp, saves="x",
                                  jvp=_softmax_xent_jvp),
    # The rest of the array API standard the tape covers (reference/xp.py)
    "abs": Rule(np.abs, lambda g, ans, x: (g * np.sign(x),), saves="x",
                jvp=lambda xp, t, ans, x: t[0] * xp.sign(x)),
    "sqrt": Rule(np.sqrt, lambda g, ans, x: (g / (2 * ans),), saves="ans",
                 jvp=lambda xp, t, ans, x: t[0] / (2 * ans)),
    "sin": Rule(np.sin, lambda g, ans, x: (g * np.cos(x),), saves="x",
                jvp=lambda xp, t, ans, x: t[0] * xp.cos(x)),
    "cos": Rule(np.cos, lambda g, ans, x: (-g * np.sin(x),), saves="x",
                jvp=lambda xp, t, ans, x: -t[0] * xp.sin(x)),
    "log1p": Rule(np.log1p, lambda g, ans, x: (g / (1 + x),), saves="x",
                  jvp=lambda xp, t, ans, x: t[0] / (1 + x)),
    "expm1": Rule(np.expm1, lambda g, ans, x: (g * (ans + 1),), saves="ans",
                  jvp=lambda xp, t, ans, x: t[0] * (ans + 1)),
    "maximum": Rule(np.maximum, _tie_split, broadcasts=True, saves="x y",
                    jvp=(lambda xp, t, ans, x, y: _tie_share(xp, t, ans, x, y, xp.greater_equal(x, y)),
                         lambda xp, t, ans, x, y: _tie_share(xp, t, ans, x, y, xp.less_equal(x, y)))),
    "minimum": Rule(  # the maximum's shares, swapped: g to the smaller input
        np.minimum,
        lambda g, ans, x, y: _tie_split(g, ans, x, y)[::-1],
        broadcasts=True,
        saves="x y",
        jvp=(lambda xp, t, ans, x, y: _tie_share(xp, t, ans, x, y, xp.less_equal(x, y)),
             lambda xp, t, ans, x, y: _tie_share(xp, t, ans, x, y, xp.greater_equal(x, y))),
    ),
    "where": Rule(np.where, _where_vjp, broadcasts=True, saves="",  # the condition is data
                  jvp=lambda xp, t, ans, c, x, y: xp.where(c, t[1], t[2])),
    "clip": Rule(
        lambda x, min=None, max=None: np.clip(x, min, max),
        lambda g, ans, x, min=None, max=None: (
            g * ((min is None or x >= min) & (max is None or x <= max)),
        ),
        saves="x",
        jvp=_clip_jvp,
    ),
    "max": Rule(
        lambda x, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
        _extremum_vjp,
        saves="ans x",
        jvp=_extremum_jvp,
    ),
    "min": Rule(
        lambda x, axis=None, keepdims=False: np.min(x, axis=axis, keepdims=keepdims),
        _extremum_vjp,
        saves="ans x",
        jvp=_extremum_jvp,
    ),
    "expand_dims": Rule(
        np.expand_dims, lambda g, ans, x, axis: (np.reshape(g, x.shape),), saves="",
        jvp=lambda xp, t, ans, x, axis: xp.expand_dims(t[0], axis=axis),
    ),
    "squeeze": Rule(np.squeeze, lambda g, ans, x, axis: (np.reshape(g, x.shape),), saves="",
                    jvp=lambda xp, t, ans, x, axis: xp.squeeze(t[0], axis=axis)),
    "broadcast_to": Rule(
        lambda x, shape: np.array(np.broadcast_to(x, shape)),
        lambda g, ans, x, shape: (g,),
        broadcasts=True,
        saves="",
        jvp=lambda xp, t, ans, x, shape: xp.broadcast_to(t[0], shape),
    ),
    "astype": Rule(
        lambda x, dtype: x.astype(dtype), lambda g, ans, x, dtype: (g.astype(x.dtype),), saves="",
        jvp=lambda xp, t, ans, x, dtype: xp.astype(t[0], dtype),
    ),
}  # fmt: skip


# The functions without a derivative: comparisons, logic, bits, sign and floor division.
# Their answer is a boolean or an integer, or a step function's value (sign, ⌊x/y⌋): it
# does not move when the inputs move a little, so every derivative through it is zero
# where it exists (JAX gives sign and floor_divide a zero gradient, torch gives sign one
# and floor_divide none). The tape computes the answer and records nothing; forward mode
# gives it no tangent.
CONSTANTS: dict[str, Callable[..., Any]] = {
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
    "logical_not": np.logical_not,
    "bitwise_and": np.bitwise_and,
    "bitwise_or": np.bitwise_or,
    "bitwise_xor": np.bitwise_xor,
    "bitwise_invert": np.invert,
    "bitwise_left_shift": np.left_shift,
    "bitwise_right_shift": np.right_shift,
    "isnan": np.isnan,
    "isinf": np.isinf,
    "isfinite": np.isfinite,
    "sign": np.sign,
    "floor_divide": np.floor_divide,
}
