"""The array object of the array API standard (array-api.org), as the tape's values have it.

The tape hands a computation two kinds of value: the Tensor of reverse mode
(``reference.engine``) and the Dual of forward mode (``reference.forward``), whose value
may itself be a Tensor (H·v). Both are arrays in the standard's sense, so Python's
operators on them mean what the standard says, and ``ArrayObject`` says it once for both.
Each operator is the namespace function of the same meaning — ``a + b`` is ``add(a, b)``,
``a == b`` is ``equal(a, b)`` — run by the class's own ``_apply``: the tape's ``apply`` for
a Tensor, ``push`` for a Dual. So every operator is either a primitive with a derivative
(``RULES`` in ``reference.primitives``) or a function without one (``CONSTANTS``:
comparisons, logic, bits, floor division), whose answer is a constant.

Beyond what the standard defines, ``len(x)`` and ``iter(x)`` walk the first axis, as
numpy, torch and JAX do (array-api-strict has no len() and iterates a 1-D array alone;
no library gives another answer). What the tape cannot do it refuses by name (``NotInTape``): writing into an array
(``x[i] = v``: its values are never changed in place, since a VJP may read them later),
DLPack and the buffer protocol. An in-place operator (``x += y``) binds the name to the
new value ``x + y``, as JAX does: another name for the old array does not see the change.

This module imports numpy alone.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np


class NotInTape(AttributeError, TypeError):
    """Something of the array API standard that the tape does not implement. An
    AttributeError where the namespace lacks a function (as a missing name is), a
    TypeError where an operator is refused (as Python's own refusals of an operator are)."""


def plain(x: Any) -> Any:
    """The numpy value under Duals and Tensors."""
    while hasattr(x, "value") and not isinstance(x, np.ndarray):
        x = x.value
    return x


def index_of(index: Any) -> Any:
    """An index as numpy takes it: the values of the arrays in it (an index is data, no
    derivative flows into it)."""
    if type(index) is tuple:
        for i in index:  # (a loop, not a new tuple, for the usual ints and slices: speed)
            if isinstance(i, ArrayObject):
                return tuple(plain(j) if isinstance(j, ArrayObject) else j for j in index)
        return index
    return plain(index) if isinstance(index, ArrayObject) else index


def matrix_axes(ndim: int) -> tuple[int, ...]:
    """The axes of a matrix transpose: the last two swapped, a stack's axes kept."""
    if ndim < 2:
        raise ValueError(f"a matrix transpose needs at least 2 dimensions, not {ndim}")
    return (*range(ndim - 2), ndim - 1, ndim - 2)


def to_python(convert: Any, x: Any) -> Any:
    """``convert`` (bool, int, float, complex or operator.index) of the one number in a
    zero-dimensional array, as the standard defines ``bool(x)`` and the others; numpy also
    takes an array of one element, the standard does not. A Python number carries no
    derivative: the computation that follows treats it as a constant."""
    value = plain(x)
    if np.ndim(value) != 0:
        raise TypeError(
            f"{convert.__name__}() of an array of shape {np.shape(value)}: the array API "
            "standard converts only a zero-dimensional array to a Python number"
        )
    return convert(value)


def in_place(x: Any, result: Any, symbol: str) -> Any:
    """``x <symbol> y`` (``+=`` and the others): ``result`` is ``x + y`` (or the other
    operation), which the name is bound to. The standard's rule that an in-place operator
    keeps its array's shape and dtype is checked (numpy raises there too)."""
    before, after = np.shape(plain(x)), np.shape(plain(result))
    if after != before:
        raise ValueError(
            f"x {symbol} y would make x of shape {before} one of shape {after}: an in-place "
            "operator keeps the shape of its array (array API standard)"
        )
    was, now = np.result_type(plain(x)), np.result_type(plain(result))
    if now != was:
        raise TypeError(
            f"x {symbol} y would make x of dtype {was} one of dtype {now}: an in-place "
            "operator keeps the dtype of its array (array API standard)"
        )
    return result


def refused(what: str, why: str) -> Any:
    """A method of the standard's array object that the tape does not implement: calling
    it raises NotInTape, naming it and saying why."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotInTape(f"the tape does not support {what}: {why}")

    refuse.__name__ = what
    return refuse


class ArrayObject:
    """Python's operators and the other methods of the array API standard's array object,
    for a class that has ``value``, ``shape``, ``ndim``, ``dtype`` and ``_apply(op, *inputs,
    **constants)``, which runs the function ``op`` of ``RULES`` or ``CONSTANTS``."""

    __slots__ = ()
    _apply: Any  # the class's own: the tape's ``apply``, or forward mode's ``push``
    shape: tuple[int, ...]  # the class's own
    __array_ufunc__ = None  # numpy hands `ndarray <op> x` to the reflected operators

    # arithmetic: primitives, with derivatives
    __add__ = lambda a, b: a._apply("add", a, b)
    __radd__ = lambda a, b: a._apply("add", b, a)
    __sub__ = lambda a, b: a._apply("sub", a, b)
    __rsub__ = lambda a, b: a._apply("sub", b, a)
    __mul__ = lambda a, b: a._apply("mul", a, b)
    __rmul__ = lambda a, b: a._apply("mul", b, a)
    __truediv__ = lambda a, b: a._apply("div", a, b)
    __rtruediv__ = lambda a, b: a._apply("div", b, a)
    __mod__ = lambda a, b: a._apply("remainder", a, b)
    __rmod__ = lambda a, b: a._apply("remainder", b, a)
    __matmul__ = lambda a, b: a._apply("matmul", a, b)
    __rmatmul__ = lambda a, b: a._apply("matmul", b, a)
    __rpow__ = lambda a, b: a._apply("power", b, a)
    __neg__ = lambda a: a._apply("neg", a)
    __pos__ = lambda a: a._apply("mul", a, 1)  # x·1 is x, -0.0 included (x + 0 is not)
    __abs__ = lambda a: a._apply("abs", a)
    __getitem__ = lambda a, index: a._apply("getitem", a, index=index_of(index))

    def __pow__(self, other: Any) -> Any:
        if isinstance(other, (int, float)):  # a number: the power rule, p·x^(p−1)
            return self._apply("pow", self, p=other)
        return self._apply("power", self, other)  # an array: a derivative for both

    # comparisons, logic and bits, floor division: no derivative, a constant answer
    def __eq__(self, other: Any) -> Any:  # elementwise, as arrays do
        return self._apply("equal", self, other)

    def __ne__(self, other: Any) -> Any:
        return self._apply("not_equal", self, other)

    __lt__ = lambda a, b: a._apply("less", a, b)
    __le__ = lambda a, b: a._apply("less_equal", a, b)
    __gt__ = lambda a, b: a._apply("greater", a, b)
    __ge__ = lambda a, b: a._apply("greater_equal", a, b)
    __floordiv__ = lambda a, b: a._apply("floor_divide", a, b)
    __rfloordiv__ = lambda a, b: a._apply("floor_divide", b, a)
    __and__ = lambda a, b: a._apply("bitwise_and", a, b)
    __rand__ = lambda a, b: a._apply("bitwise_and", b, a)
    __or__ = lambda a, b: a._apply("bitwise_or", a, b)
    __ror__ = lambda a, b: a._apply("bitwise_or", b, a)
    __xor__ = lambda a, b: a._apply("bitwise_xor", a, b)
    __rxor__ = lambda a, b: a._apply("bitwise_xor", b, a)
    __lshift__ = lambda a, b: a._apply("bitwise_left_shift", a, b)
    __rlshift__ = lambda a, b: a._apply("bitwise_left_shift", b, a)
    __rshift__ = lambda a, b: a._apply("bitwise_right_shift", a, b)
    __rrshift__ = lambda a, b: a._apply("bitwise_right_shift", b, a)
    __invert__ = lambda a: a._apply("bitwise_invert", a)
    __hash__ = None  # type: ignore[assignment]  # == compares elements, so an array is no dict key (as numpy's is not)

    # in place: a new value, bound to the name (see the module)
    __iadd__ = lambda a, b: in_place(a, a + b, "+=")
    __isub__ = lambda a, b: in_place(a, a - b, "-=")
    __imul__ = lambda a, b: in_place(a, a * b, "*=")
    __itruediv__ = lambda a, b: in_place(a, a / b, "/=")
    __ifloordiv__ = lambda a, b: in_place(a, a // b, "//=")
    __imod__ = lambda a, b: in_place(a, a % b, "%=")
    __ipow__ = lambda a, b: in_place(a, a**b, "**=")
    __imatmul__ = lambda a, b: in_place(a, a @ b, "@=")
    __iand__ = lambda a, b: in_place(a, a & b, "&=")
    __ior__ = lambda a, b: in_place(a, a | b, "|=")
    __ixor__ = lambda a, b: in_place(a, a ^ b, "^=")
    __ilshift__ = lambda a, b: in_place(a, a << b, "<<=")
    __irshift__ = lambda a, b: in_place(a, a >> b, ">>=")

    # Python numbers, from a zero-dimensional array
    __bool__ = lambda a: to_python(bool, a)
    __int__ = lambda a: to_python(int, a)
    __float__ = lambda a: to_python(float, a)
    __complex__ = lambda a: to_python(complex, a)
    __index__ = lambda a: to_python(operator.index, a)

    # the first axis, as numpy, torch and JAX walk it (the standard leaves both out)
    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a zero-dimensional array")
        return self.shape[0]

    def __iter__(self) -> Any:
        if not self.shape:
            raise TypeError("iteration over a zero-dimensional array")
        return (self[i] for i in range(self.shape[0]))

    # the other attributes and methods of the standard's array object
    size = property(lambda self: math.prod(self.shape))
    T = property(lambda a: a._apply("transpose", a))
    mT = property(lambda a: a._apply("transpose", a, axes=matrix_axes(a.ndim)))
    device = "cpu"  # numpy's arrays, and so the tape's, live in the host's memory

    def to_device(self, device: Any, /, *, stream: Any = None) -> Any:
        if device != self.device:
            raise NotInTape(f"the tape does not support to_device({device!r}): it runs on the cpu")
        return self

    # the tape's array API namespace, ``reference.xp``: it sets this when it is imported
    # (with the package), since it is built over this module and so cannot be imported here
    namespace: Any = None

    def __array_namespace__(self, /, *, api_version: str | None = None) -> Any:
        """The tape's array API namespace, ``reference.xp``."""
        xp = self.namespace
        if api_version is not None and api_version > xp.__array_api_version__:
            raise ValueError(
                f"the tape's namespace follows the array API standard of "
                f"{xp.__array_api_version__}, not {api_version!r}"
            )
        return xp

    __setitem__ = refused(
        "x[i] = v (__setitem__)",
        "its arrays are never changed in place (a VJP may read them later); "
        "make the new array instead, e.g. with xp.where",
    )
    __dlpack__ = refused("__dlpack__", "its arrays carry a derivative that DLPack cannot")
    __dlpack_device__ = refused("__dlpack_device__", "it exports no array by DLPack")
    __buffer__ = refused("the buffer protocol (__buffer__)", "use xp's functions on its arrays")


__all__ = ["ArrayObject", "NotInTape", "in_place", "index_of", "matrix_axes", "plain", "refused"]
