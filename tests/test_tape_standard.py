"""The tape computes what the array API standard says, or refuses by name.

First in a user's terms: cases written the standard's way (a one-hot by ``==``, a mask by
``>``, ``&`` and ``~``) give the tape the loss and gradients torch, jax and finite
differences give. Then, generated from the standard's own list — array-api-strict's array
object and namespace — every operator and function on the tape's Tensors and on forward
mode's Duals against array-api-strict and numpy: the same values (and gradients, and
tangents), or an error that names what the tape does not support."""

from __future__ import annotations

import builtins
import inspect
import operator
import re

import numpy as np
import pytest
from array_api_compat import array_namespace

import reference.xp as tape_xp
from harness import compare_backends
from harness.cases import case
from reference.array_object import NotInTape
from reference.engine import Tensor
from reference.forward import Dual, plain

BACKENDS = ["reference", "torch", "jax", "numeric"]


def labelled(rng, n=6, d=4, c=3):
    return (
        {"W": rng.standard_normal((d, c))},
        {"x": rng.standard_normal((n, d)), "labels": rng.integers(0, c, n)},
    )


@case(setup=labelled)
def onehot_cross_entropy(xp, params, inputs):
    """L = −(1/N) Σ_n Σ_c [y_n = c] · log softmax(x_n W)_c, the one-hot made by ``==``."""
    logits = inputs["x"] @ params["W"]
    m = xp.max(logits, axis=-1, keepdims=True)
    log_p = logits - m - xp.log(xp.sum(xp.exp(logits - m), axis=-1, keepdims=True))
    onehot = xp.astype(inputs["labels"][:, None] == xp.arange(logits.shape[-1]), log_p.dtype)
    return -xp.sum(onehot * log_p) / logits.shape[0]


@case(setup=labelled)
def picked_cross_entropy(xp, params, inputs):
    """The same loss, the log-probabilities picked by ``where`` on the ``==`` mask."""
    logits = inputs["x"] @ params["W"]
    m = xp.max(logits, axis=-1, keepdims=True)
    log_p = logits - m - xp.log(xp.sum(xp.exp(logits - m), axis=-1, keepdims=True))
    onehot = inputs["labels"][:, None] == xp.arange(logits.shape[-1])
    return -xp.sum(xp.where(onehot, log_p, xp.zeros_like(log_p))) / logits.shape[0]


@case(setup=labelled)
def masked_leaky_square(xp, params, inputs):
    """L = Σ where((z > 0) & ~(y = 0), z, z/10)², z = x W: masks by ``>``, ``==``, ``&``
    and ``~``, the labels indexing W's columns by an array."""
    z = inputs["x"] @ params["W"]
    keep = (z > 0) & ~(inputs["labels"] == 0)[:, None]
    picked = params["W"][:, inputs["labels"]]
    return xp.sum(xp.where(keep, z, z / 10) ** 2) + xp.sum(picked * picked)


@pytest.mark.parametrize(
    "user_case", [onehot_cross_entropy, picked_cross_entropy, masked_leaky_square]
)
def test_a_case_written_with_the_standards_operators_agrees_on_every_backend(user_case):
    """The tape's loss is torch's (to rounding: the same float64 operations in another
    order, a few ε of an O(1) loss), and every tensor agrees on every backend, in every
    mode (forward mode and H·v run these operators on Duals)."""
    comparison = compare_backends([user_case], BACKENDS, modes=("rev", "fwd", "hvp"))
    runs = comparison.runs
    assert (runs["status"] == "ok").all(), runs[["backend", "mode", "status", "error"]].to_string()
    losses = {
        r.backend: r.loss for r in comparison.results if r.mode == "rev" and r.loss is not None
    }
    assert losses["reference"] == pytest.approx(losses["torch"], rel=1e-13, abs=0)
    assert comparison.all_agree, comparison.agreement.to_string()


# --- generated from the standard's list: the array object ----------------------------------

strict = pytest.importorskip("array_api_strict")
npx = pytest.importorskip("array_api_compat.numpy")

StrictArray = type(strict.asarray(0))
DUNDERS = sorted(n for n in vars(StrictArray) if n.startswith("__") and n.endswith("__"))

# Small arrays of each kind of dtype the standard has (complex aside: the tape has none):
# x (2, 3) and y (3,) broadcast, z (3, 3) is square (@, @=), s a Python number. The floats'
# ratios x/y, y/x, x/s, s/x stay ≥ 0.05 from a whole number, so that floor division and the
# remainder are tested away from their jumps.
SIGNED = {
    "float64": {
        "x": np.array([[0.37, -1.21, 1.73], [2.29, -0.43, 0.91]]),
        "y": np.array([0.71, -1.33, 1.13]),
        "z": np.array([[0.52, -0.81, 1.37], [1.19, 0.64, -0.29], [-1.46, 0.83, 0.47]]),
        "s": 1.5,
    },
    "int64": {
        "x": np.array([[3, -7, 5], [0, 2, -1]]),
        "y": np.array([2, 3, 1]),
        "z": np.array([[1, -2, 0], [3, 1, -1], [0, 2, 1]]),
        "s": 2,
    },
    "bool": {
        "x": np.array([[True, False, True], [False, False, True]]),
        "y": np.array([True, False, False]),
        "z": np.array([[True, False, True], [False, True, True], [True, True, False]]),
        "s": True,
    },
}
PAIRS = [("x", "y"), ("y", "x"), ("z", "z"), ("x", "s")]  # the left one's method is called

ARITHMETIC = [
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "matmul",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
]
BINARY = [f"__{way}{op}__" for op in ARITHMETIC for way in ("", "r", "i")] + [
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
]  # each way: x.__add__(y) = x + y, x.__radd__(y) = y + x, x.__iadd__(y): x += y
UNARY = ["__neg__", "__pos__", "__abs__", "__invert__"]
CONVERSIONS = ["__bool__", "__int__", "__float__", "__complex__", "__index__"]
REFUSED = ["__setitem__", "__dlpack__", "__dlpack_device__", "__buffer__"]
CHECKED_APART = ["__getitem__", "__array_namespace__", "__iter__", "__array__", "__hash__"]
# Python's machinery for any object, not an operation on arrays
PLUMBING = [
    "__annotations__",
    "__doc__",
    "__module__",
    "__new__",
    "__reduce__",
    "__repr__",
    "__slots__",
    "__str__",
    "__weakref__",
]
ATTRIBUTES = sorted(n for n in vars(StrictArray) if not n.startswith("_"))

# Central differences with step h = 1e-6 on the positive samples (every function here is
# smooth and real there): truncation h²·|f'''|/6 ≤ 1e-10 (|f'''| < 10³ on these points),
# rounding ε·|L|/h ≈ 2e-9 for |L| ≈ 10. 1e-6 relative leaves a hundredfold margin; a wrong
# or missing derivative is off by O(1).
FD_STEP, FD_RTOL = 1e-6, 1e-6
# Where the answer is float32 (a cast, a sum in float32: linear, no truncation error), its
# rounding ε₃₂·|L|/h ≈ 1.2e-7·10/1e-2 ≈ 1e-4 needs a longer step and a looser tolerance.
FD_STEP_32, FD_RTOL_32 = 1e-2, 1e-3
# The tape's forward mode on Tensors (H·v) runs the same float64 operations as on numpy
# arrays, some in another order: a few ε apart.
NESTED_RTOL = 1e-13


def positive_sample(sample: dict) -> dict:
    """|x| for each array: where every function here is smooth and real (the derivatives
    are checked there; the signs are the property tests' of tests/test_reference.py)."""
    return {k: np.abs(v) if isinstance(v, np.ndarray) else v for k, v in sample.items()}


def to_numpy(x):
    """A result as a numpy array (or a Python object as it is): strict's, numpy's, the tape's."""
    if isinstance(x, (Tensor, Dual)):
        return np.asarray(plain(x))
    if isinstance(x, StrictArray):
        return np.asarray(x)
    return x


def assert_same(got, expected, what: str) -> None:
    """The same dtype, shape and values, NaN for NaN and the sign of zero included."""
    got, expected = to_numpy(got), to_numpy(expected)
    if not isinstance(expected, np.ndarray) and not isinstance(expected, np.generic):
        assert type(got) is type(expected) and got == expected, f"{what}: {got!r} ≠ {expected!r}"
        return
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype}, expected {expected.dtype}"
    np.testing.assert_array_equal(got, expected, err_msg=what, strict=True)
    if got.dtype.kind == "f":
        assert np.array_equal(np.signbit(got), np.signbit(expected)), f"{what}: sign of zero"


def library(kind: str, sample: dict, names: tuple[str, ...], u: dict | None = None) -> list:
    """The named samples as one library's values; a name used twice is one object (z @ z).
    "tape": Tensors (floats require a gradient); "dual": forward mode's Duals of numpy
    arrays; "nested": Duals of Tensors, as H·v makes them."""
    made = {}
    for name in dict.fromkeys(names):
        v = sample[name]
        if not isinstance(v, np.ndarray):
            made[name] = v
        elif kind == "strict":
            made[name] = strict.asarray(v.copy())
        elif kind == "numpy":
            made[name] = v.copy()
        elif kind == "tape":
            made[name] = Tensor(v.copy(), requires_grad=v.dtype.kind == "f")
        elif name not in u:  # data beside the Duals: a Tensor, as the harness gives inputs
            made[name] = Tensor(v.copy())
        elif kind == "dual":
            made[name] = Dual(v.copy(), u[name])
        else:
            made[name] = Dual(Tensor(v.copy(), requires_grad=True), Tensor(u[name]))
    return [made[n] for n in names]


NAMESPACES = {"strict": strict, "numpy": npx, "tape": tape_xp, "dual": tape_xp, "nested": tape_xp}


def call(kind: str, fn, sample: dict, names: tuple[str, ...], u: dict | None = None):
    """fn(xp, *arrays): the library's namespace, and the named samples as its values."""
    return fn(NAMESPACES[kind], *library(kind, sample, names, u))


def strict_answer(fn, sample, names):
    """strict's answer, or None where strict refuses: the call is outside the standard
    (a dtype it does not allow there, shapes that do not fit), nothing to compare."""
    with np.errstate(all="ignore"):
        try:
            return call("strict", fn, sample, names)
        except Exception:  # noqa: BLE001 - any refusal of strict's means "not the standard's"
            return None


def check_everywhere(fn, sample: dict, names: tuple[str, ...], what: str) -> bool:
    """fn(xp, *arrays) on strict, numpy and the tape (Tensors, Duals, Duals of Tensors):
    the same values, and for floats the tape's gradient and tangents against central
    differences. False where strict refuses the call (not compared)."""
    expected = strict_answer(fn, sample, names)
    if expected is None:
        return False
    with np.errstate(all="ignore"):
        assert_same(call("numpy", fn, sample, names), expected, f"numpy {what}")
        assert_same(call("tape", fn, sample, names), expected, f"tape {what}")
        floats = [
            n
            for n in dict.fromkeys(names)
            if isinstance(sample[n], np.ndarray) and sample[n].dtype.kind == "f"
        ]
        if floats:
            check_derivatives(fn, positive_sample(sample), names, floats, what)
    return True


def check_derivatives(fn, sample, names, floats, what) -> None:
    rng = np.random.default_rng(0)
    base = call("numpy", fn, sample, names)
    single = np.asarray(base).dtype == np.float32
    h, rtol = (FD_STEP_32, FD_RTOL_32) if single else (FD_STEP, FD_RTOL)
    w = rng.standard_normal(np.shape(base))
    u = {n: rng.standard_normal(sample[n].shape) for n in floats}

    def loss(moved: dict) -> float:
        return float(np.sum(call("numpy", fn, {**sample, **moved}, names) * w))

    # reverse mode: dL/d(input) for L = Σ w ⊙ fn(...)
    inputs = library("tape", sample, names)
    out = fn(tape_xp, *inputs)
    if isinstance(out, Tensor) and out.requires_grad:
        tape_xp.sum(out * w).backward()
    by_name = dict(zip(names, inputs))
    for n in floats:
        fd = np.zeros(sample[n].shape)
        for i in np.ndindex(fd.shape):
            step = np.zeros(sample[n].shape)
            step[i] = h
            fd[i] = (loss({n: sample[n] + step}) - loss({n: sample[n] - step})) / (2 * h)
        grad = by_name[n].grad if by_name[n].grad is not None else np.zeros(fd.shape)
        np.testing.assert_allclose(
            grad, fd, rtol=rtol, atol=rtol, err_msg=f"tape gradient for {n}, {what}"
        )

    # forward mode: the tangent along u, against (f(θ + h u) − f(θ − h u)) / 2h
    def moved(t: float) -> np.ndarray:
        at = {**sample, **{n: sample[n] + t * u[n] for n in floats}}
        return np.asarray(call("numpy", fn, at, names), dtype=np.float64)  # booleans: 0, 1

    fd_tangent = (moved(h) - moved(-h)) / (2 * h)
    dual = call("dual", fn, sample, names, u)
    tangent = dual.tangent if isinstance(dual, Dual) else np.zeros(np.shape(base))
    assert_same(dual.value if isinstance(dual, Dual) else dual, base, f"Dual value, {what}")
    np.testing.assert_allclose(
        np.asarray(plain(tangent)),
        fd_tangent,
        rtol=rtol,
        atol=rtol,
        err_msg=f"Dual tangent, {what}",
    )

    # H·v's values: Duals of Tensors give the same value and tangent
    nested = call("nested", fn, sample, names, u)
    nested_tangent = nested.tangent if isinstance(nested, Dual) else np.zeros(np.shape(base))
    assert_same(nested.value if isinstance(nested, Dual) else nested, base, f"nested, {what}")
    np.testing.assert_allclose(
        np.asarray(plain(nested_tangent)),
        np.asarray(plain(tangent)),
        rtol=NESTED_RTOL,
        atol=1e-300,
        err_msg=f"Dual of Tensor tangent, {what}",
    )


def test_every_dunder_of_the_standards_array_object_is_checked_here():
    """A method array-api-strict adds later fails here until it is checked below."""
    checked = BINARY + UNARY + CONVERSIONS + REFUSED + CHECKED_APART + PLUMBING
    assert set(DUNDERS) - set(checked) == set()
    for cls in (Tensor, Dual):
        missing = [n for n in DUNDERS + ATTRIBUTES if n not in PLUMBING and not hasattr(cls, n)]
        assert missing == [], f"{cls.__name__} lacks {missing}"


@pytest.mark.parametrize("name", BINARY)
def test_each_binary_operator_gives_the_standards_answer_and_derivatives(name):
    """a.<name>(b) for every dtype and pair of samples strict takes: the tape's value is
    strict's and numpy's, bit for bit; its gradient and tangent are the central
    differences' (in place: ``a`` is a copy, its result the new value)."""

    def fn(xp, a, b):
        return getattr(a, name)(b)

    compared = 0
    for dtype, sample in SIGNED.items():
        for pair in PAIRS:
            compared += check_everywhere(fn, sample, pair, f"{dtype} {pair[0]}.{name}({pair[1]})")
    assert compared, f"strict took no sample for {name}"


@pytest.mark.parametrize("name", UNARY)
def test_each_unary_operator_gives_the_standards_answer_and_derivatives(name):
    """As the binary ones; and the sign of a zero is kept (+x is x, -0.0 included)."""
    compared = 0
    for dtype, sample in SIGNED.items():
        compared += check_everywhere(
            lambda xp, a: getattr(a, name)(), sample, ("x",), f"{dtype} {name}"
        )
    assert compared
    zeros = {"x": np.array([-0.0, 0.0])}
    check_everywhere(lambda xp, a: getattr(a, name)(), zeros, ("x",), f"{name} of ±0")


def test_in_place_operators_keep_shape_and_dtype_or_refuse_as_the_standard_says():
    """x += y binds x to x + y; one that would change x's shape or dtype is refused, as
    strict and numpy refuse it; another name for the old x keeps the old value."""
    x, y = SIGNED["float64"]["y"], SIGNED["float64"]["x"]  # (3,) += (2, 3): a new shape
    for a, b in [(strict.asarray(x), strict.asarray(y)), (x.copy(), y), (Tensor(x), Tensor(y))]:
        with pytest.raises(ValueError):
            a += b
    n = SIGNED["int64"]["x"]  # int64 /= 2: float64
    for a in [strict.asarray(n), n.copy(), Tensor(n)]:
        with pytest.raises(TypeError):
            a /= 2
    t = Tensor(x, requires_grad=True)
    before = t
    t += 1.0
    assert_same(t, x + 1.0, "x after x += 1")
    assert_same(before, x, "another name for the old x")
    tape_xp.sum(t * t).backward()
    np.testing.assert_allclose(before.grad, 2 * (x + 1.0), rtol=1e-15)


ZERO_D = {"float64": np.array(-1.5), "int64": np.array(-3), "bool": np.array(True)}


@pytest.mark.parametrize("name", CONVERSIONS)
def test_python_numbers_come_from_a_zero_dimensional_array_only(name):
    """bool(x), int(x), float(x), complex(x) and operator.index(x) give strict's Python
    number, of strict's type; where strict refuses (an array of another shape, a dtype it
    does not convert), so does the tape, on Tensors, Duals and Duals of Tensors."""
    convert = operator.index if name == "__index__" else getattr(builtins, name.strip("_"))
    arrays = [*ZERO_D.values(), np.array([1.5]), np.ones((2, 3))]
    for a in arrays:
        try:
            expected = convert(strict.asarray(a))
        except TypeError:
            expected = None
        tape_values = [Tensor(a), Tensor(a, requires_grad=a.dtype.kind == "f")]
        if a.dtype.kind == "f":
            tape_values += [Dual(a, np.ones_like(a)), Dual(Tensor(a, requires_grad=True), a)]
        for v in tape_values:
            if expected is None:
                with pytest.raises(TypeError):
                    convert(v)
            else:
                got = convert(v)
                assert type(got) is type(expected) and got == expected, (name, a, v)


GETITEM_KEYS = [  # (key for a library, given its array maker A)
    lambda A: 1,
    lambda A: -1,
    lambda A: (1, 2),
    lambda A: (-1, slice(None)),
    lambda A: (slice(None), 0),
    lambda A: (Ellipsis, 1),
    lambda A: (None, 0, ...),
    lambda A: (slice(None, None, -1), slice(0, 2)),
    lambda A: (slice(1, None), Ellipsis),
    lambda A: Ellipsis,
    lambda A: (A(np.array([1, 0, 1])), ...),
    lambda A: (A(np.array([1, 0])), A(np.array([2, 2]))),
    lambda A: A(np.array([[True, False, True], [False, True, True]])),
    lambda A: (slice(None), A(np.array([2, 0]))),
]


@pytest.mark.parametrize("k", range(len(GETITEM_KEYS)))
def test_indexing_gives_the_standards_answer_with_the_tapes_arrays_as_indices(k):
    """x[key] with ints, slices, None, Ellipsis, integer and boolean arrays — an array in
    the key being the library's own (a Tensor on the tape, as a case's labels are)."""
    key = GETITEM_KEYS[k]
    for dtype, sample in SIGNED.items():
        fn = lambda xp, a: a[key(xp.asarray)]
        if not check_everywhere(fn, sample, ("x",), f"{dtype} x[key {k}]"):
            # outside the standard (x[1] of a matrix): numpy's answer, as numpy indexes
            assert_same(
                call("tape", fn, sample, ("x",)),
                call("numpy", fn, sample, ("x",)),
                f"tape {dtype} x[key {k}]",
            )


@pytest.mark.parametrize("name", REFUSED)
def test_what_the_tape_cannot_do_it_refuses_by_name(name):
    """Writing into an array, DLPack and the buffer protocol: NotInTape (the harness's
    "unsupported"), its message naming the method, on Tensors and Duals alike."""
    x = SIGNED["float64"]["x"]
    args = {"__setitem__": (0, 1.0), "__buffer__": (0,)}.get(name, ())
    for v in (Tensor(x), Tensor(x, requires_grad=True), Dual(x, x)):
        with pytest.raises(NotInTape, match=re.escape(name)):
            getattr(v, name)(*args)
    s = strict.asarray(x.copy())
    s[0, 0] = 2.5  # the standard has it
    assert float(s[0, 0]) == 2.5


def test_the_array_namespace_of_a_tape_value_is_the_tapes_namespace():
    x = SIGNED["float64"]["x"]
    for v in (Tensor(x), Tensor(x, requires_grad=True), Dual(x, x), Dual(Tensor(x), x)):
        assert v.__array_namespace__() is tape_xp
        assert array_namespace(v) is tape_xp
        assert v.__array_namespace__(api_version="2023.12") is tape_xp
        with pytest.raises(ValueError, match="2099.12"):
            v.__array_namespace__(api_version="2099.12")


def test_numpy_gets_a_constant_s_value_and_is_refused_one_that_needs_a_derivative():
    """``__array__`` is no part of the standard: numpy may read a Tensor that needs no
    gradient, not one that does (numpy would silently drop it), nor a Dual."""
    x = SIGNED["float64"]["x"]
    assert_same(np.asarray(Tensor(x)), x, "np.asarray of a constant")
    assert_same(tape_xp.asarray([Tensor(x[0]), Tensor(x[1])]), x, "asarray of constants")
    for v in (Tensor(x, requires_grad=True), Dual(x, x)):
        for numpy_call in (
            np.asarray,
            lambda a: np.asarray(a, dtype=float),
            lambda a: tape_xp.asarray([a, a]),
        ):
            with pytest.raises(NotInTape, match="numpy cannot take"):
                numpy_call(v)
        with pytest.raises(TypeError):  # numpy's functions: a ufunc refuses the tape's values
            np.sum(v)


def test_iteration_and_len_walk_the_first_axis_as_numpy_does_and_hashing_is_refused():
    """len() and iter() are outside the standard: the tape walks the first axis, as
    numpy, torch and JAX do (strict iterates a 1-D array alike); a zero-dimensional array
    has neither. == compares elements, so a tape value, like strict's, is no dict key."""
    x = SIGNED["float64"]["x"]
    for v in (Tensor(x, requires_grad=True), Dual(x, x)):
        assert len(v) == len(x) == 2
        rows = list(v)
        assert len(rows) == 2
        for row, expected in zip(rows, x):
            assert_same(row.value if isinstance(row, Dual) else row, expected, "a row")
        with pytest.raises(TypeError):
            hash(v)
    y = SIGNED["float64"]["y"]
    for got, expected in zip(Tensor(y), strict.asarray(y)):
        assert_same(got, expected, "an element of a 1-D array")
    for v in (Tensor(np.array(1.0)), Dual(np.array(1.0), np.array(1.0))):
        with pytest.raises(TypeError):
            len(v)
        with pytest.raises(TypeError):
            iter(v)
    with pytest.raises(TypeError):
        hash(strict.asarray(x))


@pytest.mark.parametrize("name", ATTRIBUTES)
def test_each_attribute_of_the_standards_array_object(name):
    x = SIGNED["float64"]["x"]
    s = strict.asarray(x)
    for v in (Tensor(x, requires_grad=True), Dual(x, x), Dual(Tensor(x, requires_grad=True), x)):
        got, expected = getattr(v, name), getattr(s, name)
        if name == "device":
            assert got == "cpu"
        elif name == "to_device":
            assert got("cpu") is v
            with pytest.raises(NotInTape, match="to_device"):
                got("cuda")
        elif name == "dtype":
            assert got == np.dtype(str(expected).rsplit(".", 1)[-1])
        elif name in ("shape", "ndim", "size"):
            assert got == expected and type(got) in (int, tuple)
        else:  # T, mT: arrays
            assert_same(got.value if isinstance(got, Dual) else got, expected, name)


# --- generated from the standard's list: the namespace -------------------------------------

STRICT_OWN = {
    "ArrayAPIStrictFlags",
    "Device",
    "get_array_api_strict_flags",
    "set_array_api_strict_flags",
    "reset_array_api_strict_flags",
    "__version__",
}
NAMES = sorted(set(strict.__all__) - STRICT_OWN)
TAPE_HAS = [n for n in NAMES if hasattr(tape_xp, n)]
TAPE_LACKS = [n for n in NAMES if not hasattr(tape_xp, n)]
DTYPES = ["bool", "float32", "float64", "int32", "int64"]
CONSTANTS = ["e", "pi", "inf", "nan", "newaxis"]


def elementwise_arity(name: str) -> int | None:
    """1 or 2 for a function of the standard that takes only arrays, elementwise (its
    parameters positional x, or x1 and x2); None for any other."""
    parameters = inspect.signature(getattr(strict, name)).parameters.values()
    if parameters and all(
        p.kind is p.POSITIONAL_ONLY and p.name in ("x", "x1", "x2") for p in parameters
    ):
        return len(parameters)
    return None


F64, I64, BOOL = SIGNED["float64"], SIGNED["int64"], SIGNED["bool"]
ROW = F64["y"][None, :]  # (1, 3)
# The tape's functions that are not elementwise, each on samples (fn(xp, *arrays), arrays)
SAMPLES = {
    "where": [(lambda xp, c, a, b: xp.where(c, a, b), {"c": BOOL["x"], "a": F64["x"], "b": F64["y"]}),
              (lambda xp, c, a, b: xp.where(c, a, b), {"c": BOOL["y"], "a": I64["x"], "b": I64["y"]})],
    "clip": [(lambda xp, a: xp.clip(a, min=-0.5, max=1.5), {"a": F64["x"]}),
             (lambda xp, a: xp.clip(a, max=0.5), {"a": F64["x"]}),
             (lambda xp, a: xp.clip(a, min=-2, max=4), {"a": I64["x"]})],
    "sum": [(lambda xp, a: xp.sum(a), {"a": F64["x"]}),
            (lambda xp, a: xp.sum(a, axis=1, keepdims=True), {"a": F64["x"]}),
            (lambda xp, a: xp.sum(a, axis=(0, 1)), {"a": I64["x"]}),
            (lambda xp, a: xp.sum(a, axis=0, dtype=xp.float32), {"a": F64["x"]})],
    "mean": [(lambda xp, a: xp.mean(a), {"a": F64["x"]}),
             (lambda xp, a: xp.mean(a, axis=0, keepdims=True), {"a": F64["x"]})],
    "max": [(lambda xp, a: xp.max(a), {"a": F64["x"]}), (lambda xp, a: xp.max(a, axis=1), {"a": I64["x"]})],
    "min": [(lambda xp, a: xp.min(a, axis=0), {"a": F64["x"]}), (lambda xp, a: xp.min(a), {"a": I64["x"]})],
    "matmul": [(lambda xp, a, b: xp.matmul(a, b), {"a": F64["x"], "b": F64["y"]}),
               (lambda xp, a, b: xp.matmul(a, b), {"a": F64["z"], "b": F64["z"].T.copy()}),
               (lambda xp, a, b: xp.matmul(a, b), {"a": I64["x"], "b": I64["z"]})],
    "matrix_transpose": [(lambda xp, a: xp.matrix_transpose(a), {"a": F64["x"]})],
    "vecdot": [(lambda xp, a, b: xp.vecdot(a, b), {"a": F64["x"], "b": F64["y"]})],
    "reshape": [(lambda xp, a: xp.reshape(a, (3, 2)), {"a": F64["x"]}),
                (lambda xp, a: xp.reshape(a, (-1,)), {"a": I64["x"]})],
    "permute_dims": [(lambda xp, a: xp.permute_dims(a, (1, 0)), {"a": F64["x"]})],
    "concat": [(lambda xp, a, b: xp.concat([a, b], axis=0), {"a": F64["x"], "b": F64["z"]}),
               (lambda xp, a, b: xp.concat([a, b], axis=None), {"a": F64["x"], "b": F64["y"]})],
    "stack": [(lambda xp, a, b: xp.stack([a, b], axis=1), {"a": F64["x"], "b": F64["x"] * 2})],
    "expand_dims": [(lambda xp, a: xp.expand_dims(a, axis=1), {"a": F64["x"]}),
                    (lambda xp, a: xp.expand_dims(a, axis=-1), {"a": F64["y"]})],
    "squeeze": [(lambda xp, a: xp.squeeze(a, axis=0), {"a": ROW})],
    "broadcast_to": [(lambda xp, a: xp.broadcast_to(a, (2, 3)), {"a": F64["y"]})],
    "astype": [(lambda xp, a: xp.astype(a, xp.float32), {"a": F64["x"]}),
               (lambda xp, a: xp.astype(a, xp.int64), {"a": F64["x"]}),
               (lambda xp, a: xp.astype(a, xp.float64), {"a": BOOL["x"]})],
    "asarray": [(lambda xp: xp.asarray([[1.0, 2.0], [3.0, 4.0]]), {}),
                (lambda xp: xp.asarray(3), {}), (lambda xp: xp.asarray(True), {}),
                (lambda xp, a: xp.asarray(a), {"a": F64["x"]}),
                (lambda xp, a: xp.asarray(a, dtype=xp.float32), {"a": F64["x"]})],
    "zeros": [(lambda xp: xp.zeros((2, 3)), {}), (lambda xp: xp.zeros(3, dtype=xp.int64), {})],
    "ones": [(lambda xp: xp.ones((2, 3)), {}), (lambda xp: xp.ones(3, dtype=xp.bool), {})],
    "empty": [(lambda xp: xp.zeros_like(xp.empty((2, 3), dtype=xp.int32)), {})],  # values: any
    "full": [(lambda xp: xp.full((2, 2), 1.5), {}), (lambda xp: xp.full(3, 7), {}),
             (lambda xp: xp.full((2,), True), {})],
    "zeros_like": [(lambda xp, a: xp.zeros_like(a), {"a": F64["x"]}),
                   (lambda xp, a: xp.zeros_like(a, dtype=xp.int64), {"a": F64["x"]})],
    "ones_like": [(lambda xp, a: xp.ones_like(a), {"a": I64["x"]})],
    "empty_like": [(lambda xp, a: xp.zeros_like(xp.empty_like(a)), {"a": F64["x"]})],
    "full_like": [(lambda xp, a: xp.full_like(a, 2.5), {"a": F64["x"]})],
    "arange": [(lambda xp: xp.arange(5), {}), (lambda xp: xp.arange(1, 7, 2), {}),
               (lambda xp: xp.arange(0.0, 1.0, 0.25), {})],
    "linspace": [(lambda xp: xp.linspace(0.0, 1.0, 5), {}),
                 (lambda xp: xp.linspace(0.0, 1.0, 4, endpoint=False), {})],
    "eye": [(lambda xp: xp.eye(3), {}), (lambda xp: xp.eye(2, 4, k=1, dtype=xp.int64), {})],
}  # fmt: skip
APART = DTYPES + CONSTANTS + ["finfo", "iinfo", "__array_api_version__"]  # checked apart below


def test_every_function_of_the_tape_has_samples_here():
    """A function added to reference/xp.py fails here until it has samples."""
    unsampled = [
        n for n in TAPE_HAS if n not in SAMPLES and n not in APART and elementwise_arity(n) is None
    ]
    assert unsampled == []
    assert TAPE_LACKS, "the tape covers part of the standard"


@pytest.mark.parametrize("name", TAPE_HAS)
def test_each_function_the_tape_has_gives_the_standards_answer_and_derivatives(name):
    """The function on the samples — for an elementwise one, every dtype and pair of
    samples strict takes — on strict, numpy and the tape: the same values, bit for bit;
    the tape's gradient and tangents those of central differences."""
    if name in APART:
        return
    arity = elementwise_arity(name)
    if arity is None:
        compared = sum(
            check_everywhere(fn, sample, tuple(sample), f"{name} sample {i}")
            for i, (fn, sample) in enumerate(SAMPLES[name])
        )
        assert compared == len(SAMPLES[name]), f"strict refuses a sample of {name}"
        return
    compared = 0
    for dtype, sample in SIGNED.items():
        for pair in PAIRS if arity == 2 else [("x",), ("z",)]:
            compared += check_everywhere(
                lambda xp, *a: getattr(xp, name)(*a), sample, pair, f"{name}{pair} in {dtype}"
            )
    assert compared, f"strict took no sample for {name}"


@pytest.mark.parametrize("name", TAPE_LACKS)
def test_each_function_the_tape_lacks_is_refused_by_name(name):
    with pytest.raises(NotInTape, match=re.escape(repr(name))):
        getattr(tape_xp, name)


def test_dtypes_constants_and_machine_limits_are_the_standards():
    for name in DTYPES:
        expected = np.asarray(strict.zeros(1, dtype=getattr(strict, name))).dtype
        assert np.dtype(getattr(tape_xp, name)) == expected, name
        assert tape_xp.zeros(1, dtype=getattr(tape_xp, name)).dtype == expected, name
    for name in CONSTANTS:
        got, expected = getattr(tape_xp, name), getattr(strict, name)
        assert got is expected is None or got == expected or (np.isnan(got) and np.isnan(expected))
    x = SIGNED["float64"]["x"]
    for of in (
        tape_xp.float32,
        tape_xp.float64,
        Tensor(x),
        Tensor(x, requires_grad=True),
        Dual(x, x),
    ):
        theirs = strict.finfo(strict.float32 if of is tape_xp.float32 else strict.float64)
        for field in ("bits", "eps", "max", "min", "smallest_normal"):
            assert getattr(tape_xp.finfo(of), field) == getattr(theirs, field), field
    for of in (tape_xp.int32, tape_xp.int64, Tensor(SIGNED["int64"]["x"])):
        theirs = strict.iinfo(strict.int32 if of is tape_xp.int32 else strict.int64)
        for field in ("bits", "max", "min"):
            assert getattr(tape_xp.iinfo(of), field) == getattr(theirs, field), field
    assert isinstance(tape_xp.__array_api_version__, str)


def test_a_value_the_tape_cannot_differentiate_through_is_refused_not_dropped():
    """clip's bounds and a creation function's values: the tape has no derivative for
    them, so one that requires a gradient is NotInTape (its gradient would be lost)."""
    x, y = (Tensor(SIGNED["float64"][k], requires_grad=True) for k in ("x", "y"))
    one = Tensor(np.array(1.0), requires_grad=True)
    calls = [
        lambda: tape_xp.clip(x, min=y),
        lambda: tape_xp.clip(x, max=Dual(y.value, y.value)),
        lambda: tape_xp.full((2,), one),
        lambda: tape_xp.full_like(x, one),
        lambda: tape_xp.linspace(0.0, one, 3),
        lambda: tape_xp.arange(one),
    ]
    for refused_call in calls:
        with pytest.raises(NotInTape, match="clip|full|linspace|arange"):
            refused_call()
    bound = Tensor(np.array(0.5))  # a bound that needs no gradient is data
    assert_same(tape_xp.clip(x, min=bound), np.clip(x.value, 0.5, None), "clip by a constant array")
