"""The numpy tape in ``reference/``: depth, fan-out, the engine's contract checks,
unbroadcast, and every primitive's VJP checked two independent ways (against torch
autograd, and with the inner-product identity <v, J u> = <Jᵀ v, u>)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
import reference.xp as tape_xp
from reference.engine import RuleError, Tensor, topological_order, unbroadcast
from reference.forward import Dual, hvp, jvp, plain
from reference.primitives import RULES

# The tape and torch autograd both compute exact derivatives in float64; they differ only by
# rounding (summation order in matmul/sum, a formula written another way): a few ε = 2.2e-16
# times the size of the numbers. 1e-10 leaves five orders of margin; a wrong rule is off by O(1).
RTOL = 1e-10
# Where terms cancel (a sum near zero, a confidently right softmax) a result is small but its
# rounding error is not: up to n·ε ≲ 1e-14 times the size of the terms (n ≤ 64 here). So a
# comparison also allows CANCELLATION × the size of the inputs (times the cotangent's, for a VJP).
CANCELLATION = 1e-13
# A central difference with step h = 1e-5 is off by h²·f'''/6 ≈ 1e-10·(f'''/f') relative, and
# f'''/f' stays below ~100 on the domains drawn here: 1e-6 has margin, a wrong VJP is off by O(1).
FD_RTOL, FD_STEP = 1e-6, 1e-5
# A closed form written out in numpy does the same few float64 operations as the tape, in
# another order: a few ε apart on O(1) numbers; a missing or doubled path is off by O(1).
CLOSED_FORM_RTOL = 1e-14
EPS = float(np.finfo(np.float64).eps)
PROPERTY = settings(max_examples=20, deadline=None, database=None, print_blob=True)


def assert_close(got, expected, rtol: float, what: str, atol: float = 0.0) -> None:
    """|got − expected| ≤ rtol·(|expected| + max|expected|) + atol elementwise, or a message
    that says how many elements differ and where the worst one is."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    err = np.abs(got - expected)
    bad = ~(err <= rtol * (np.abs(expected) + np.max(np.abs(expected), initial=0.0)) + atol)
    if bad.any():
        i = np.unravel_index(
            int(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1))), err.shape
        )
        raise AssertionError(
            f"{what}: {int(bad.sum())}/{bad.size} elements differ; worst at {i}: "
            f"got {got[i]!r}, expected {expected[i]!r}"
        )


# --- depth and fan-out ---------------------------------------------------------------------


def test_chain_of_10000_stages_gives_the_product_of_local_derivatives():
    """s_{k+1} = c_k · tanh(s_k) for 5,000 k: 10,000 stages, far past the recursion limit,
    and ds_K/ds_0 = Π_k c_k (1 − tanh²(s_k)) elementwise."""
    rng = np.random.default_rng(0)
    x0 = np.array([0.9, -0.4, 0.1])
    scales = rng.uniform(0.99, 1.01, 5000)
    x = Tensor(x0, requires_grad=True)
    s = x
    for c in scales:
        s = reference.tanh(s) * c
    reference.sum(s).backward()

    value, product = x0.copy(), np.ones_like(x0)
    for c in scales:
        t = np.tanh(value)
        product *= c * (1 - t * t)
        value = c * t
    assert_close(s.value, value, CLOSED_FORM_RTOL, "forward value")
    # 10,000 rounded multiplications on each side: at most ~1e4·ε ≈ 2e-12 relative apart.
    assert_close(x.grad, product, 1e-9, "dL/dx through 10,000 stages")


def test_fan_out_adds_every_path():
    """x reaches L = Σ (x·tanh(x) + eˣ·x + x) along five uses; u = tanh(x) is used three
    times in v = u·u·u. Each gradient is the sum over its paths (closed forms)."""
    x0 = np.array([-1.3, 0.2, 0.7, 2.0])
    x = Tensor(x0, requires_grad=True)
    u = reference.tanh(x).retain_grad()
    loss = reference.sum(x * u + reference.exp(x) * x + x) + reference.sum(u * u * u)
    loss.backward()

    t = np.tanh(x0)
    dL_du = x0 + 3 * t**2
    dL_dx = t + dL_du * (1 - t**2) + np.exp(x0) * (1 + x0) + 1
    assert_close(u.grad, dL_du, CLOSED_FORM_RTOL, "dL/du (three uses plus x·u)")
    assert_close(x.grad, dL_dx, CLOSED_FORM_RTOL, "dL/dx (five paths)")


def test_a_scalar_used_three_times_gets_every_contribution():
    """numpy turns a sum of two 0-d arrays into a scalar; the third path must still add."""
    x = Tensor(np.array(2.0), requires_grad=True)
    (x * x + x).backward()  # d/dx (x² + x) = 2x + 1
    assert x.grad == 5.0 and isinstance(x.grad, np.ndarray)


def test_a_value_used_as_both_operands_gets_both_contributions():
    x = Tensor(np.array([1.5, -2.0]), requires_grad=True)
    reference.sum(x * x + x + x).backward()  # d/dx (x² + 2x) = 2x + 2
    assert_close(x.grad, np.array([5.0, -2.0]), 0.0, "dL/dx of x·x + x + x")  # exact


@pytest.mark.parametrize("whole_first", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_slices_of_one_value_add_up_in_place_as_torch_does(whole_first, dtype):
    """x used whole, through overlapping slices, a repeated integer index and twice
    through one element (an index that leaves a number, not a view): the engine adds each
    slice's gradient into x's sum at its index (``Scatter``), whichever path reaches x
    first. Same sums as torch to a few ulps of the dtype."""
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal((5, 3)).astype(dtype)
    weights = [rng.standard_normal(shape).astype(dtype) for shape in [(2, 3), (3, 3), (4, 3)]]
    whole = rng.standard_normal((5, 3)).astype(dtype)
    rows = np.array([0, 0, 4, 1])

    def loss(x, sum_, w):
        parts = [sum_(x[0:2] * w[0]), sum_(x[1:4] * w[1]), sum_(x[rows] * w[2]), x[4, 2] * x[4, 2]]
        whole_term = sum_(x * w[3])
        return whole_term + sum(parts) if whole_first else sum(parts) + whole_term

    x = Tensor(x0, requires_grad=True)
    loss(x, reference.sum, [Tensor(w) for w in (*weights, whole)]).backward()
    xt = torch.tensor(x0, requires_grad=True)
    loss(xt, torch.sum, [torch.tensor(w) for w in (*weights, whole)]).backward()
    assert x.grad.dtype == np.dtype(dtype)
    assert_close(x.grad, xt.grad.numpy(), 8 * np.finfo(dtype).eps, "dL/dx")


@pytest.mark.parametrize("p", [0, 1, 0.0, 1.0, 2, 3])
def test_x_to_a_constant_power_at_zero_has_torchs_derivative(p):
    """d/dx x^p at x = 0: 0 for p = 0 and 1 for p = 1, not p·0^(p−1) = 0·∞ = NaN."""
    x0 = np.array([0.0, -0.0, 1.5, -2.0])
    x = Tensor(x0, requires_grad=True)
    reference.sum(x**p).backward()
    t = torch.tensor(x0, requires_grad=True)
    torch.sum(t**p).backward()
    assert np.all(np.isfinite(x.grad))
    assert_close(x.grad, t.grad.numpy(), 0.0, f"dL/dx of x**{p!r}")  # exact: integer powers
    tangent = jvp(lambda v: reference.sum(v["x"] ** p), {"x": x0}, {"x": np.ones_like(x0)})[1]
    assert_close(tangent, np.sum(t.grad.numpy()), 0.0, f"J·1 of x**{p!r}")


def test_topological_order_lists_each_value_once_after_its_parents():
    x = Tensor(np.ones(2), requires_grad=True)
    a = reference.tanh(x)
    b = a * x
    loss = reference.sum(a + b)
    order = topological_order(loss)
    assert len(order) == len({id(n) for n in order}) == 5  # x, a, b, a + b, loss
    position = {id(n): i for i, n in enumerate(order)}
    for node in order:
        for parent in node.parents:
            assert position[id(parent)] < position[id(node)]
    assert [id(n) for n in order] == [id(n) for n in topological_order(loss)]


# --- the engine's contract checks ----------------------------------------------------------


def _unary(op):
    return lambda: reference.apply(op, Tensor(np.ones(3), requires_grad=True))


def _binary(op):
    return lambda: reference.apply(op, Tensor(np.ones(3), True), Tensor(np.ones(3), True))


BROKEN_RULES = [  # (op, broken VJP, the graph, what the RuleError must say)
    ("tanh", lambda g, ans, x: (g, g), _unary("tanh"), r"'tanh'.*2 gradients for 1 input"),
    ("exp", lambda g, ans, x: (), _unary("exp"), r"'exp'.*0 gradients for 1 input"),
    ("mul", lambda g, ans, x, y: (g,), _binary("mul"), r"'mul'.*1 gradients for 2 inputs"),
    ("tanh", lambda g, ans, x: (g[:-1],), _unary("tanh"), r"'tanh'.*shape \(2,\).*shape \(3,\)"),
    ("neg", lambda g, ans, x: (g[None],), _unary("neg"), r"'neg'.*shape \(1, 3\).*shape \(3,\)"),
    ("sub", lambda g, ans, x, y: (g, np.ones(4)), _binary("sub"), r"'sub'.*\(4,\).*input 1.*\(3,\)"),
]  # fmt: skip


@pytest.mark.parametrize(
    "op, vjp, graph, message", BROKEN_RULES, ids=[f"{b[0]}-{i}" for i, b in enumerate(BROKEN_RULES)]
)
def test_a_vjp_that_breaks_its_contract_raises_rule_error_naming_the_op(
    monkeypatch, op, vjp, graph, message
):
    monkeypatch.setitem(RULES, op, replace(RULES[op], vjp=vjp))
    out = graph()
    with pytest.raises(RuleError, match=message):
        reference.sum(out).backward()


def test_a_vjp_that_reads_a_value_its_rule_does_not_save_raises_rule_error(monkeypatch):
    """tanh saves only its answer; a VJP reading the input gets a stand-in, not zeros."""
    monkeypatch.setitem(RULES, "tanh", replace(RULES["tanh"], vjp=lambda g, ans, x: (g * x,)))
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuleError, match=r"Node\(leaf, shape=\(3,\)\).*does not keep.*saves"):
        reference.sum(reference.tanh(x)).backward()


def test_saves_takes_only_the_names_it_knows():
    with pytest.raises(ValueError, match=r"\['z'\].*ans, x, y, inputs"):
        replace(RULES["tanh"], saves="ans z")


# --- what the tape keeps -------------------------------------------------------------------


def test_the_tape_frees_the_values_no_vjp_reads_and_keeps_the_others():
    """y = tanh(x W + b): the sum x W + b and the product x W are read by no VJP (add saves
    nothing, tanh its answer), so dropping their Tensors frees them; tanh's answer is kept."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)))
    W, b = Tensor(rng.standard_normal((3, 5)), True), Tensor(rng.standard_normal(5), True)
    product = x @ W
    pre = product + b
    y = reference.tanh(pre)
    freed = [weakref.ref(product.value), weakref.ref(pre.value)]
    kept = weakref.ref(y.value)
    loss = reference.sum(y * 2.0)
    del product, pre, y
    assert [r() is None for r in freed] == [True, True]
    assert kept() is not None
    loss.backward()
    assert_close(W.grad, x.value.T @ (2 * (1 - kept() ** 2)), 1e-15, "dL/dW")


def test_an_lstm_step_keeps_seven_b_by_h_arrays_like_a_hand_written_cache():
    """Per step the tape's nodes hold i, f, o, g (the gates' answers), c, tanh(c) and h:
    7·B·H values (a hand-derived BPTT caches the same, or recomputes tanh(c)); the
    pre-activations (4·B·H), the slices and the products are freed."""
    from harness.backends.reference_tape import ReferenceNamespace
    from harness.cases import CATALOG

    class Untapped(ReferenceNamespace):
        def _watch(self, name, x, step):
            return x

    def stored_bytes(T: int) -> int:
        case = CATALOG["lstm"](T=T, H=6, D=5, B=3)
        params, inputs = case.build(0)
        P = {k: Tensor(v, requires_grad=True) for k, v in params.items()}
        X = {k: Tensor(v) for k, v in inputs.items()}
        loss = case.loss(Untapped(), P, X)
        owners = {id(v) for v in (*params.values(), *inputs.values())}
        seen, total = set(), 0
        for node in topological_order(loss):
            for value in (node.ans, *node.inputs):
                array = value.base if getattr(value, "base", None) is not None else value
                if isinstance(array, np.ndarray) and id(array) not in owners | seen:
                    seen.add(id(array))
                    total += array.nbytes
        return total

    per_step = stored_bytes(12) - stored_bytes(11)
    assert per_step == 7 * 3 * 6 * 8


# --- unbroadcast ---------------------------------------------------------------------------

BROADCASTS = [  # (x shape, y shape, dL/dx and dL/dy for L = Σ (x ∘ y) · V, by hand)
    ("bias over a batch: X + b", (4, 3), (3,), "add",
     lambda X, b, V: (V, V.sum(axis=0))),
    ("(N,1) column: A ⊙ s", (4, 3), (4, 1), "mul",
     lambda A, s, V: (V * s, (V * A).sum(axis=1, keepdims=True))),
    ("scalar: A ⊙ c", (4, 3), (), "mul",
     lambda A, c, V: (V * c, np.sum(V * A))),
    ("row (1,3) under a batch of matrices: B − r", (2, 4, 3), (1, 3), "sub",
     lambda B, r, V: (V, -V.sum(axis=(0, 1)).reshape(1, 3))),
    ("both stretched: a ÷ b", (4, 1), (1, 3), "div",
     lambda a, b, V: ((V / b).sum(axis=1, keepdims=True), (-V * a / b**2).sum(axis=0, keepdims=True))),
]  # fmt: skip


@pytest.mark.parametrize(
    "x_shape, y_shape, op, closed_form", [b[1:] for b in BROADCASTS], ids=[b[0] for b in BROADCASTS]
)
def test_broadcasting_forward_is_summing_backward(x_shape, y_shape, op, closed_form):
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal(x_shape)
    y0 = rng.uniform(0.5, 1.5, y_shape)
    x, y = Tensor(x0, requires_grad=True), Tensor(y0, requires_grad=True)
    out = reference.apply(op, x, y)
    V = rng.standard_normal(out.shape)
    reference.sum(out * V).backward()
    dL_dx, dL_dy = closed_form(x0, y0, V)
    assert_close(x.grad, dL_dx, CLOSED_FORM_RTOL, f"dL/dx, {x_shape} with {y_shape}")
    assert_close(y.grad, dL_dy, CLOSED_FORM_RTOL, f"dL/dy, {y_shape} broadcast against {x_shape}")


def test_unbroadcast_sums_added_and_stretched_axes():  # sums of integers: exact
    g = np.arange(24.0).reshape(2, 3, 4)
    assert_close(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1), 0.0, "to (3, 1)")
    assert_close(unbroadcast(g, (4,)), g.sum(axis=(0, 1)), 0.0, "to (4,)")
    assert_close(unbroadcast(g, ()), g.sum(), 0.0, "to ()")
    assert_close(unbroadcast(g, (2, 3, 4)), g, 0.0, "unchanged")


# --- every primitive, property-tested ------------------------------------------------------


@dataclass
class Example:
    """One primitive on drawn inputs, written for the tape and for torch."""

    what: str  # shapes and constants, for the failure report
    arrays: list[np.ndarray]  # the differentiable inputs
    ref: Callable[..., Tensor]
    torch: Callable[..., torch.Tensor]

    def __repr__(self) -> str:
        return f"Example({self.what}; inputs {[a.shape for a in self.arrays]})"


SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def floats(low: float, high: float, away_from_zero: float = 0.0) -> st.SearchStrategy[float]:
    """Floats in [low, high]; with ``away_from_zero``, in ±[away_from_zero, high]."""
    if not away_from_zero:
        return st.floats(low, high)
    return st.tuples(st.sampled_from([-1.0, 1.0]), st.floats(away_from_zero, high)).map(
        lambda sign_size: sign_size[0] * sign_size[1]
    )


def arrays(shape, low=-2.0, high=2.0, away_from_zero=0.0):
    return hnp.arrays(np.float64, shape, elements=floats(low, high, away_from_zero))


@st.composite
def elementwise(draw, ref, torch_fn, low=-2.0, high=2.0, away_from_zero=0.0):
    x = draw(arrays(draw(SHAPES), low, high, away_from_zero))
    return Example(f"x in [{low}, {high}]", [x], ref, torch_fn)


@st.composite
def binary(draw, fn, divisor=False):
    """fn(x, y) on two mutually broadcastable arrays, or with one side a Python float."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    x_shape, y_shape = shapes.input_shapes
    x = draw(arrays(x_shape))
    y = draw(arrays(y_shape, away_from_zero=0.5 if divisor else 0.0))
    constant = draw(st.sampled_from(["none", "left", "right"]))
    c = draw(floats(0.5, 2.0, away_from_zero=0.5))
    if constant == "left":
        return Example(f"{c} with {y_shape}", [y], lambda b: fn(c, b), lambda b: fn(c, b))
    if constant == "right" and not divisor:
        return Example(f"{x_shape} with {c}", [x], lambda a: fn(a, c), lambda a: fn(a, c))
    return Example(f"{x_shape} with {y_shape}", [x, y], fn, fn)


@st.composite
def power(draw):
    p = draw(st.sampled_from([2, 3, 1, -1, 0.5, 1.5, -2.5]))
    positive = p < 1 or p != int(p)  # fractional and negative powers need x > 0
    x = draw(arrays(draw(SHAPES), *((0.5, 2.0) if positive else (-2.0, 2.0))))
    return Example(f"x ** {p}", [x], lambda a: a**p, lambda a: a**p)


@st.composite
def array_power(draw):
    """x ** y with an array exponent: both arrays (x > 0, where x^y is real and smooth in
    both), or a number raised to an array (2 ** t: the exponent's derivative alone)."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    x_shape, y_shape = shapes.input_shapes
    y = draw(arrays(y_shape))
    if draw(st.booleans()):
        base = draw(st.sampled_from([0.5, 2.0, 3.0]))
        return Example(f"{base} ** {y_shape}", [y], lambda b: base**b, lambda b: base**b)
    x = draw(arrays(x_shape, 0.5, 2.0))
    return Example(f"{x_shape} ** {y_shape}", [x, y], lambda a, b: a**b, torch.pow)


@st.composite
def remainder(draw):
    """x mod y away from its jumps: x on the grid k/2 + 1/4, y in ±{0.6, 1.2}, so that
    x/y = 5(2k+1)/12 or /24 is never within 1/24 of a whole number; or one side a number
    on the same grids."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    x_shape, y_shape = shapes.input_shapes
    grid = st.integers(-4, 4).map(lambda k: k / 2 + 0.25)
    divisors = st.sampled_from([-1.2, -0.6, 0.6, 1.2])
    x = draw(hnp.arrays(np.float64, x_shape, elements=grid))
    y = draw(hnp.arrays(np.float64, y_shape, elements=divisors))
    constant = draw(st.sampled_from(["none", "left", "right"]))
    if constant == "left":
        c = draw(grid)
        return Example(
            f"{c} % {y_shape}",
            [y],
            lambda b: c % b,
            lambda b: torch.remainder(torch.tensor(c, dtype=b.dtype), b),
        )
    if constant == "right":
        c = draw(divisors)
        return Example(f"{x_shape} % {c}", [x], lambda a: a % c, lambda a: torch.remainder(a, c))
    return Example(f"{x_shape} % {y_shape}", [x, y], lambda a, b: a % b, torch.remainder)


MATMUL_SHAPES = {  # name -> shapes of x and y, from sizes b, m, n, k
    "vec @ vec": lambda b, m, n, k: ((n,), (n,)),
    "vec @ mat": lambda b, m, n, k: ((n,), (n, k)),
    "mat @ vec": lambda b, m, n, k: ((m, n), (n,)),
    "mat @ mat": lambda b, m, n, k: ((m, n), (n, k)),
    "batch @ mat": lambda b, m, n, k: ((b, m, n), (n, k)),
    "mat @ batch": lambda b, m, n, k: ((m, n), (b, n, k)),
    "batch @ batch": lambda b, m, n, k: ((b, m, n), (b, n, k)),
    "vec @ batch": lambda b, m, n, k: ((n,), (b, n, k)),
    "batch @ vec": lambda b, m, n, k: ((b, m, n), (n,)),
    "(1,m,n) @ (b,n,k)": lambda b, m, n, k: ((1, m, n), (b, n, k)),
}


@st.composite
def matmul(draw):
    kind = draw(st.sampled_from(sorted(MATMUL_SHAPES)))
    sizes = draw(st.tuples(*[st.integers(1, 4)] * 4))
    x_shape, y_shape = MATMUL_SHAPES[kind](*sizes)
    x, y = draw(arrays(x_shape)), draw(arrays(y_shape))
    return Example(f"{kind}: {x_shape} @ {y_shape}", [x, y], lambda a, b: a @ b, torch.matmul)


@st.composite
def axes(draw, ndim: int):
    """None, one axis or a tuple of distinct axes (negative ones included)."""
    choices = [st.none()]
    if ndim:
        choices += [st.integers(-ndim, ndim - 1), hnp.valid_tuple_axes(ndim, min_size=1)]
    return draw(st.one_of(choices))


@st.composite
def reduction(draw, ref, torch_fn, low=-2.0, high=2.0):
    shape = draw(SHAPES)
    axis, keepdims = draw(axes(len(shape))), draw(st.booleans())
    x = draw(arrays(shape, low, high))
    dims = tuple(range(len(shape))) if axis is None else axis
    return Example(
        f"axis={axis}, keepdims={keepdims}",
        [x],
        lambda a: ref(a, axis=axis, keepdims=keepdims),
        lambda a: torch_fn(a, dim=dims, keepdim=keepdims),
    )


@st.composite
def reshape(draw):
    shape = draw(SHAPES)
    size = int(np.prod(shape))
    target = draw(
        st.one_of(
            st.permutations(shape).map(tuple),
            st.sampled_from([(size,), (1, size), (-1,), (*shape, 1), (size, -1)]),
        )
    )
    x = draw(arrays(shape))
    return Example(
        f"to {target}", [x], lambda a: reference.reshape(a, target), lambda a: a.reshape(target)
    )


@st.composite
def transpose(draw):
    shape = draw(SHAPES)
    ndim = len(shape)
    permutation = draw(st.permutations(range(ndim)))
    negative = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    axes_ = draw(
        st.sampled_from(
            [None, tuple(a - ndim if neg else a for a, neg in zip(permutation, negative))]
        )
    )
    dims = tuple(reversed(range(ndim))) if axes_ is None else axes_
    x = draw(arrays(shape))
    return Example(
        f"axes={axes_}", [x], lambda a: reference.transpose(a, axes_), lambda a: a.permute(dims)
    )


@st.composite
def getitem(draw):
    """Basic indices (ints, slices with any step, Ellipsis, newaxis), integer-array indices
    (repeats likely), a repeated list on axis 0 beside a slice, and boolean masks. Torch
    gathers the same elements by their flat positions (it has no negative-step slices)."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    rows = st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6)
    index = draw(
        st.one_of(
            hnp.basic_indices(shape, allow_newaxis=True),
            hnp.integer_array_indices(shape),
            rows.map(lambda r: np.array(r)),
            st.tuples(rows, st.slices(shape[1] if len(shape) > 1 else 1)).map(
                lambda t: (np.array(t[0]), t[1]) if len(shape) > 1 else np.array(t[0])
            ),
            hnp.arrays(np.bool_, shape),
        )
    )
    x = draw(arrays(shape))
    positions = torch.as_tensor(np.array(np.arange(x.size).reshape(shape)[index]))
    return Example(f"x[{index!r}]", [x], lambda a: a[index], lambda a: a.reshape(-1)[positions])


@st.composite
def concatenate(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4))
    pieces = []
    for size in sizes:
        piece_shape = list(shape)
        piece_shape[axis] = size
        pieces.append(draw(arrays(tuple(piece_shape))))
    return Example(
        f"axis={axis}",
        pieces,
        lambda *xs: reference.concatenate(list(xs), axis=axis),
        lambda *xs: torch.cat(xs, dim=axis),
    )


@st.composite
def stack(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    pieces = [draw(arrays(shape)) for _ in range(draw(st.integers(1, 4)))]
    return Example(
        f"axis={axis}",
        pieces,
        lambda *xs: reference.stack(list(xs), axis=axis),
        lambda *xs: torch.stack(xs, dim=axis),
    )


@st.composite
def softmax_cross_entropy(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    logits = draw(arrays((n, c), -10.0, 10.0))
    return Example(
        f"labels {labels.tolist()}",
        [logits],
        lambda z: reference.softmax_cross_entropy(z, labels),
        lambda z: torch.nn.functional.cross_entropy(z, torch.as_tensor(labels)),
    )


@st.composite
def apart(draw, fn, torch_fn):
    """fn(x, y) on broadcastable arrays whose elements are never equal — x on the grid
    k/2 + 1/4, y on k/2 — so maximum and minimum meet no tie, and the identity check's
    finite differences no kink (ties have a test of their own)."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    x_shape, y_shape = shapes.input_shapes
    grid = st.integers(-4, 4)
    x = draw(hnp.arrays(np.float64, x_shape, elements=grid.map(lambda k: k / 2 + 0.25)))
    y = draw(hnp.arrays(np.float64, y_shape, elements=grid.map(lambda k: k / 2)))
    return Example(f"{x_shape} with {y_shape}", [x, y], fn, torch_fn)


@st.composite
def distinct(draw, ref, torch_fn):
    """A reduction over elements that are all different (max, min: no tie to share)."""
    shape = draw(SHAPES)
    axis, keepdims = draw(axes(len(shape))), draw(st.booleans())
    order = draw(st.permutations(range(int(np.prod(shape)))))
    x = np.array(order, dtype=np.float64).reshape(shape) * 0.37 - 1.0
    dims = tuple(range(len(shape))) if axis is None else axis
    return Example(
        f"axis={axis}, keepdims={keepdims}",
        [x],
        lambda a: ref(a, axis=axis, keepdims=keepdims),
        lambda a: torch_fn(a, dim=dims, keepdim=keepdims),
    )


@st.composite
def where(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=4))
    c_shape, x_shape, y_shape = shapes.input_shapes
    condition = draw(hnp.arrays(np.bool_, c_shape))
    x, y = draw(arrays(x_shape)), draw(arrays(y_shape))
    return Example(
        f"where {c_shape}, {x_shape}, {y_shape}",
        [x, y],
        lambda a, b: tape_xp.where(condition, a, b),
        lambda a, b: torch.where(torch.as_tensor(condition), a, b),
    )


@st.composite
def clip(draw):
    low, high = draw(st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None)]))
    x = draw(arrays(draw(SHAPES)))
    for bound in (low, high):  # no element at a bound, where the derivative jumps
        if bound is not None:
            x = np.where(np.abs(x - bound) < 0.05, x + 0.1, x)
    return Example(
        f"clip({low}, {high})",
        [x],
        lambda a: tape_xp.clip(a, min=low, max=high),
        lambda a: torch.clamp(a, low, high),
    )


@st.composite
def expand_dims(draw):
    shape = draw(SHAPES)
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    x = draw(arrays(shape))
    return Example(
        f"axis={axis}",
        [x],
        lambda a: tape_xp.expand_dims(a, axis=axis),
        lambda a: torch.unsqueeze(a, axis),
    )


@st.composite
def squeeze(draw):
    shape = list(draw(SHAPES))
    axis = draw(st.integers(0, len(shape)))
    shape.insert(axis, 1)
    x = draw(arrays(tuple(shape)))
    return Example(
        f"axis={axis} of {tuple(shape)}",
        [x],
        lambda a: tape_xp.squeeze(a, axis=axis),
        lambda a: torch.squeeze(a, axis),
    )


@st.composite
def broadcast_to(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4))
    target = np.broadcast_shapes(*shapes.input_shapes)
    x = draw(arrays(shapes.input_shapes[0]))
    return Example(
        f"to {target}",
        [x],
        lambda a: tape_xp.broadcast_to(a, target),
        lambda a: torch.broadcast_to(a, target),
    )


PRIMITIVES: dict[str, st.SearchStrategy[Example]] = {  # one line per primitive in RULES
    "add": binary(lambda a, b: a + b),
    "sub": binary(lambda a, b: a - b),
    "mul": binary(lambda a, b: a * b),
    "div": binary(lambda a, b: a / b, divisor=True),
    "neg": elementwise(lambda a: -a, lambda a: -a),
    "pow": power(),
    "power": array_power(),
    "remainder": remainder(),
    "matmul": matmul(),
    "exp": elementwise(reference.exp, torch.exp, -3.0, 3.0),
    "log": elementwise(reference.log, torch.log, 0.2, 3.0),
    "tanh": elementwise(reference.tanh, torch.tanh, -3.0, 3.0),
    "sigmoid": elementwise(
        reference.sigmoid, torch.sigmoid, -30.0, 30.0
    ),  # both tails of the stable form
    "relu": elementwise(reference.relu, torch.relu, -3.0, 3.0, away_from_zero=0.1),  # no kink at 0
    "sum": reduction(reference.sum, torch.sum),
    "mean": reduction(reference.mean, torch.mean),
    "reshape": reshape(),
    "transpose": transpose(),
    "getitem": getitem(),
    "concatenate": concatenate(),
    "stack": stack(),
    "logsumexp": reduction(
        reference.logsumexp, torch.logsumexp, -50.0, 50.0
    ),  # needs the max shift
    "softmax_cross_entropy": softmax_cross_entropy(),
    "abs": elementwise(tape_xp.abs, torch.abs, -3.0, 3.0, away_from_zero=0.1),  # no kink at 0
    "sqrt": elementwise(tape_xp.sqrt, torch.sqrt, 0.2, 3.0),
    "sin": elementwise(tape_xp.sin, torch.sin, -3.0, 3.0),
    "cos": elementwise(tape_xp.cos, torch.cos, -3.0, 3.0),
    "log1p": elementwise(tape_xp.log1p, torch.log1p, -0.5, 3.0),
    "expm1": elementwise(tape_xp.expm1, torch.expm1, -3.0, 3.0),
    "maximum": apart(tape_xp.maximum, torch.maximum),
    "minimum": apart(tape_xp.minimum, torch.minimum),
    "where": where(),
    "clip": clip(),
    "max": distinct(tape_xp.max, torch.amax),
    "min": distinct(tape_xp.min, torch.amin),
    "expand_dims": expand_dims(),
    "squeeze": squeeze(),
    "broadcast_to": broadcast_to(),
    "astype": elementwise(lambda a: tape_xp.astype(a, np.float64), lambda a: a.to(torch.float64)),
}


def test_every_primitive_has_a_property_test():
    assert set(RULES) - set(PRIMITIVES) == set(), "add a strategy for each new primitive"


def backprop(example: Example, v: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The tape's forward value and its VJP of v: the gradients of L = Σ out ⊙ v."""
    inputs = [Tensor(a, requires_grad=True) for a in example.arrays]
    out = example.ref(*inputs)
    reference.sum(out * v).backward()
    return np.asarray(out.value), [
        np.zeros_like(a) if t.grad is None else t.grad for a, t in zip(example.arrays, inputs)
    ]


def forward(example: Example, arrays_: list[np.ndarray]) -> np.ndarray:
    return np.asarray(example.ref(*[Tensor(a) for a in arrays_]).value)


@pytest.mark.parametrize("op", list(PRIMITIVES))
@PROPERTY
@given(data=st.data())
def test_vjp_agrees_with_torch_autograd(op, data):
    example = data.draw(PRIMITIVES[op], label="example")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    v = rng.standard_normal(np.shape(forward(example, example.arrays)))
    out, grads = backprop(example, v)

    inputs = [torch.tensor(a, requires_grad=True) for a in example.arrays]
    torch_out = example.torch(*inputs)
    torch_grads = torch.autograd.grad((torch_out * torch.as_tensor(v)).sum(), inputs)
    size = max(1.0, *(np.max(np.abs(a), initial=0.0) for a in example.arrays))
    atol = CANCELLATION * size
    assert_close(out, torch_out.detach().numpy(), RTOL, f"{op} forward, {example.what}", atol)
    atol *= max(1.0, np.max(np.abs(v), initial=0.0))
    for i, (g, tg) in enumerate(zip(grads, torch_grads)):
        assert_close(g, tg.numpy(), RTOL, f"{op} VJP for input {i}, {example.what}", atol)


@pytest.mark.parametrize("op", list(PRIMITIVES))
@PROPERTY
@given(data=st.data())
def test_vjp_inner_product_identity(op, data):
    """<v, J u> = <Jᵀ v, u> along one random direction u, J u by a central difference of
    the forward pass (as HIPS autograd's test_util checks a VJP)."""
    example = data.draw(PRIMITIVES[op], label="example")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    v = rng.standard_normal(np.shape(forward(example, example.arrays)))
    _, grads = backprop(example, v)
    directions = [rng.standard_normal(a.shape) for a in example.arrays]

    def moved(t: float) -> np.ndarray:
        return forward(example, [a + t * u for a, u in zip(example.arrays, directions)])

    f_plus, f_minus = moved(FD_STEP), moved(-FD_STEP)
    J_u = (f_plus - f_minus) / (2 * FD_STEP)
    v_J_u = float(np.sum(v * J_u))
    # The stencil's truncation error grows 4× from h to 2h: their difference estimates it
    # (the one term that is not relative to f', e.g. h²u³ for x³ at x = 0).
    truncation = abs(
        v_J_u - float(np.sum(v * (moved(2 * FD_STEP) - moved(-2 * FD_STEP)))) / (4 * FD_STEP)
    )
    JT_v_u = float(sum(np.sum(g * u) for g, u in zip(grads, directions)))
    scale = np.linalg.norm(v) * np.linalg.norm(J_u) + sum(
        np.linalg.norm(g) * np.linalg.norm(u) for g, u in zip(grads, directions)
    )
    rounding = np.sum(np.abs(v) * 4 * EPS * (np.abs(f_plus) + np.abs(f_minus))) / (2 * FD_STEP)
    assert abs(v_J_u - JT_v_u) <= FD_RTOL * scale + rounding + truncation, (
        f"{op}, {example.what}: <v, J u> = {v_J_u!r} by finite differences, "
        f"<Jᵀ v, u> = {JT_v_u!r} by the VJP"
    )


def test_ties_and_bounds_share_the_gradient_as_torch_does():
    """Where the derivative jumps, the tape takes torch's convention: maximum and minimum
    split g half and half at a tie, max and min share it evenly among the tied elements,
    clip passes it at a bound (inclusive)."""
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    y = np.array([[1.0, 4.0, 3.0], [0.0, 2.0, 1.0]])
    cases = [
        (lambda a, b: tape_xp.maximum(a, b), torch.maximum),
        (lambda a, b: tape_xp.minimum(a, b), torch.minimum),
        (lambda a, b: tape_xp.max(a, axis=1) + tape_xp.min(b), lambda a, b: torch.amax(a, dim=1) + torch.amin(b)),
        (lambda a, b: tape_xp.clip(a, min=1.0, max=3.0) * tape_xp.clip(b, min=0.0),
         lambda a, b: torch.clamp(a, 1.0, 3.0) * torch.clamp(b, min=0.0)),
    ]  # fmt: skip
    for ours, theirs in cases:
        a, b = Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)
        reference.sum(ours(a, b)).backward()
        ta, tb = (torch.tensor(v, requires_grad=True) for v in (x, y))
        theirs(ta, tb).sum().backward()
        np.testing.assert_array_equal(a.grad, ta.grad.numpy())
        np.testing.assert_array_equal(b.grad, tb.grad.numpy())


def test_an_array_power_takes_torchs_values_where_base_or_exponent_is_zero():
    """x ** y at 0⁰, 0², 1.5⁰ and 0^0.5: ∂/∂x held at 0 where y = 0, ∂/∂y at 0 where x = 0
    (the limits), as torch takes them — no 0·∞ = NaN from the formulas y·x^(y−1) and
    x^y·log x."""
    x, y = np.array([0.0, 0.0, 1.5, 0.0]), np.array([0.0, 2.0, 0.0, 0.5])
    a, b = Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)
    reference.sum(a**b).backward()
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (x, y))
    (ta**tb).sum().backward()
    np.testing.assert_array_equal(a.grad, ta.grad.numpy())
    np.testing.assert_array_equal(b.grad, tb.grad.numpy())


def test_astype_carries_the_gradient_back_in_the_input_dtype():
    x = Tensor(np.array([0.5, 1.5], dtype=np.float64), requires_grad=True)
    y = tape_xp.astype(x, np.float32)
    assert y.dtype == np.float32
    reference.sum(y * y).backward()
    assert x.grad.dtype == np.float64 and np.allclose(x.grad, [1.0, 3.0])


def test_a_function_outside_the_tape_is_a_clear_error_naming_it():
    with pytest.raises(tape_xp.NotInTape, match="'fft'"):
        tape_xp.fft
    with pytest.raises(AttributeError, match="'linalg'"):
        tape_xp.linalg


# --- forward mode and second order, primitive by primitive ---------------------------------


def pushforward(example: Example, directions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The value and tangent of the primitive's answer along ``directions`` (forward mode)."""
    out = example.ref(*[Dual(a, u) for a, u in zip(example.arrays, directions)])
    if type(out) is not Dual:
        return np.asarray(plain(out)), np.zeros(np.shape(plain(out)))
    return np.asarray(out.value), np.asarray(out.tangent)


@pytest.mark.parametrize("op", list(PRIMITIVES))
@PROPERTY
@given(data=st.data())
def test_jvp_agrees_with_torch_forward_mode(op, data):
    example = data.draw(PRIMITIVES[op], label="example")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    directions = [rng.standard_normal(a.shape) for a in example.arrays]
    out, tangent = pushforward(example, directions)
    torch_out, torch_tangent = torch.func.jvp(
        example.torch,
        tuple(torch.tensor(a) for a in example.arrays),
        tuple(torch.tensor(u) for u in directions),
    )
    size = max(1.0, *(np.max(np.abs(a), initial=0.0) for a in example.arrays))
    atol = CANCELLATION * size * max(1.0, *(np.max(np.abs(u), initial=0.0) for u in directions))
    assert_close(out, torch_out.numpy(), RTOL, f"{op} forward, {example.what}", CANCELLATION * size)
    assert_close(tangent, torch_tangent.numpy(), RTOL, f"{op} JVP, {example.what}", atol)


@pytest.mark.parametrize("op", list(PRIMITIVES))
@PROPERTY
@given(data=st.data())
def test_jvp_and_vjp_obey_the_transpose_identity(op, data):
    """<v, J u> by the primitive's JVP = <Jᵀ v, u> by its VJP: two independent derivations
    of the same local Jacobian, equal to rounding — of the sums, and of the cancellation
    inside the primitive (a confidently right softmax: p − onehot ≈ 7.5e-6 from terms of
    size 1, found by hypothesis), CANCELLATION × the inputs' size, as the other tests."""
    example = data.draw(PRIMITIVES[op], label="example")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    directions = [rng.standard_normal(a.shape) for a in example.arrays]
    out, tangent = pushforward(example, directions)
    v = rng.standard_normal(out.shape)
    _, grads = backprop(example, v)
    v_J_u = float(np.sum(v * tangent))
    JT_v_u = float(sum(np.sum(g * u) for g, u in zip(grads, directions)))
    scale = float(np.sum(np.abs(v * tangent))) + float(
        sum(np.sum(np.abs(g * u)) for g, u in zip(grads, directions))
    )
    size = max(1.0, *(np.max(np.abs(a), initial=0.0) for a in example.arrays))
    cancel = (
        CANCELLATION
        * size
        * (
            float(np.sum(np.abs(v)))
            * max(1.0, *(float(np.max(np.abs(u), initial=0.0)) for u in directions))
            + sum(float(np.sum(np.abs(u))) for u in directions)
            * max(1.0, float(np.max(np.abs(v), initial=0.0)))
        )
    )
    assert abs(v_J_u - JT_v_u) <= 1e-12 * scale + cancel + 1e-300, (
        f"{op}, {example.what}: <v, J u> = {v_J_u!r} by the JVP, <Jᵀ v, u> = {JT_v_u!r} by the VJP"
    )


@pytest.mark.parametrize("op", list(PRIMITIVES))
@PROPERTY
@given(data=st.data())
def test_hvp_by_the_tape_over_forward_mode_agrees_with_torch(op, data):
    """H·u of L = Σ v ⊙ op(x): the tape's reverse pass over the forward pass (JVP rules on
    Tensors) against torch's double backward."""
    example = data.draw(PRIMITIVES[op], label="example")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    v = rng.standard_normal(np.shape(forward(example, example.arrays)))
    directions = [rng.standard_normal(a.shape) for a in example.arrays]
    names = [f"x{i}" for i in range(len(example.arrays))]

    def loss(p):
        return reference.sum(example.ref(*[p[n] for n in names]) * v)

    _, hv = hvp(loss, dict(zip(names, example.arrays)), dict(zip(names, directions)))
    inputs = [torch.tensor(a, requires_grad=True) for a in example.arrays]
    torch_loss = (example.torch(*inputs) * torch.as_tensor(v)).sum()
    grads = torch.autograd.grad(torch_loss, inputs, create_graph=True)
    gu = sum((g * torch.as_tensor(u)).sum() for g, u in zip(grads, directions) if g.requires_grad)
    if isinstance(gu, torch.Tensor) and gu.requires_grad:
        torch_hv = torch.autograd.grad(gu, inputs, allow_unused=True)
    else:  # a linear primitive: its Hessian is zero
        torch_hv = [None] * len(inputs)
    size = max(1.0, *(np.max(np.abs(a), initial=0.0) for a in example.arrays))
    atol = (
        CANCELLATION
        * size
        * max(1.0, np.max(np.abs(v), initial=0.0))
        * max(1.0, *(np.max(np.abs(u), initial=0.0) for u in directions))
    )
    for name, a, th in zip(names, example.arrays, torch_hv):
        zero = th is None or th._is_zerotensor()  # torch's symbolic zero (abs'' = 0)
        expected = np.zeros_like(a) if zero else th.numpy()
        assert_close(hv[name], expected, RTOL, f"{op} HVP for {name}, {example.what}", atol)


JAX_EXAMPLES = {  # op -> (the computation for the tape's xp and for jax.numpy, its inputs)
    "add": (lambda xp, a, b: a + b, [(2, 3), (3,)]),
    "sub": (lambda xp, a, b: a - b, [(2, 3), (2, 1)]),
    "mul": (lambda xp, a, b: a * b, [(2, 3), (3,)]),
    "div": (lambda xp, a, b: a / (b * b + 1), [(2, 3), (3,)]),
    "neg": (lambda xp, a: -a, [(4,)]),
    "pow": (lambda xp, a: (a * a + 1) ** 1.5, [(2, 2)]),
    "power": (lambda xp, a, b: (a * a + 1) ** b + 2.0**a, [(2, 3), (3,)]),
    "remainder": (lambda xp, a, b: xp.remainder(a, b * b + 0.5), [(2, 3), (3,)]),
    "matmul": (lambda xp, a, b: a @ b, [(2, 3), (3, 4)]),
    "exp": (lambda xp, a: xp.exp(a), [(3,)]),
    "log": (lambda xp, a: xp.log(a * a + 1), [(3,)]),
    "tanh": (lambda xp, a: xp.tanh(a), [(2, 3)]),
    "sigmoid": (lambda xp, a: sigmoid_of(xp)(a), [(2, 3)]),
    "relu": (lambda xp, a: relu_of(xp)(a + 0.05), [(2, 3)]),
    "sum": (lambda xp, a: xp.sum(a, axis=1), [(2, 3)]),
    "mean": (lambda xp, a: xp.mean(a, axis=0, keepdims=True), [(2, 3)]),
    "reshape": (lambda xp, a: xp.reshape(a, (3, 2)), [(2, 3)]),
    "transpose": (lambda xp, a: xp.permute_dims(a, (1, 0)), [(2, 3)]),
    "getitem": (lambda xp, a: a[1:, ::-1], [(3, 3)]),
    "concatenate": (lambda xp, a, b: xp.concat([a, b], axis=1), [(2, 3), (2, 1)]),
    "stack": (lambda xp, a, b: xp.stack([a, b], axis=1), [(2, 3), (2, 3)]),
    "logsumexp": (lambda xp, a: logsumexp_of(xp)(a, axis=-1), [(2, 4)]),
    "softmax_cross_entropy": (lambda xp, a: xent_of(xp)(a, np.array([0, 2])), [(2, 3)]),
    "abs": (lambda xp, a: xp.abs(a + 0.05), [(4,)]),
    "sqrt": (lambda xp, a: xp.sqrt(a * a + 1), [(4,)]),
    "sin": (lambda xp, a: xp.sin(a), [(4,)]),
    "cos": (lambda xp, a: xp.cos(a), [(4,)]),
    "log1p": (lambda xp, a: xp.log1p(a * a), [(4,)]),
    "expm1": (lambda xp, a: xp.expm1(a), [(4,)]),
    "maximum": (lambda xp, a, b: xp.maximum(a, b + 0.05), [(2, 3), (3,)]),
    "minimum": (lambda xp, a, b: xp.minimum(a, b + 0.05), [(2, 3), (3,)]),
    "where": (lambda xp, a, b: xp.where(np.array([True, False, True]), a, b), [(2, 3), (3,)]),
    "clip": (lambda xp, a: xp.clip(a, min=-0.5, max=0.55), [(3, 3)]),
    "max": (lambda xp, a: xp.max(a, axis=1), [(3, 4)]),
    "min": (lambda xp, a: xp.min(a, axis=0), [(3, 4)]),
    "expand_dims": (lambda xp, a: xp.expand_dims(a, axis=1), [(3,)]),
    "squeeze": (lambda xp, a: xp.squeeze(a, axis=0), [(1, 3)]),
    "broadcast_to": (lambda xp, a: xp.broadcast_to(a, (2, 3)), [(3,)]),
    "astype": (lambda xp, a: xp.astype(a, xp.float32), [(3,)]),
}  # fmt: skip


def sigmoid_of(xp):
    import jax

    return reference.sigmoid if xp is tape_xp else jax.nn.sigmoid


def relu_of(xp):
    import jax

    return reference.relu if xp is tape_xp else jax.nn.relu


def logsumexp_of(xp):
    import jax

    return reference.logsumexp if xp is tape_xp else jax.scipy.special.logsumexp


def xent_of(xp):
    import jax

    if xp is tape_xp:
        return reference.softmax_cross_entropy

    def xent(z, labels):
        return -xp.mean(xp.take_along_axis(jax.nn.log_softmax(z), labels[:, None], axis=-1))

    return xent


def test_every_primitive_has_a_jax_example():
    assert set(RULES) - set(JAX_EXAMPLES) == set()


@pytest.mark.parametrize("op", list(JAX_EXAMPLES))
def test_jvp_and_hvp_agree_with_jax(op):
    """The same computation through the tape's namespace (forward mode; the tape over
    forward mode for H·u) and through jax.numpy (jax.jvp; jax.jvp of jax.grad)."""
    import jax
    import jax.numpy as jnp

    fn, shapes = JAX_EXAMPLES[op]
    rng = np.random.default_rng(len(op))
    xs = [rng.uniform(-1, 1, s) for s in shapes]
    us = [rng.standard_normal(s) for s in shapes]
    names = [f"x{i}" for i in range(len(xs))]
    value, tangent = jvp(
        lambda p: fn(tape_xp, *[p[n] for n in names]), dict(zip(names, xs)), dict(zip(names, us))
    )
    with jax.enable_x64(True):
        j_value, j_tangent = jax.jvp(
            lambda *a: fn(jnp, *a), tuple(map(jnp.asarray, xs)), tuple(map(jnp.asarray, us))
        )
        w = rng.standard_normal(np.shape(j_value))

        def scalar(*a):
            return jnp.sum(fn(jnp, *a).astype(jnp.float64) * w)

        grad = jax.grad(scalar, argnums=tuple(range(len(xs))))
        _, j_hv = jax.jvp(grad, tuple(map(jnp.asarray, xs)), tuple(map(jnp.asarray, us)))
    assert_close(value, np.asarray(j_value), 1e-6 if op == "astype" else RTOL, f"{op} value")
    assert_close(
        tangent, np.asarray(j_tangent), 1e-6 if op == "astype" else RTOL, f"{op} JVP", CANCELLATION
    )
    _, hv = hvp(
        lambda p: reference.sum(
            tape_xp.astype(fn(tape_xp, *[p[n] for n in names]), np.float64) * w
        ),
        dict(zip(names, xs)),
        dict(zip(names, us)),
    )
    for name, expected in zip(names, j_hv):
        assert_close(
            hv[name],
            np.asarray(expected),
            1e-6 if op == "astype" else RTOL,
            f"{op} HVP {name}",
            CANCELLATION,
        )
