"""The tape's array API namespace: the standard's functions (array-api.org) over Tensors.

A computation written against the array API standard (``xp.tanh(x @ W + b)``,
``xp.sum(x, axis=1)``, ``xp.concat([a, b])``) runs on the tape when ``xp`` is this
module: every differentiable function is a primitive of ``reference.primitives``, and
Python's operators on Tensors are too (``reference.array_object``). What it covers:

- elementwise: abs exp expm1 log log1p sqrt square sin cos tanh negative positive,
  add subtract multiply divide pow remainder maximum minimum, where clip
- no derivative (a constant answer): equal not_equal greater greater_equal less
  less_equal, logical_and logical_or logical_xor logical_not, bitwise_and bitwise_or
  bitwise_xor bitwise_invert bitwise_left_shift bitwise_right_shift, floor_divide sign
  isnan isinf isfinite
- reductions: sum mean max min; linear algebra: matmul matrix_transpose vecdot
- shapes: reshape permute_dims concat stack expand_dims squeeze broadcast_to astype
- creation: asarray zeros ones empty full zeros_like ones_like full_like arange linspace eye
- dtypes and constants: float32 float64 int32 int64 bool, finfo iinfo, e pi inf nan newaxis
- beyond the standard, the tape's primitives that networks need and the standard lacks:
  sigmoid relu logsumexp softmax_cross_entropy

Any other name of the standard is an ``AttributeError`` that names the function and says
the tape does not implement it (``NotInTape``), and so is an argument the tape cannot
differentiate through (an array as ``clip``'s bound, or as a creation function's value,
that requires a gradient). Given forward-mode Duals (``reference.forward``) instead of
Tensors, every function here pushes their tangents (the tape's ``apply`` hands a Dual
the primitive). This module imports numpy and the tape below it.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any

import numpy as np

from reference.array_object import ArrayObject, NotInTape, matrix_axes, plain
from reference.engine import Tensor, apply

__array_api_version__ = "2023.12"


def _carries_derivative(x: Any) -> builtins.bool:
    """A value a derivative flows through: a Tensor that requires a gradient, or another of
    the tape's arrays (forward mode's Dual, which always carries its tangent)."""
    return x.requires_grad if isinstance(x, Tensor) else isinstance(x, ArrayObject)


def _array(x: Any) -> ArrayObject:
    """x as one of the tape's arrays (a Tensor or a Dual), so that its operators apply."""
    return x if isinstance(x, ArrayObject) else Tensor(x)


# --- elementwise, with gradients
def abs(x: Any) -> Tensor:  # the standard's name
    return apply("abs", x)


def exp(x: Any) -> Tensor:
    return apply("exp", x)


def expm1(x: Any) -> Tensor:
    return apply("expm1", x)


def log(x: Any) -> Tensor:
    return apply("log", x)


def log1p(x: Any) -> Tensor:
    return apply("log1p", x)


def sqrt(x: Any) -> Tensor:
    return apply("sqrt", x)


def square(x: Any) -> Tensor:
    return apply("pow", x, p=2)


def sin(x: Any) -> Tensor:
    return apply("sin", x)


def cos(x: Any) -> Tensor:
    return apply("cos", x)


def tanh(x: Any) -> Tensor:
    return apply("tanh", x)


def negative(x: Any) -> Tensor:
    return apply("neg", x)


def positive(x: Any) -> Tensor:
    return +_array(x)


def add(x1: Any, x2: Any) -> Tensor:
    return apply("add", x1, x2)


def subtract(x1: Any, x2: Any) -> Tensor:
    return apply("sub", x1, x2)


def multiply(x1: Any, x2: Any) -> Tensor:
    return apply("mul", x1, x2)


def divide(x1: Any, x2: Any) -> Tensor:
    return apply("div", x1, x2)


def pow(x1: Any, x2: Any) -> Tensor:  # the standard's name
    return _array(x1) ** x2


def remainder(x1: Any, x2: Any) -> Tensor:
    return apply("remainder", x1, x2)


def maximum(x1: Any, x2: Any) -> Tensor:
    return apply("maximum", x1, x2)


def minimum(x1: Any, x2: Any) -> Tensor:
    return apply("minimum", x1, x2)


def where(condition: Any, x1: Any, x2: Any) -> Tensor:
    return apply("where", plain(condition), x1, x2)


def clip(x: Any, /, min: Any = None, max: Any = None) -> Tensor:
    if _carries_derivative(min) or _carries_derivative(max):
        raise NotInTape("the tape's clip takes bounds without a gradient, not arrays that need one")
    return apply("clip", x, min=plain(min), max=plain(max))


# --- no derivative: the answer is a constant (``CONSTANTS`` in reference/primitives.py)
def _constant(op: str) -> Any:
    def function(*xs: Any) -> Tensor:
        return apply(op, *xs)

    function.__name__ = op
    return function


equal, not_equal = _constant("equal"), _constant("not_equal")
greater, greater_equal = _constant("greater"), _constant("greater_equal")
less, less_equal = _constant("less"), _constant("less_equal")
logical_and, logical_or = _constant("logical_and"), _constant("logical_or")
logical_xor, logical_not = _constant("logical_xor"), _constant("logical_not")
bitwise_and, bitwise_or = _constant("bitwise_and"), _constant("bitwise_or")
bitwise_xor, bitwise_invert = _constant("bitwise_xor"), _constant("bitwise_invert")
bitwise_left_shift = _constant("bitwise_left_shift")
bitwise_right_shift = _constant("bitwise_right_shift")
floor_divide, sign = _constant("floor_divide"), _constant("sign")
isnan, isinf, isfinite = _constant("isnan"), _constant("isinf"), _constant("isfinite")


# --- reductions
def sum(
    x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False, dtype: Any = None
) -> Tensor:
    """Σ x over ``axis``; with ``dtype``, x is cast first and summed in that dtype."""
    return apply("sum", x if dtype is None else astype(x, dtype), axis=axis, keepdims=keepdims)


def mean(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return apply("mean", x, axis=axis, keepdims=keepdims)


def max(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return apply("max", x, axis=axis, keepdims=keepdims)


def min(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return apply("min", x, axis=axis, keepdims=keepdims)


# --- linear algebra
def matmul(x1: Any, x2: Any) -> Tensor:
    return apply("matmul", x1, x2)


def matrix_transpose(x: Any) -> Tensor:
    return apply("transpose", x, axes=matrix_axes(np.ndim(plain(x))))


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Tensor:
    return apply("sum", apply("mul", x1, x2), axis=axis, keepdims=False)


# --- shapes
def reshape(x: Any, /, shape: tuple[int, ...], *, copy: builtins.bool | None = None) -> Tensor:
    return apply("reshape", x, shape=tuple(shape))


def permute_dims(x: Any, /, axes: tuple[int, ...]) -> Tensor:
    return apply("transpose", x, axes=tuple(axes))


def concat(arrays: Any, /, *, axis: int | None = 0) -> Tensor:
    if axis is None:
        arrays, axis = [reshape(a, (-1,)) for a in arrays], 0
    return apply("concatenate", *arrays, axis=axis)


def stack(arrays: Any, /, *, axis: int = 0) -> Tensor:
    return apply("stack", *arrays, axis=axis)


def expand_dims(x: Any, /, axis: int = 0) -> Tensor:
    return apply("expand_dims", x, axis=axis)


def squeeze(x: Any, /, axis: int | tuple[int, ...]) -> Tensor:
    return apply("squeeze", x, axis=axis)


def broadcast_to(x: Any, /, shape: tuple[int, ...]) -> Tensor:
    return apply("broadcast_to", x, shape=tuple(shape))


def astype(x: Any, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> Tensor:
    """x in ``dtype``: to a floating dtype, with its derivative; to an integer or boolean
    one, a constant (rounding to a whole number is a step: no derivative, as in torch and
    JAX, where an integer array has no gradient)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return Tensor(np.asarray(plain(x)).astype(dtype))
    return apply("astype", x, dtype=dtype)


def _as(x: Any, dtype: Any) -> Any:  # a Tensor, or forward mode's Dual
    return x if dtype is None or np.dtype(dtype) == x.dtype else astype(x, dtype)


# --- creation: constants, no gradient
def asarray(
    obj: Any, /, *, dtype: Any = None, device: Any = None, copy: builtins.bool | None = None
) -> Tensor:
    """``obj`` as a Tensor; a Tensor or Dual is kept (with its derivative). A sequence of
    them goes through numpy (``Tensor.__array__``), which refuses one that requires a
    gradient: stack those with ``stack``."""
    if isinstance(obj, ArrayObject):
        return _as(obj, dtype)
    return Tensor(np.asarray(obj, dtype=dtype))


def _creator(fn: Any, like: builtins.bool = False) -> Any:
    """A creation function: its answer is a constant, so a value given to it that carries
    a derivative (a fill value, a bound) is refused rather than dropped; the array a
    ``*_like`` function copies the shape and dtype of may carry one."""

    def create(*args: Any, device: Any = None, **kwargs: Any) -> Tensor:
        given = [*(args[1:] if like else args), *kwargs.values()]
        if any(_carries_derivative(a) for a in given):
            raise NotInTape(
                f"the tape's {fn.__name__} makes a constant: it takes no value that "
                "requires a gradient (make the array by arithmetic instead, e.g. x * ones)"
            )
        return Tensor(fn(*(plain(a) for a in args), **{k: plain(v) for k, v in kwargs.items()}))

    create.__name__ = fn.__name__
    return create


zeros, ones, empty, full = (
    _creator(np.zeros),
    _creator(np.ones),
    _creator(np.empty),
    _creator(np.full),
)
zeros_like, ones_like = _creator(np.zeros_like, like=True), _creator(np.ones_like, like=True)
full_like, empty_like = _creator(np.full_like, like=True), _creator(np.empty_like, like=True)
arange, linspace, eye = _creator(np.arange), _creator(np.linspace), _creator(np.eye)

# --- dtypes and constants
float32, float64, int32, int64, bool = np.float32, np.float64, np.int32, np.int64, np.bool_


def finfo(type: Any, /) -> Any:  # the standard's name
    """Machine limits of a floating-point dtype, or of an array's dtype."""
    return np.finfo(np.result_type(plain(type)))


def iinfo(type: Any, /) -> Any:  # the standard's name
    """Machine limits of an integer dtype, or of an array's dtype."""
    return np.iinfo(np.result_type(plain(type)))


e, pi, inf, nan, newaxis = np.e, np.pi, np.inf, np.nan, None


# --- beyond the standard: primitives that networks need and the standard lacks
def sigmoid(x: Any) -> Tensor:
    return apply("sigmoid", x)


def relu(x: Any) -> Tensor:
    return apply("relu", x)


def logsumexp(x: Any, axis: Any = None, keepdims: builtins.bool = False) -> Tensor:
    return apply("logsumexp", x, axis=axis, keepdims=keepdims)


def softmax_cross_entropy(logits: Any, labels: Any) -> Tensor:
    """Mean over the batch of -log softmax(logits_n)[labels_n]; labels are integers."""
    return apply("softmax_cross_entropy", logits, labels=plain(labels))


# The arrays' ``__array_namespace__()`` hands back this module, which is built above them:
# it names itself there, so that no module below imports it.
ArrayObject.namespace = sys.modules[__name__]


def __getattr__(name: str) -> Any:
    raise NotInTape(
        f"the tape's array API namespace has no {name!r}: reference/xp.py lists what it "
        "covers (a function outside it needs a primitive in reference/primitives.py)"
    )
