"""An attention backward in bfloat16 and float16, judged against what that precision allows
(``harness.compare.low_precision``): torch's fused kernel on the CPU and a float32-
accumulating backward pass every test; each broken one is caught by the test made for it,
on the tensor it broke, and on no other tensor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.compare.low_precision import K_BIAS, judge_low_precision
from harness.precision import rounded

torch = pytest.importorskip("torch")
SHAPE = (2, 4, 256, 64)  # B, H, S, D: 131k elements per gradient
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _math(q, k, v):
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return p @ v


def _fused(q, k, v):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def _autograd(forward, q, k, v, do):
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    return torch.autograd.grad(forward(*leaves), leaves, do)


def _by_hand(q, k, v, do, correction=True):
    """The backward written out, accumulated in float32, each gradient rounded once to the
    inputs' dtype: dV = Pᵀ dO; dP = dO Vᵀ; dS = P ∘ (dP − rowsum(dO ∘ O)); dQ = dS K / √D;
    dK = dSᵀ Q / √D. Without ``correction``, dS = P ∘ dP (a real bug: the softmax's
    correction term forgotten)."""
    low = q.dtype
    q, k, v, do = (t.float() for t in (q, k, v, do))
    scale = 1 / math.sqrt(q.shape[-1])
    p = torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1)
    o = p @ v
    dp = do @ v.transpose(-1, -2)
    ds = p * (dp - (do * o).sum(-1, keepdim=True)) if correction else p * dp
    grads = (ds @ k * scale, ds.transpose(-1, -2) @ q * scale, p.transpose(-1, -2) @ do)
    return tuple(g.to(low) for g in grads)


@pytest.fixture(scope="module", params=list(DTYPES))
def attention(request):
    """The inputs drawn in the low dtype; the truth (float64 on them, upcast); the eager
    baseline in the low dtype."""
    dtype = request.param
    gen = torch.Generator().manual_seed(0)
    q, k, v, do = (torch.randn(SHAPE, generator=gen).to(DTYPES[dtype]) for _ in range(4))
    truth = _autograd(_math, *(t.double() for t in (q, k, v, do)))
    baseline = _autograd(_math, q, k, v, do)
    return dtype, (q, k, v, do), [t.numpy() for t in truth], [t.double().numpy() for t in baseline]


def _judged(attention, grads):
    dtype, _, truth, baseline = attention
    got = [g.double().numpy() if hasattr(g, "double") else g for g in grads]
    return {
        name: judge_low_precision(g, b, r, dtype)
        for name, g, b, r in zip(("dq", "dk", "dv"), got, baseline, truth, strict=True)
    }


@pytest.mark.parametrize("implementation", ["fused", "by hand", "eager"])
def test_a_correct_backward_passes_every_test_on_every_tensor(attention, implementation):
    _, inputs, _, _ = attention
    grads = {
        "fused": lambda: _autograd(_fused, *inputs),
        "by hand": lambda: _by_hand(*inputs),
        "eager": lambda: _autograd(_math, *inputs),
    }[implementation]()
    for name, facts in _judged(attention, grads).items():
        assert facts.ok, (name, facts)
        assert facts.magnitude <= 1.0 + 1e-12  # fused and by hand: at least as good as eager


def test_the_rounding_floor_is_the_truth_rounded_once(attention):
    """No implementation that returns the dtype does better than fl(truth): it passes, and
    its accuracy is exactly 1."""
    dtype, _, truth, _ = attention
    best = [rounded(r, dtype) for r in truth]
    for name, facts in _judged(attention, best).items():
        assert facts.ok and facts.accuracy == pytest.approx(1.0), name
        assert facts.accuracy_baseline > 1.0  # eager rounds more than once


def _broken(attention, how):
    dtype, inputs, _, _ = attention
    dq, dk, dv = (g.clone() for g in _autograd(_fused, *inputs))
    if how == "scale bias":  # half an ulp of bfloat16; 2 ulps of float16
        factor = 1 + (2.0**-8 if dtype == "bfloat16" else 2.0**-10)
        return "dq", (dq.double() * factor).to(dq.dtype), dk, dv
    if how == "one element":  # 5 % of dq's scale added to one element
        dq[1, 2, 100, 7] += 0.05 * dq.abs().max()
        return "dq", dq, dk, dv
    if how == "zeroed row":
        dv[0, 3, 17, :] = 0
        return "dv", dq, dk, dv
    if how == "swapped heads":
        dk = dk[:, [1, 0, 2, 3]]
        return "dk", dq, dk, dv
    if how == "no correction term":
        return "dq dk", *_by_hand(*inputs, correction=False)
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how, test",
    [
        ("scale bias", "bias"),
        ("one element", "elements"),
        ("zeroed row", "elements"),
        ("swapped heads", "magnitude"),
        ("no correction term", "magnitude"),
    ],
)
def test_each_broken_backward_is_caught_on_the_tensor_it_broke(attention, how, test):
    broke, *grads = _broken(attention, how)
    judged = _judged(attention, grads)
    for name, facts in judged.items():
        assert facts.ok is (name not in broke.split()), (how, name, facts)
    for name in broke.split():
        assert not getattr(judged[name], f"{test}_ok"), (how, name, judged[name])


def test_a_bias_is_seen_only_by_the_bias_test(attention):
    """Half an ulp of bfloat16 on dq: its rms error stays within twice the baseline's and
    no element stands out, so a max- or norm-based rule passes it."""
    dtype, *_ = attention
    _, *grads = _broken(attention, "scale bias")
    facts = _judged(attention, grads)["dq"]
    assert facts.magnitude_ok and facts.elements_ok and not facts.bias_ok
    assert abs(facts.bias) > 3 * facts.bias_resolution  # measured: 11× (bf16), 5.5× (fp16)
    assert facts.bias_resolution == K_BIAS * facts.bias_noise


def test_the_element_found_is_named_by_its_index(attention):
    _, *grads = _broken(attention, "one element")
    facts = _judged(attention, grads)["dq"]
    assert facts.beyond == 1 and facts.beyond_index == ((1, 2, 100, 7),)
    assert facts.worst_index == (1, 2, 100, 7)


def test_a_zeroed_row_is_named_element_by_element(attention):
    _, *grads = _broken(attention, "zeroed row")
    facts = _judged(attention, grads)["dv"]
    assert facts.beyond > 1
    assert all(index[:3] == (0, 3, 17) for index in facts.beyond_index)


@pytest.mark.parametrize(
    "got, baseline, truth, ok",
    [
        (np.zeros(4), np.zeros(4), np.zeros(4), True),  # a zero gradient, exactly
        (np.array([0.0, 1e-30, 0, 0]), np.zeros(4), np.zeros(4), False),  # not zero
        (np.ones(4), np.ones(4), np.ones(4), True),  # exact everywhere: nothing to divide
        (np.full(4, 1e-300), np.full(4, 1e-300), np.full(4, 1e-300), True),  # no underflow
    ],
)
def test_exact_zeros_and_tiny_values_are_judged_not_divided_by(got, baseline, truth, ok):
    facts = judge_low_precision(got, baseline, truth, "bfloat16")
    assert facts.ok is ok
    assert math.isnan(facts.bias) is (not np.any(truth))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8"])
def test_a_dtype_that_is_not_low_precision_is_refused_by_name(dtype):
    with pytest.raises(ValueError, match=f"bfloat16, float16, not '{dtype}'"):
        judge_low_precision(np.ones(2), np.ones(2), np.ones(2), dtype)


def _tensor(n=4096, seed=1):
    return np.random.default_rng(seed).standard_normal(n)


@pytest.mark.parametrize(
    "what",
    ["inf in the baseline", "nan in the baseline", "truth beyond float16", "truth beyond bfloat16"],
)
def test_a_measuring_stick_that_breaks_judges_nothing_and_says_why(what):
    """An eager baseline that overflowed, or a truth the dtype cannot hold, measures
    nothing: never ok (zeros passed), never a fault of the implementation's either."""
    dtype = "float16" if "float16" in what and "bfloat16" not in what else "bfloat16"
    truth = _tensor()
    baseline = rounded(truth, dtype)
    if what == "inf in the baseline":
        baseline[7] = np.inf
    elif what == "nan in the baseline":
        baseline[7] = np.nan
    elif what == "truth beyond float16":
        truth[3] = 7e4
    else:
        truth *= 1e300
        baseline = truth.copy()
    for got in (np.zeros_like(truth), rounded(truth, dtype)):
        facts = judge_low_precision(got, baseline, truth, dtype)
        assert not facts.ok and facts.unjudged, (what, facts)


def test_one_ulp_off_where_the_baseline_is_exact_is_no_alarm():
    """A truth the dtype holds exactly, a baseline that hits it: an implementation one ulp
    off in one element is within rounding, not infinitely worse (σ has the model's floor,
    what one rounding of values of this size costs, u·rms(r)/√3)."""
    truth = rounded(_tensor(), "bfloat16")
    got = truth.copy()
    got[11] = truth[11] * (1 + 2.0**-7)  # one bfloat16 ulp
    facts = judge_low_precision(got, truth, truth, "bfloat16")
    assert facts.ok and facts.magnitude < 1, facts


def test_several_baselines_make_an_envelope(attention):
    """torch's and jax's eager runs, say: each element is held to the one further from
    the truth there, the bias noise to the larger of their factors."""
    dtype, inputs, truth, baseline = attention
    dq, r = _autograd(_fused, *inputs)[0].double().numpy(), truth[0]
    worse = baseline[0].copy()
    worse[0, 0, 0, 0] = r[0, 0, 0, 0] + 0.05 * np.abs(r).max()  # far off, in one run only
    got = dq.copy()
    got[0, 0, 0, 0] = worse[0, 0, 0, 0]
    alone = judge_low_precision(got, baseline[0], r, dtype)
    both = judge_low_precision(got, [baseline[0], worse], r, dtype)
    assert not alone.elements_ok and alone.beyond_index == ((0, 0, 0, 0),)
    assert both.elements_ok  # the element is as far off as one straightforward run
    assert both.bias_baseline == max(
        (judge_low_precision(b, b, r, dtype).bias for b in (baseline[0], worse)), key=abs
    )
