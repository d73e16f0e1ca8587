"""The ``ops`` namespace a Case is written against, and the loop-based base the backends share.

A case computes its loss with Python operators (``@ + - * / ** []``) on whatever array
type the backend hands it, and with these functions:

    tanh sigmoid relu exp log                      elementwise
    sum mean logsumexp (axis=None)                 reductions
    reshape transpose concatenate stack            shape
    softmax_cross_entropy(logits, labels)          mean over the batch of -log softmax[label]
    tap(name, x) -> x                              "report dL/dx under this name"
    scan(step, init, xs) -> (carry, ys)            apply step T times: carry, y_t = step(carry, x_t)

Taps made inside ``scan``'s step are stacked along a leading step axis: a tap named
``h`` in a T-step unroll is reported as one tensor of shape (T, ...), step t at index t.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TapError(ValueError):
    """A tap name used twice, or a tap used inconsistently across steps."""


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``fn`` to every leaf of nested tuples/lists/dicts (None stays None)."""
    if tree is None:
        return None
    if isinstance(tree, (tuple, list)):
        return type(tree)(tree_map(fn, t) for t in tree)
    if isinstance(tree, dict):
        return {k: tree_map(fn, v) for k, v in tree.items()}
    return fn(tree)


def tree_stack(trees: list[Any], stack: Callable[[list[Any]], Any]) -> Any:
    """Stack a list of same-shaped trees leaf by leaf (a list of (h, c) -> (hs, cs))."""
    first = trees[0]
    if first is None:
        return None
    if isinstance(first, (tuple, list)):
        return type(first)(tree_stack([t[i] for t in trees], stack) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: tree_stack([t[k] for t in trees], stack) for k in first}
    return stack(trees)


class Ops:
    """Shared behaviour: tap bookkeeping and a plain Python ``scan`` loop.

    A backend subclass supplies the array functions and ``_watch(name, x, step)``, which
    returns the value the computation continues with (``x`` itself, or ``x`` plus a
    perturbation) and records whatever its machinery needs to report dL/dx.
    """

    name = "ops"

    def __init__(self) -> None:
        self.tap_steps: dict[str, int | None] = {}  # name -> number of steps (None: not in a scan)
        self._step: int | None = None
        self._scan_taps: set[str] = set()

    # --- taps
    def tap(self, name: str, x: Any) -> Any:
        """Mark ``x``: every backend reports dL/dx under ``name``. Returns x (as watched)."""
        if self._step is None or self._step == 0:
            if name in self.tap_steps:
                raise TapError(f"tap {name!r} is used twice; tap names must be unique")
            if self._step == 0:
                self._scan_taps.add(name)
        elif name not in self._scan_taps:
            raise TapError(f"tap {name!r} appears at step {self._step} but not at step 0")
        self.tap_steps[name] = None if self._step is None else self._step + 1
        return self._watch(name, x, self._step)

    def _watch(self, name: str, x: Any, step: int | None) -> Any:
        return x

    # --- the unroll construct
    def scan(self, step: Callable, init: Any, xs: Any = None, length: int | None = None):
        """carry_t, y_t = step(carry_{t-1}, xs[t]) for t = 0..T-1; returns (carry_T, ys).

        ``xs`` is an array (or tree of arrays) with a leading axis of length T, or None
        with ``length=T``. ``ys`` stacks the per-step outputs (None if step returns None).
        """
        if self._step is not None:
            raise TapError("scan inside scan is not supported")
        if length is None:
            leaves: list[Any] = []
            tree_map(leaves.append, xs)
            if not leaves:
                raise ValueError("scan needs xs or length")
            length = len(leaves[0])
        self._scan_taps = set()
        carry, ys = init, []
        try:
            for t in range(length):
                self._step = t
                x_t = tree_map(lambda a, t=t: a[t], xs)
                carry, y = step(carry, x_t)
                ys.append(y)
        finally:
            self._step = None
        return carry, (tree_stack(ys, self.stack) if ys else None)

    # --- array functions every backend supplies
    def tanh(self, x):
        raise NotImplementedError

    def sigmoid(self, x):
        raise NotImplementedError

    def relu(self, x):
        raise NotImplementedError

    def exp(self, x):
        raise NotImplementedError

    def log(self, x):
        raise NotImplementedError

    def sum(self, x, axis=None, keepdims=False):
        raise NotImplementedError

    def mean(self, x, axis=None, keepdims=False):
        raise NotImplementedError

    def logsumexp(self, x, axis=None, keepdims=False):
        raise NotImplementedError

    def reshape(self, x, shape):
        raise NotImplementedError

    def transpose(self, x, axes=None):
        raise NotImplementedError

    def concatenate(self, xs, axis=0):
        raise NotImplementedError

    def stack(self, xs, axis=0):
        raise NotImplementedError

    def softmax_cross_entropy(self, logits, labels):
        raise NotImplementedError
