"""A minimal backprop in numpy, readable end to end: reverse mode, forward mode, and H·v.

The modules, in reading order; each imports only those before it (a contract in
pyproject.toml checks it):

- ``primitives``: each operation's forward, VJP and JVP, in one table;
- ``array_object``: Python's operators on the tape's values, as the array API standard
  defines them, each one a primitive;
- ``engine``: the Tensor, the tape and ``backward`` (the chain rule, summed over paths);
- ``xp``: the tape's one namespace, the standard's functions (and the few primitives
  networks need that it lacks);
- ``forward``: dual numbers, the chain rule from the inputs on; ``hvp``, the tape over it;
- ``manual``: textbook backward passes derived by hand (layers, BPTT), no tape at all.

This package imports numpy and nothing else.
"""

from __future__ import annotations

from typing import Any

from reference import xp  # the namespace: with it, every array knows its namespace
from reference.engine import Tensor, apply, topological_order, unbroadcast

__all__ = [
    "xp",
    "Tensor",
    "apply",
    "topological_order",
    "unbroadcast",
    "exp",
    "log",
    "tanh",
    "sigmoid",
    "relu",
    "sum",
    "mean",
    "reshape",
    "transpose",
    "concatenate",
    "stack",
    "logsumexp",
    "softmax_cross_entropy",
]


def _numpy_transpose(x: Any, axes: tuple[int, ...] | None = None) -> Tensor:
    """numpy's transpose: the axes reversed when none are given."""
    return apply("transpose", x, axes=axes)


# The tape has one namespace, ``reference.xp``, in the array API standard's names. These are
# the same functions under numpy's names, for code written against numpy's spelling; each
# is the namespace's function, nothing more (transpose takes numpy's optional axes).
exp, log, tanh, sigmoid, relu = xp.exp, xp.log, xp.tanh, xp.sigmoid, xp.relu
sum, mean, logsumexp = xp.sum, xp.mean, xp.logsumexp  # numpy's names
reshape, stack, concatenate = xp.reshape, xp.stack, xp.concat
transpose = _numpy_transpose
softmax_cross_entropy = xp.softmax_cross_entropy
