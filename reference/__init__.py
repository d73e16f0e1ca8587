"""A minimal backprop in numpy, readable end to end: reverse mode, forward mode, and H·v.

- ``primitives``: each operation's forward, VJP and JVP, in one table;
- ``engine``: the Tensor, the tape and ``backward`` (the chain rule, summed over paths);
- ``array_object``: Python's operators on the tape's values, as the array API standard
  defines them (``xp``: its namespace of functions);
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


def exp(x: Any) -> Tensor:
    return apply("exp", x)


def log(x: Any) -> Tensor:
    return apply("log", x)


def tanh(x: Any) -> Tensor:
    return apply("tanh", x)


def sigmoid(x: Any) -> Tensor:
    return apply("sigmoid", x)


def relu(x: Any) -> Tensor:
    return apply("relu", x)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return apply("sum", x, axis=axis, keepdims=keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return apply("mean", x, axis=axis, keepdims=keepdims)


def reshape(x: Any, shape: tuple[int, ...]) -> Tensor:
    return apply("reshape", x, shape=shape)


def transpose(x: Any, axes: tuple[int, ...] | None = None) -> Tensor:
    return apply("transpose", x, axes=axes)


def concatenate(xs: list[Any], axis: int = 0) -> Tensor:
    return apply("concatenate", *xs, axis=axis)


def stack(xs: list[Any], axis: int = 0) -> Tensor:
    return apply("stack", *xs, axis=axis)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return apply("logsumexp", x, axis=axis, keepdims=keepdims)


def softmax_cross_entropy(logits: Any, labels: Any) -> Tensor:
    """Mean over the batch of -log softmax(logits_n)[labels_n]; labels are integers."""
    labels = labels.value if isinstance(labels, Tensor) else labels
    return apply("softmax_cross_entropy", logits, labels=labels)
