"""The tape's array API namespace: the standard's functions (array-api.org) over Tensors.

A computation written against the array API standard (``xp.tanh(x @ W + b)``,
``xp.sum(x, axis=1)``, ``xp.concat([a, b])``) runs on the tape when ``xp`` is this
module: every differentiable function is a primitive of ``reference.primitives``, and
Python's operators on Tensors are too. What it covers:

- elementwise: abs exp expm1 log log1p sqrt square sin cos tanh negative positive,
  add subtract multiply divide pow maximum minimum, where clip
- comparisons and logic (no gradient): equal not_equal greater greater_equal less
  less_equal logical_and logical_or logical_not isnan isinf isfinite sign
- reductions: sum mean max min; linear algebra: matmul matrix_transpose vecdot
- shapes: reshape permute_dims concat stack expand_dims squeeze broadcast_to astype
- creation: asarray zeros ones empty full zeros_like ones_like full_like arange linspace eye
- dtypes and constants: float32 float64 int32 int64 bool, finfo iinfo, e pi inf nan newaxis

Any other name of the standard is an ``AttributeError`` that names the function and says
the tape does not implement it (``NotInTape``). Given forward-mode Duals
(``reference.forward``) instead of Tensors, every function here pushes their tangents.
This module imports numpy alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.engine import Tensor, apply
from reference.forward import Dual, plain

__array_api_version__ = "2023.12"


class NotInTape(AttributeError):
    """A function of the array API standard that the tape does not implement."""


def _value(x: Any) -> Any:
    """The numpy value (of a Tensor, of a forward-mode Dual, or of an array itself)."""
    return plain(x) if isinstance(x, (Tensor, Dual)) else x


def _constant(x: Any) -> Tensor:
    """A value with no gradient (a comparison's answer, a new array)."""
    return Tensor(np.asarray(_value(x)))


# --- elementwise, with gradients
def abs(x: Any) -> Tensor:  # noqa: A001 - the standard's name
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
    return apply("add", x, 0)


def add(x1: Any, x2: Any) -> Tensor:
    return apply("add", x1, x2)


def subtract(x1: Any, x2: Any) -> Tensor:
    return apply("sub", x1, x2)


def multiply(x1: Any, x2: Any) -> Tensor:
    return apply("mul", x1, x2)


def divide(x1: Any, x2: Any) -> Tensor:
    return apply("div", x1, x2)


def pow(x1: Any, x2: Any) -> Tensor:  # noqa: A001 - the standard's name
    if isinstance(x2, Tensor):
        raise NotInTape(
            "the tape's pow takes a constant exponent, not an array that needs a gradient"
        )
    return apply("pow", x1, p=x2)


def maximum(x1: Any, x2: Any) -> Tensor:
    return apply("maximum", x1, x2)


def minimum(x1: Any, x2: Any) -> Tensor:
    return apply("minimum", x1, x2)


def where(condition: Any, x1: Any, x2: Any) -> Tensor:
    return apply("where", _value(condition), x1, x2)


def clip(x: Any, /, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        raise NotInTape("the tape's clip takes constant bounds, not arrays")
    return apply("clip", x, min=min, max=max)


# --- comparisons and logic: no gradient
def _predicate(fn):
    def predicate(*xs: Any) -> Tensor:
        return _constant(fn(*(_value(x) for x in xs)))

    predicate.__name__ = fn.__name__
    return predicate


equal, not_equal = _predicate(np.equal), _predicate(np.not_equal)
greater, greater_equal = _predicate(np.greater), _predicate(np.greater_equal)
less, less_equal = _predicate(np.less), _predicate(np.less_equal)
logical_and, logical_or = _predicate(np.logical_and), _predicate(np.logical_or)
logical_not, sign = _predicate(np.logical_not), _predicate(np.sign)
isnan, isinf, isfinite = _predicate(np.isnan), _predicate(np.isinf), _predicate(np.isfinite)


# --- reductions
def sum(x: Any, /, *, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Tensor:  # noqa: A001
    return _as(apply("sum", x, axis=axis, keepdims=keepdims), dtype)


def mean(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:
    return apply("mean", x, axis=axis, keepdims=keepdims)


def max(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return apply("max", x, axis=axis, keepdims=keepdims)


def min(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return apply("min", x, axis=axis, keepdims=keepdims)


# --- linear algebra
def matmul(x1: Any, x2: Any) -> Tensor:
    return apply("matmul", x1, x2)


def matrix_transpose(x: Any) -> Tensor:
    axes = tuple(range(np.ndim(_value(x))))
    return apply("transpose", x, axes=(*axes[:-2], axes[-1], axes[-2]))


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Tensor:
    return apply("sum", apply("mul", x1, x2), axis=axis, keepdims=False)


# --- shapes
def reshape(x: Any, /, shape: tuple[int, ...], *, copy: bool | None = None) -> Tensor:
    return apply("reshape", x, shape=tuple(shape))


def permute_dims(x: Any, /, axes: tuple[int, ...]) -> Tensor:
    return apply("transpose", x, axes=tuple(axes))


def concat(arrays: Any, /, *, axis: int | None = 0) -> Tensor:
    if axis is None:
        arrays, axis = [reshape(a, (-1,)) for a in arrays], 0
    return apply("concatenate", *arrays, axis=axis)


def stack(arrays: Any, /, *, axis: int = 0) -> Tensor:
    return apply("stack", *arrays, axis=axis)


def expand_dims(x: Any, /, *, axis: int = 0) -> Tensor:
    return apply("expand_dims", x, axis=axis)


def squeeze(x: Any, /, axis: int | tuple[int, ...]) -> Tensor:
    return apply("squeeze", x, axis=axis)


def broadcast_to(x: Any, /, shape: tuple[int, ...]) -> Tensor:
    return apply("broadcast_to", x, shape=tuple(shape))


def astype(x: Any, dtype: Any, /, *, copy: bool = True) -> Tensor:
    return apply("astype", x, dtype=np.dtype(dtype))


def _as(x: Tensor, dtype: Any) -> Tensor:
    return x if dtype is None or np.dtype(dtype) == x.dtype else astype(x, dtype)


# --- creation: constants, no gradient
def asarray(
    obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None
) -> Tensor:
    if isinstance(obj, (Tensor, Dual)):
        return _as(obj, dtype)
    return Tensor(np.asarray(obj, dtype=dtype))


def _creator(fn):
    def create(*args: Any, device: Any = None, **kwargs: Any) -> Tensor:
        return Tensor(fn(*(_value(a) for a in args), **kwargs))

    create.__name__ = fn.__name__
    return create


zeros, ones, empty, full = (
    _creator(np.zeros),
    _creator(np.ones),
    _creator(np.empty),
    _creator(np.full),
)
zeros_like, ones_like = _creator(np.zeros_like), _creator(np.ones_like)
full_like, arange = _creator(np.full_like), _creator(np.arange)
linspace, eye = _creator(np.linspace), _creator(np.eye)

# --- dtypes and constants
float32, float64, int32, int64, bool = np.float32, np.float64, np.int32, np.int64, np.bool_  # noqa: A001
finfo, iinfo = np.finfo, np.iinfo
e, pi, inf, nan, newaxis = np.e, np.pi, np.inf, np.nan, None


def __getattr__(name: str) -> Any:
    raise NotInTape(
        f"the tape's array API namespace has no {name!r}: reference/xp.py lists what it "
        "covers (a function outside it needs a primitive in reference/primitives.py)"
    )
