"""``xp``: the namespace a Case computes with — the array API standard, and a few extras.

A case is written once against the array API standard (array-api.org), the way scipy and
scikit-learn write array code for many libraries: Python operators (``@ + - * / ** []``)
and the standard's functions (``xp.tanh``, ``xp.sum(x, axis=1)``, ``xp.concat``,
``xp.permute_dims``, ``xp.where`` …). Each backend hands it a ``Namespace`` whose
``standard`` is a library's namespace (``array_api_compat.torch``, ``jax.numpy``,
``array_api_compat.numpy``, the tape's ``reference.xp``), and adds gradparity's extras,
set apart because the standard has no such thing:

    tap(name, x) -> x                       "report dL/dx under this name"
    scan(step, init, xs) -> (carry, ys)     apply step T times: carry, y_t = step(carry, x_t)
    sigmoid(x)  relu(x)                     what networks need and the standard lacks
    logsumexp(x, axis=None, keepdims=False)
    softmax_cross_entropy(logits, labels)   mean over the batch of -log softmax[label]

Taps made inside ``scan``'s step are stacked along a leading step axis: a tap named
``h`` in a T-step unroll is reported as one tensor of shape (T, ...), step t at index t.
The extras here are written with the standard's own functions; a backend replaces them
with its library's (``torch.sigmoid``, ``jax.nn.sigmoid``, the tape's primitives).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any


class Unsupported(AttributeError):
    """A function the case needs that a backend or a plug-in engine does not have."""


class TapError(ValueError):
    """A tap name used twice, or a tap used inconsistently across steps."""


def _step_of(t: int, a: Any) -> Any:
    """Step ``t`` of a scanned array: its first axis."""
    return a[t, ...]


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


EXTRAS = ("tap", "scan", "sigmoid", "relu", "logsumexp", "softmax_cross_entropy")


class Namespace:
    """``xp`` for a case: every name of ``standard`` (an array API namespace), and the extras.

    A backend subclass sets ``standard``, and ``_watch(name, x, step)``, which returns the
    value the computation continues with (``x`` itself, or ``x`` plus a perturbation) and
    records whatever its machinery needs to report dL/dx; it may replace the extras with
    its library's own. ``scan`` is a plain Python loop here.
    """

    name = "xp"
    standard: Any = None  # the array API namespace of the backend's arrays

    def __init__(self) -> None:
        self.tap_steps: dict[str, int | None] = {}  # name -> number of steps (None: not in a scan)
        self._step: int | None = None
        self._scan_taps: set[str] = set()

    # --- taps
    def tap(self, name: str, x: Any) -> Any:
        """Mark ``x``: every backend reports dL/dx under ``name``. Returns x (as watched)."""
        if not isinstance(name, str) or "\n" in name:  # other controls: escaped where shown
            raise TapError(
                f"tap name {name!r} is not one line of text; a tensor's name begins lines of "
                "the output"
            )
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
            first = leaves[0]  # the standard's arrays have a shape, not necessarily a len()
            length = first.shape[0] if hasattr(first, "shape") else len(first)
        self._scan_taps = set()
        carry, ys = init, []
        try:
            for t in range(length):
                self._step = t
                x_t = tree_map(partial(_step_of, t), xs)
                carry, y = step(carry, x_t)
                ys.append(y)
        finally:
            self._step = None
        return carry, (tree_stack(ys, self.stack) if ys else None)

    # --- the standard's names
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or self.standard is None:
            raise AttributeError(name)
        return getattr(self.standard, name)

    # --- the extras, in the standard's own terms (a backend may use its library's)
    def sigmoid(self, x: Any) -> Any:
        """σ(x) = 1 / (1 + e^{−x})."""
        return 1 / (1 + self.standard.exp(-x))

    def relu(self, x: Any) -> Any:
        """max(x, 0), with relu'(0) = 0."""
        return self.standard.where(x > 0, x, self.standard.zeros_like(x))

    def logsumexp(self, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
        """log Σ e^x, shifted by the maximum (held constant) so that no term overflows."""
        xp = self.standard
        m = xp.max(x, axis=axis, keepdims=True)
        out = m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))
        return (
            out
            if keepdims
            else xp.squeeze(out, axis=axis if axis is not None else tuple(range(x.ndim)))
        )

    def softmax_cross_entropy(self, logits: Any, labels: Any) -> Any:
        """−(1/N) Σ_n log softmax(logits_n)[labels_n], labels integers in [0, C): the picked
        entries by a one-hot mask, which every namespace can differentiate."""
        xp = self.standard
        log_p = logits - self.logsumexp(logits, axis=-1, keepdims=True)
        onehot = xp.reshape(labels, (-1, 1)) == xp.arange(logits.shape[-1])
        return -xp.mean(xp.sum(xp.where(onehot, log_p, xp.zeros_like(log_p)), axis=-1))


# the array API standard's names that numpy's classic namespace spells otherwise
NUMPY_NAMES = {
    "concat": "concatenate",
    "permute_dims": "transpose",
    "pow": "power",
    "acos": "arccos",
    "asin": "arcsin",
    "atan": "arctan",
    "atan2": "arctan2",
    "acosh": "arccosh",
    "asinh": "arcsinh",
    "atanh": "arctanh",
    "bitwise_left_shift": "left_shift",
    "bitwise_right_shift": "right_shift",
    "bitwise_invert": "invert",
}


class NumpyLike:
    """The array API standard's names over a module that spells them as numpy 1 did
    (autograd.numpy, and other numpy look-alikes whose derivatives are registered under
    the classic names): ``concat`` is its ``concatenate``, ``permute_dims`` its
    ``transpose``, ``matrix_transpose`` a swap of the last two axes, ``astype`` the
    array's method; every other name is the module's own."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._module, NUMPY_NAMES.get(name, name))

    def matrix_transpose(self, x: Any) -> Any:
        return self._module.swapaxes(x, -1, -2)

    def astype(self, x: Any, dtype: Any, /, *, copy: bool = True) -> Any:
        return x.astype(dtype)


def numpy_like(module: Any) -> NumpyLike:
    """``module`` (numpy-like, with numpy 1's names) as an array API namespace."""
    return NumpyLike(module)
