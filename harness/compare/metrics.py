"""The metrics of one tensor against another: element-wise (``compare_arrays``) and, for
an oracle that sees a tensor only along a few directions, directional
(``compare_directional``). Each returns one row's numbers (``agreement.csv``'s metric
columns) and its verdict, decided by ``harness.compare.policy``. Pure numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.compare.policy import (
    RESOLVE,
    decide,
    digits_of,
    noise_terms,
    within_reason,
)
from harness.compare.verdicts import Verdict
from harness.result import Directional
from harness.tolerances import Tolerance


def l2_norm(x: Any, axis: int | None = None) -> Any:
    """‖x‖₂ (over all elements, or along ``axis``) computed on x / max|x|, so that
    gradients of size 1e-200 do not square to zero (or 1e+200 to infinity)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(np.abs(x), axis=axis, keepdims=True, initial=0.0)
    safe = np.where(m > 0, m, 1.0)
    with np.errstate(invalid="ignore"):  # inf / inf: the norm is inf (or nan), as it should
        norms = np.sqrt(np.sum((x / safe) ** 2, axis=axis, keepdims=True)) * m
    return float(norms.reshape(())) if axis is None else np.squeeze(norms, axis=axis)


def _others(unresolved: np.ndarray, what: str) -> str:
    """ "; the other elements agree", where there are others (an inconclusive verdict means
    every resolved one agrees)."""
    return f"; the other {what} agree" if not unresolved.all() else ""


def _ranges(steps: np.ndarray) -> str:
    """[0 1 2 3 7 8] -> '0-3,7-8'."""
    parts, start = [], None
    for i, s in enumerate(steps):
        if start is None:
            start = s
        if i + 1 == len(steps) or steps[i + 1] != s + 1:
            parts.append(f"{start}" if start == s else f"{start}-{s}")
            start = None
    return ",".join(parts)


def compare_arrays(
    got: Any,
    expected: Any,
    tol: Tolerance,
    dtype: str = "float64",
    uncertainty: Any = None,
    stepped: bool = False,
    noise: Any = None,
) -> dict[str, Any]:
    """Agreement metrics of ``got`` against ``expected`` (see ``harness.tolerances``).

    max_rel_err = max_i |a_i − b_i| / s_i — the largest error relative to the tensor's own
    scale s = max |b| (per step when ``stepped``), so an element near zero neither blows it
    up nor hides; rel_l2_err = ‖a − b‖/‖b‖; cosine = ⟨a, b⟩/(‖a‖‖b‖). ``stepped``: axis 0
    indexes unroll steps, and each step is judged against its own scale.

    ``uncertainty`` (an oracle's error estimate u_i): an element with u_i > RESOLVE·s_i is
    unresolved and not judged. ``noise`` (the references' spread per element over
    rounding-perturbed runs, ``harness.noise``) gives the noise floor f = max_i spread_i / s
    (per step for unroll taps; never below ε): where it is measured, the absolute term of
    the tolerance is min(atol·s, TIGHTEN·f·s) — a well-conditioned problem is judged at its
    own precision, so an error in a small element shows — and an element beyond the
    tolerance but within WITHIN_NOISE·f·s, where f·s itself exceeds the fixed tolerance,
    agrees within noise: the problem, not a backend, limits the digits there.

    The verdict: "disagree" when a judged element lies outside all that, else
    "inconclusive" when some element is unresolved, else "agree within noise" when some
    element needed the noise to pass, else "agree". ``detects_rel_median`` and
    ``_worst``: over the nonzero elements, the smallest relative error of one element that
    would be flagged, (its allowed difference) / |b_i|.
    """
    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return {
            "verdict": Verdict.FAILED.value,
            "ok": False,
            "error": f"shape {a.shape} where {b.shape} was expected",
        }
    tiny = float(np.finfo(dtype).tiny)
    eps = float(np.finfo(dtype).eps)
    abs_b = np.abs(b)
    # The scale is the finite elements' (a NaN or inf expected is itself flagged below; it
    # must not turn every other element's tolerance into NaN and flag them too).
    finite_b = np.where(np.isfinite(abs_b), abs_b, 0.0)
    axes = tuple(range(1, b.ndim)) if stepped and b.ndim > 1 else None
    if stepped and b.ndim >= 1:  # a scalar per step (shape (T,)) is its own scale
        scale = np.max(finite_b, axis=axes, keepdims=True) if b.ndim > 1 else finite_b
    else:
        scale = np.max(finite_b, initial=0.0)
    scale = np.maximum(scale, tiny)
    diff = np.abs(a - b)
    # Below tiny/ε (≈1e-292 in float64) a value's terms are subnormal: backends that flush
    # subnormals to zero (XLA on the CPU) differ there legitimately, so nothing is judged.
    extra: float | np.ndarray = tiny / eps
    if uncertainty is not None:
        extra = extra + np.asarray(uncertainty, dtype=np.float64)
    fixed = tol.rtol * abs_b + tol.atol * scale  # the table's tolerance
    allowed, within, floor, threshold = fixed + extra, np.zeros(b.shape, bool), None, None
    if noise is not None and np.shape(noise) == b.shape:
        spread = np.nan_to_num(np.asarray(noise, dtype=np.float64), nan=np.inf)
        if stepped and b.ndim >= 1:
            top = np.max(spread, axis=axes, keepdims=True) if b.ndim > 1 else spread
        else:
            top = np.max(spread, initial=0.0)
        floor = np.maximum(top / scale, eps)
        allowed, within, threshold = noise_terms(diff, fixed, extra, tol, floor, scale, abs_b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.where(np.isfinite(a) & np.isfinite(b), diff / allowed, np.inf)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        rel = diff / scale
    bad = (ratio > 1) & ~within
    unresolved = np.zeros(b.shape, dtype=bool)
    if uncertainty is not None:
        u = np.broadcast_to(np.asarray(uncertainty, dtype=np.float64), b.shape)
        with np.errstate(invalid="ignore"):
            unresolved = ~(u <= RESOLVE * scale)  # NaN (no estimate) is unresolved too
        unresolved &= ~((a == 0) & (b == 0))  # exact zeros on both sides: nothing to resolve
        bad &= ~unresolved
        within &= ~unresolved
    worst = _worst(rel, bad, unresolved, np.isfinite(a) & np.isfinite(b))
    worst_scale = float(np.broadcast_to(scale, b.shape)[worst]) if b.size else math.nan
    norm_a, norm_b = l2_norm(a), l2_norm(b)
    if norm_b > 0:
        rel_l2 = l2_norm(a - b) / norm_b
    else:
        rel_l2 = 0.0 if norm_a == 0 else math.inf
    if norm_a > 0 and norm_b > 0:
        cosine = float(np.dot((a / norm_a).ravel(), (b / norm_b).ravel()))
    else:
        cosine = 1.0 if norm_a == norm_b else 0.0
    factor, factor_residual = _factor(a, b, norm_b)
    transposed_residual = _transposed(a, b, norm_b)
    bad_steps = ""
    if stepped and b.ndim >= 1 and bad.any():
        bad_steps = _ranges(np.flatnonzero(bad.reshape(len(b), -1).any(axis=1)))
    verdict = decide(bad, unresolved, within)
    reason = ""
    if verdict == Verdict.INCONCLUSIVE:
        where = ""
        if stepped and b.ndim >= 1:
            where = (
                f", at steps {_ranges(np.flatnonzero(unresolved.reshape(len(b), -1).any(axis=1)))}"
            )
        reason = (
            f"the oracle cannot resolve {int(unresolved.sum())}/{b.size} elements{where}: its "
            f"error estimate there exceeds {RESOLVE:g} of the scale (the gradient is too small, "
            f"or the loss too curved, for its step){_others(unresolved, 'elements')}"
        )
    digits = math.nan if floor is None else digits_of(float(np.max(floor)), eps)
    if verdict == Verdict.WITHIN_NOISE and floor is not None:
        reason = within_reason(int(within.sum()), b.size, float(np.max(floor)), digits)
    return {
        "max_abs_err": float(np.max(diff, initial=0.0)),
        "max_rel_err": float(np.max(rel, initial=0.0)),
        "rel_l2_err": rel_l2,
        "cosine": cosine,
        "worst_index": str(tuple(int(i) for i in worst)),
        "worst_got": float(a[worst]) if a.size else math.nan,
        "worst_expected": float(b[worst]) if b.size else math.nan,
        "worst_scale": worst_scale,
        "worst_rel_err": float(rel[worst]) if b.size else math.nan,
        "n_bad": int(bad.sum()),
        "n_unresolved": int(unresolved.sum()),
        "n_elements": int(b.size),
        "bad_steps": bad_steps,
        "factor": factor,
        "factor_residual": factor_residual,
        "transposed_residual": transposed_residual,
        "noise_floor": math.nan if floor is None else float(np.max(floor)),
        "digits": digits,
        **_detects(np.broadcast_to(allowed if threshold is None else threshold, b.shape), abs_b),
        "verdict": verdict.value,
        "ok": verdict.agrees,
        "reason": reason,
        "error": "",
    }


def _worst(rel: np.ndarray, bad: np.ndarray, unresolved: np.ndarray, finite: np.ndarray) -> tuple:
    """The index of the element a row names as its worst: the largest error relative to
    its scale, |a_i − b_i| / s_i, among the elements that disagree; where none does, among
    those judged (an oracle resolved them), else among all. A non-finite value is the
    largest error. So the worst element is the one whose error the row reports beside it
    (``worst_rel_err``), and a disagreement never names an element that agrees."""
    if not rel.size:
        return ()
    pool = bad if bad.any() else ~unresolved if not unresolved.all() else np.ones(rel.shape, bool)
    with np.errstate(invalid="ignore"):
        size = np.where(finite, np.nan_to_num(rel, nan=np.inf), np.inf)
    return np.unravel_index(int(np.argmax(np.where(pool, size, -np.inf))), rel.shape)


def _detects(threshold, abs_b) -> dict[str, float]:
    """The smallest relative error of one element that would be flagged, (the difference
    allowed there) / |b_i|, over the nonzero elements: median and worst."""
    nonzero = abs_b > 0
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # subnormal |b_i|: inf
        detects = np.asarray(threshold)[nonzero] / abs_b[nonzero]
    if not detects.size:
        return {"detects_rel_median": math.nan, "detects_rel_worst": math.nan}
    return {
        "detects_rel_median": float(np.median(detects)),
        "detects_rel_worst": float(np.max(detects)),
    }


def _factor(a: np.ndarray, b: np.ndarray, norm_b: float) -> tuple[float, float]:
    """The c that makes c·b closest to a (least squares, c = ⟨a, b⟩/⟨b, b⟩) and how far a
    is from it, ‖a − c·b‖/‖b‖: a gradient off by one constant factor has a residual of 0."""
    if not (norm_b > 0 and math.isfinite(norm_b)) or not np.all(np.isfinite(a)):
        return math.nan, math.nan
    m = float(np.max(np.abs(b)))
    a_, b_ = (a / m).ravel(), (b / m).ravel()
    c = float(np.dot(a_, b_) / np.dot(b_, b_))
    return c, l2_norm(a_ - c * b_) / l2_norm(b_)


def _transposed(a: np.ndarray, b: np.ndarray, norm_b: float) -> float:
    """‖a − bᵀ‖/‖b‖, bᵀ swapping the last two axes, where those are square (n × n, n > 1):
    a gradient that is its reference transposed (a product taken in the wrong order) has a
    residual of 0; nan for any other shape, where a transpose would not fit."""
    square = b.ndim >= 2 and b.shape[-1] == b.shape[-2] > 1 and a.shape == b.shape
    if not square or not (norm_b > 0 and math.isfinite(norm_b)) or not np.all(np.isfinite(a)):
        return math.nan
    return l2_norm(a - np.swapaxes(b, -1, -2)) / norm_b


def compare_directional(
    full: Any, probe: Directional, tol: Tolerance, dtype: str = "float64", noise: Any = None
) -> dict[str, Any]:
    """A full gradient b against directional derivatives d_j ≈ ⟨b, v_j⟩ (unit v_j).

    Direction j agrees when |d_j − ⟨b, v_j⟩| ≤ rtol·|⟨b, v_j⟩| + atol·‖b‖ + err_j: the
    scale of a projection on a unit vector is ‖b‖. max_rel_err = rel_l2_err =
    max_j |d_j − ⟨b, v_j⟩|/‖b‖ (a lower bound of ‖a − b‖/‖b‖); cosine does not exist here
    and is NaN; worst_index names the direction. A direction whose error estimate exceeds
    RESOLVE·‖b‖ is unresolved (see ``compare_arrays``). ``noise`` (b's spread per element)
    enters as in ``compare_arrays`` with ‖spread‖ for the noise of a projection:
    |⟨δ, v⟩| ≤ ‖δ‖ for a unit v, so the noise floor is ‖spread‖/‖b‖.
    """
    b = np.asarray(full, dtype=np.float64)
    if probe.directions.shape[1:] != b.shape:
        return {
            "verdict": Verdict.FAILED.value,
            "ok": False,
            "error": f"directions of shape {probe.directions.shape[1:]} for a tensor of shape {b.shape}",
        }
    expected = probe.directions.reshape(len(probe.values), -1) @ b.ravel()
    eps = float(np.finfo(dtype).eps)
    scale = max(l2_norm(b), float(np.finfo(dtype).tiny))
    diff = np.abs(probe.values - expected)
    fixed = tol.rtol * np.abs(expected) + tol.atol * scale
    allowed, within, floor, threshold = fixed + probe.errors, np.zeros(diff.shape, bool), None, None
    if noise is not None and np.shape(noise) == b.shape:
        spread = np.nan_to_num(np.asarray(noise, dtype=np.float64), nan=np.inf)
        floor = max(l2_norm(spread) / scale, eps)
        allowed, within, threshold = noise_terms(
            diff, fixed, probe.errors, tol, floor, scale, np.abs(expected)
        )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.where(np.isfinite(probe.values), diff / allowed, np.inf)
        unresolved = ~(probe.errors <= RESOLVE * scale)
    bad = (ratio > 1) & ~unresolved & ~within
    within &= ~unresolved
    with np.errstate(invalid="ignore"):
        rel = diff / scale
    worst = int(_worst(rel, bad, unresolved, np.isfinite(probe.values) & np.isfinite(expected))[0])
    verdict = decide(bad, unresolved, within)
    reason = ""
    if verdict == Verdict.INCONCLUSIVE:
        reason = (
            f"the oracle cannot resolve {int(unresolved.sum())}/{len(probe.values)} directions: "
            f"its error estimate exceeds {RESOLVE:g} of ‖b‖ (the loss is too curved for its "
            f"step){_others(unresolved, 'directions')}"
        )
    digits = math.nan if floor is None else digits_of(floor, eps)
    if verdict == Verdict.WITHIN_NOISE and floor is not None:
        reason = within_reason(int(within.sum()), len(diff), float(floor), digits)
    return {
        "max_abs_err": float(diff.max()),
        "max_rel_err": float(diff.max() / scale),
        "rel_l2_err": float(diff.max() / scale),  # |⟨a − b, v⟩|/‖b‖ ≤ ‖a − b‖/‖b‖
        "cosine": math.nan,
        "worst_index": f"direction {worst}",
        "worst_got": float(probe.values[worst]),
        "worst_expected": float(expected[worst]),
        "worst_scale": scale,  # ‖b‖: every direction is unit, so one scale for all
        "worst_rel_err": float(rel[worst]),
        "n_bad": int(bad.sum()),
        "n_unresolved": int(unresolved.sum()),
        "n_elements": len(probe.values),
        "bad_steps": "",
        "noise_floor": math.nan if floor is None else float(floor),
        "digits": digits,
        **_detects(allowed if threshold is None else threshold, np.abs(expected)),
        "verdict": verdict.value,
        "ok": verdict.agrees,
        "reason": reason,
        "error": "",
    }
