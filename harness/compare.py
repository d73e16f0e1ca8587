"""Comparison: Results in, tidy tables out. Nothing here runs a backend; it reads Results
(and, for the theory beside the magnitudes, the cases' options).

- ``agreement``: one row per case × mode × tensor × backend, against a baseline backend,
  each with exactly one verdict (``VERDICTS``);
- ``identities``: one row per case × mode × autodiff backend: its forward mode against its
  reverse mode, its H·v against its H·w (``harness.modes``);
- ``runs``: one row per case × mode × backend (status, timings, method, error);
- ``magnitudes``: one row per case × backend × tap × step (the gradient norm).

The mode says which derivative a row's tensor is (``harness.modes``): "rev", the gradient
dL/d(tensor); "fwd", the tangent of the tensor along the case's direction u (the loss's:
J_L·u; a tap's: the change of the tapped value); "hvp", (H·v) for that parameter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from harness import modes as M
from harness import theory
from harness.result import BUILD, DEFAULT_BASELINE, Directional, Result
from harness.tolerances import Tolerance, tolerance_for

AGREEMENT_COLUMNS = [
    "case", "mode", "kind", "tensor", "backend", "baseline", "dtype", "shape",
    "max_abs_err", "max_rel_err", "rel_l2_err", "cosine", "worst_index", "worst_got",
    "worst_expected", "worst_scale", "worst_rel_err", "n_bad", "n_unresolved", "n_elements",
    "bad_steps", "factor", "factor_residual", "noise_floor", "digits", "detects_rel_median",
    "detects_rel_worst", "rtol", "atol", "verdict", "ok", "odd_one_out", "reason", "error",
]  # fmt: skip

# Every row ends in one of these. "inconclusive": an oracle (finite differences) whose
# own error estimate is too large to judge some elements, and no element it can judge
# disagrees; "failed": nothing to compare (a backend failed, a tensor is missing).
VERDICTS = ("agree", "agree within noise", "disagree", "inconclusive", "unsupported", "failed")
FLAGGED = ("disagree", "failed")  # what makes a run fail (exit 1); inconclusive alone does not
AGREEING = ("agree", "agree within noise")
COMPARED = (*AGREEING, "disagree", "inconclusive")  # the rows where numbers were compared

# The noise floor (harness.noise) against the table. TIGHTEN: where the floor is measured,
# the absolute term of the tolerance is at most 100 floors. Over the default catalog two
# correct backends differ by at most 3.5 floors (float64, adbench_lstm's extra, manual vs
# torch; 0.42 on the median tensor) and 3.0 (float32), so 100 leaves a factor 28, and an
# error of 1e-9 in an element 6.7e-4 of the scale (invisible to atol 1e-10·s) is caught.
# WITHIN_NOISE: a difference of up to 3 floors is the problem's own rounding noise where
# that noise exceeds the table; on elman_exploding (σ = 1.3) at T ∈ {100, 300, 1000},
# H ∈ {16, 64}, seeds 0-2, correct libraries differ by at most 1.38 floors (float64) and
# 1.48 (float32). A gradient off by 1e-2 there is still flagged at the late steps of its
# tap h, where the floor is small (see harness.tolerances).
TIGHTEN = 100.0
WITHIN_NOISE = 3.0

# An oracle resolves an element when its error estimate u_i is at most this fraction of
# the element's scale s (the tensor's, or the step's, max|b|). Above it, finite
# differences vouch for fewer than 4 digits there, too few to call the element right or
# wrong; on the default catalog u_i/s stays below 2e-7 wherever the gradient is not
# vanishingly small (measured: deep_chain 1.2e-7, everything else below 1e-8).
RESOLVE = 1e-4


def parting_digits(got: float, expected: float) -> int:
    """The significant digits it takes to see two numbers part: at least 6, at most 17."""
    return next((p for p in range(6, 18) if f"{got:.{p}g}" != f"{expected:.{p}g}"), 17)


def parted(got: float, expected: float) -> str:
    """ "got …, expected …" with the digits it takes to see where the two part, and their
    difference."""
    if not (math.isfinite(got) and math.isfinite(expected)) or got == expected:
        return f"got {got:.6g}, expected {expected:.6g}"
    p = parting_digits(got, expected)
    return f"got {got:.{p}g}, expected {expected:.{p}g} (off by {got - expected:.2g})"


def listing(names: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else ""


def worst_at(row: Any) -> str:
    """ "worst at (4, 1): got …, expected … (off by …), 1.17e+00 of the scale 0.394": the
    element a row names as its worst (``compare_arrays``), its values to the digits where
    they part, and its own error relative to its scale, |got − expected| / scale — the
    numbers on the line give one another."""
    return (f"worst at {row['worst_index']}: {parted(row['worst_got'], row['worst_expected'])}, "
            f"{row['worst_rel_err']:.2e} of the scale {row['worst_scale']:.3g}")  # fmt: skip


def flagged(table: pd.DataFrame) -> pd.Series:
    """The rows that fail a run: a disagreement or a failure."""
    return table["verdict"].isin(FLAGGED)


def baseline_odd(table: pd.DataFrame) -> pd.Series:
    """The disagreeing rows where the baseline itself is the odd one out (``_odd_one_out``): it
    disagrees with every other backend while they agree among themselves, so the fault is
    the baseline's, not the backend's compared with it."""
    return (table["verdict"] == "disagree") & (table["odd_one_out"] == table["baseline"])


def compared(table: pd.DataFrame) -> pd.Series:
    """The rows whose numbers were compared (agree, within noise, disagree, inconclusive);
    a skipped, unsupported or failed backend compared nothing."""
    return table["verdict"].isin(COMPARED)


def kind_of(result: Result) -> str:
    return "autodiff" if result.method == "autodiff" else "numeric"


def l2_norm(x: Any, axis: int | None = None) -> Any:
    """‖x‖₂ (over all elements, or along ``axis``) computed on x / max|x|, so that
    gradients of size 1e-200 do not square to zero (or 1e+200 to infinity)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(np.abs(x), axis=axis, keepdims=True, initial=0.0)
    safe = np.where(m > 0, m, 1.0)
    with np.errstate(invalid="ignore"):  # inf / inf: the norm is inf (or nan), as it should
        norms = np.sqrt(np.sum((x / safe) ** 2, axis=axis, keepdims=True)) * m
    return float(norms.reshape(())) if axis is None else np.squeeze(norms, axis=axis)


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
            "verdict": "failed",
            "ok": False,
            "error": f"shape {a.shape} where {b.shape} was expected",
        }
    tiny = float(np.finfo(dtype).tiny)
    eps = float(np.finfo(dtype).eps)
    abs_b = np.abs(b)
    axes = tuple(range(1, b.ndim)) if stepped and b.ndim > 1 else None
    if stepped and b.ndim >= 1:  # a scalar per step (shape (T,)) is its own scale
        scale = np.max(abs_b, axis=axes, keepdims=True) if b.ndim > 1 else abs_b
    else:
        scale = np.max(abs_b, initial=0.0)
    scale = np.maximum(scale, tiny)
    diff = np.abs(a - b)
    # Below tiny/ε (≈1e-292 in float64) a value's terms are subnormal: backends that flush
    # subnormals to zero (XLA on the CPU) differ there legitimately, so nothing is judged.
    extra = tiny / eps
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
        allowed, within, threshold = _noise_terms(diff, fixed, extra, tol, floor, scale, abs_b)
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
    bad_steps = ""
    if stepped and b.ndim >= 1 and bad.any():
        bad_steps = _ranges(np.flatnonzero(bad.reshape(len(b), -1).any(axis=1)))
    verdict = _verdict(bad, unresolved, within)
    reason = ""
    if verdict == "inconclusive":
        where = ""
        if stepped and b.ndim >= 1:
            where = (
                f", at steps {_ranges(np.flatnonzero(unresolved.reshape(len(b), -1).any(axis=1)))}"
            )
        reason = (
            f"the oracle cannot resolve {int(unresolved.sum())}/{b.size} elements{where}: its "
            f"error estimate there exceeds {RESOLVE:g} of the scale (the gradient is too small, "
            "or the loss too curved, for its step); the other elements agree"
        )
    digits = math.nan if floor is None else _digits(float(np.max(floor)), eps)
    if verdict == "agree within noise":
        reason = _within_reason(int(within.sum()), b.size, float(np.max(floor)), digits)
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
        "noise_floor": math.nan if floor is None else float(np.max(floor)),
        "digits": digits,
        **_detects(np.broadcast_to(allowed if threshold is None else threshold, b.shape), abs_b),
        "verdict": verdict,
        "ok": verdict in AGREEING,
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


def _noise_terms(diff, fixed, extra, tol, floor, scale, abs_b) -> tuple:
    """(allowed, within, threshold) where the noise floor f (relative to ``scale``) is
    measured: the absolute term of the tolerance is min(atol·s, TIGHTEN·f·s); an element
    beyond that but within WITHIN_NOISE·f·s, where f·s exceeds the fixed tolerance, agrees
    within noise; ``threshold``, the difference above which an element is flagged."""
    absolute = np.minimum(tol.atol * scale, TIGHTEN * floor * scale)
    allowed = tol.rtol * abs_b + absolute + extra
    noisy = floor * scale > fixed
    band = WITHIN_NOISE * floor * scale + extra
    within = (diff > allowed) & (diff <= band) & noisy
    return allowed, within, np.where(noisy, np.maximum(allowed, band), allowed)


def _digits(floor: float, eps: float) -> float:
    """The significant digits a noise floor f leaves: −log10 f, between 0 and the dtype's
    own, −log10 ε (15.7 in float64, 6.9 in float32)."""
    return float(min(max(-math.log10(max(floor, eps)), 0.0), -math.log10(eps)))


def _verdict(bad, unresolved, within) -> str:
    if bad.any():
        return "disagree"
    if unresolved.any():
        return "inconclusive"
    return "agree within noise" if within.any() else "agree"


def _within_reason(n_within: int, n: int, floor: float, digits: float) -> str:
    good = (f"the references are good to {digits:.1f} digits there" if digits >= 1 else
            "the references have no significant digit there: nothing can be checked")  # fmt: skip
    return (
        f"{n_within}/{n} elements differ beyond the tolerance, within {WITHIN_NOISE:g}× the "
        f"problem's own rounding noise ({floor:.1e} of the scale): the problem, not a backend, "
        f"limits the agreement; {good}"
    )


def _detects(threshold, abs_b) -> dict[str, float]:
    """The smallest relative error of one element that would be flagged, (the difference
    allowed there) / |b_i|, over the nonzero elements: median and worst."""
    nonzero = abs_b > 0
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # subnormal |b_i|: inf
        detects = np.asarray(threshold)[nonzero] / abs_b[nonzero]
    if not detects.size:
        return {"detects_rel_median": math.nan, "detects_rel_worst": math.nan}
    return {"detects_rel_median": float(np.median(detects)),
            "detects_rel_worst": float(np.max(detects))}  # fmt: skip


def _factor(a: np.ndarray, b: np.ndarray, norm_b: float) -> tuple[float, float]:
    """The c that makes c·b closest to a (least squares, c = ⟨a, b⟩/⟨b, b⟩) and how far a
    is from it, ‖a − c·b‖/‖b‖: a gradient off by one constant factor has a residual of 0."""
    if not (norm_b > 0 and math.isfinite(norm_b)) or not np.all(np.isfinite(a)):
        return math.nan, math.nan
    m = float(np.max(np.abs(b)))
    a_, b_ = (a / m).ravel(), (b / m).ravel()
    c = float(np.dot(a_, b_) / np.dot(b_, b_))
    return c, l2_norm(a_ - c * b_) / l2_norm(b_)


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
            "verdict": "failed",
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
        allowed, within, threshold = _noise_terms(diff, fixed, probe.errors, tol, floor, scale,
                                                  np.abs(expected))  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.where(np.isfinite(probe.values), diff / allowed, np.inf)
        unresolved = ~(probe.errors <= RESOLVE * scale)
    bad = (ratio > 1) & ~unresolved & ~within
    within &= ~unresolved
    with np.errstate(invalid="ignore"):
        rel = diff / scale
    worst = int(_worst(rel, bad, unresolved, np.isfinite(probe.values) & np.isfinite(expected))[0])
    verdict = _verdict(bad, unresolved, within)
    reason = ""
    if verdict == "inconclusive":
        reason = (
            f"the oracle cannot resolve {int(unresolved.sum())}/{len(probe.values)} directions: "
            f"its error estimate exceeds {RESOLVE:g} of ‖b‖ (the loss is too curved for its "
            "step); the other directions agree"
        )
    digits = math.nan if floor is None else _digits(floor, eps)
    if verdict == "agree within noise":
        reason = _within_reason(int(within.sum()), len(diff), float(floor), digits)
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
        "verdict": verdict,
        "ok": verdict in AGREEING,
        "reason": reason,
        "error": "",
    }


def _pick_baseline(results: list[Result], baseline: str) -> Result | None:
    by_name = {r.backend: r for r in results}
    if baseline in by_name and by_name[baseline].ok and not by_name[baseline].directional:
        return by_name[baseline]
    usable = [r for r in results if r.ok and not r.directional]
    return next((r for r in usable if kind_of(r) == "autodiff"), usable[0] if usable else None)


def case_noise(results: list[Result]) -> dict[tuple[str, str], np.ndarray]:
    """The noise floor's spreads of one case, per tensor: the largest over the references
    that measured it (``harness.noise``; a plug-in's Result carries none). The noise is
    the problem's, not a backend's: every pair of backends is judged against it."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for r in results:
        for key, spread in r.noise.items():
            spread = np.asarray(spread, dtype=np.float64)
            if key not in out:
                out[key] = spread
            elif out[key].shape == spread.shape:
                out[key] = np.maximum(out[key], spread)
    return out


def _pair(x: Result, y: Result, key, tolerances, noise: dict | None = None) -> dict[str, Any]:
    """Compare tensor ``key`` of x against y (y as the expected side), against the case's
    noise (``case_noise``) where it was measured."""
    spread = (noise or {}).get(key)
    tol = tolerance_for(kind_of(x), kind_of(y), y.dtype, tolerances)
    if key in x.directional or key in y.directional:
        full, probe = (y, x) if key in x.directional else (x, y)
        if key not in full.tensors():
            return {
                "verdict": "failed",
                "ok": False,
                "error": f"{full.backend} returned no {key[0]} {key[1]!r}",
            }
        out = compare_directional(full.tensors()[key], probe.directional[key], tol, y.dtype,
                                  spread)  # fmt: skip
        out.update(rtol=tol.rtol, atol=tol.atol)
        return out
    got, expected = x.tensors().get(key), y.tensors().get(key)
    if got is None:
        return {
            "verdict": "failed",
            "ok": False,
            "error": f"{x.backend} returned no {key[0]} {key[1]!r}",
        }
    unc = x.uncertainty.get(key)
    if unc is None:
        unc = y.uncertainty.get(key)
    stepped = key[0] == "tap" and (y.tap_steps or x.tap_steps).get(key[1]) is not None
    out = compare_arrays(got, expected, tol, y.dtype, unc, stepped, spread)
    out.update(rtol=tol.rtol, atol=tol.atol)
    return out


def _odd_one_out(results: list[Result], key, tolerances, noise: dict | None = None) -> str:
    """With three or more backends: the one that disagrees with every other while all
    the others agree among themselves ("" if there is no such single backend)."""
    have = [r for r in results if r.ok and (key in r.tensors() or key in r.directional)]
    if len(have) < 3:
        return ""
    verdicts = {
        (x.backend, y.backend): _pair(x, y, key, tolerances, noise).get("verdict", "failed")
        for x, y in combinations(have, 2)
    }
    for suspect in have:
        against = [v for (p, q), v in verdicts.items() if suspect.backend in (p, q)]
        others = [v for (p, q), v in verdicts.items() if suspect.backend not in (p, q)]
        if all(v == "disagree" for v in against) and not any(v in FLAGGED for v in others):
            return suspect.backend
    return ""


def agreement(
    results: list[Result], baseline: str = DEFAULT_BASELINE, tolerances: dict | None = None
) -> pd.DataFrame:
    """One row per case × mode × tensor × backend (other than the baseline), in a stable
    order. In mode "hvp" a case whose loss has kinks (relu) is marked: its second
    derivative does not exist at them, so the rows say so, and are not failed when the
    backends part there."""
    rows = []
    for case, mode in dict.fromkeys((r.case, r.mode) for r in results):
        group = [r for r in results if r.case == case and r.mode == mode and r.skipped is None]
        kinked = mode == "hvp" and not all(r.smooth for r in group)
        base = _pick_baseline(group, baseline)
        if base is None:
            for r in group:
                error = (
                    r.error
                    if r.backend == BUILD
                    else f"no backend succeeded; {r.backend}: {r.error}"
                )
                rows.append({"case": case, "mode": mode, "kind": "loss", "tensor": "loss",
                             "backend": r.backend,
                             "baseline": baseline, "dtype": r.dtype, "verdict": "failed",
                             "ok": False, "error": error})  # fmt: skip
            continue
        keys = list(base.tensors())
        noise = case_noise(group)
        odd = {key: _odd_one_out(group, key, tolerances, noise) for key in keys}
        for r in group:
            if r is base:
                continue
            extra = [k for k in r.tensors() if k not in base.tensors()] if r.ok else []
            for key in keys + extra:
                row = {"case": case, "mode": mode, "kind": key[0], "tensor": key[1],
                       "backend": r.backend,
                       "baseline": base.backend, "dtype": base.dtype,
                       "shape": str(tuple(np.shape(base.tensors().get(key, r.tensors().get(key))))),
                       "odd_one_out": odd.get(key, "")}  # fmt: skip
                if r.unsupported is not None:
                    row.update(verdict="unsupported", ok=False,
                               error=f"{r.backend} unsupported: {r.unsupported}")  # fmt: skip
                elif not r.ok:
                    row.update(verdict="failed", ok=False, error=f"{r.backend} failed: {r.error}")
                elif key in extra:
                    row.update(verdict="failed", ok=False,
                               error=f"{r.backend} returned an extra {key[0]} {key[1]!r}")  # fmt: skip
                else:
                    row.update(_pair(r, base, key, tolerances, noise))
                    if kinked:
                        row.update(_kinked(row))
                rows.append(row)
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def _kinked(row: dict) -> dict:
    """A row of H·v on a loss with kinks: compared where the second derivative exists (the
    autodiff backends all take relu'' = 0), marked, and not failed where they part."""
    note = f"marked: {M.NO_SECOND}"
    if row["verdict"] == "disagree":
        return {"verdict": "inconclusive", "ok": False,
                "reason": f"{note}; the backends part here ({row.get('reason') or 'see the metrics'})"}  # fmt: skip
    return {"reason": "; ".join(filter(None, [row.get("reason", ""), note]))}


IDENTITY_COLUMNS = ["case", "mode", "backend", "dtype", "identity", "lhs", "rhs", "scale",
                    "rel_err", "rtol", "verdict", "ok", "reason"]  # fmt: skip


def identities(results: list[Result], tolerances: dict | None = None) -> pd.DataFrame:
    """One row per case × mode × backend whose Result holds an identity (``harness.modes``):
    "agree" when its two sides are equal to the dtype's rounding, else "disagree" — that
    backend's forward and reverse modes (or its H·v and H·w) cannot both be right. A
    backend without the other side (a plug-in that supplies a JVP alone) has no row."""
    rows = []
    for r in results:
        if r.mode == "rev" or not r.ok or r.identity is None:
            continue
        row = {"case": r.case, "mode": r.mode, "backend": r.backend, "dtype": r.dtype}
        row.update(M.judge(r.identity, r.dtype, tolerances), reason="")
        if not row["ok"]:
            sides = (
                ("J_L·u (fwd)", "⟨∇L, u⟩ (rev)") if r.mode == "fwd" else ("⟨w, H·v⟩", "⟨v, H·w⟩")
            )
            row["reason"] = (f"{r.backend}'s {sides[0]} = {r.identity.lhs:.17g} but "
                             f"{sides[1]} = {r.identity.rhs:.17g}: its two sides cannot both be right")  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=IDENTITY_COLUMNS)


RUN_COLUMNS = [
    "case",
    "mode",
    "backend",
    "dtype",
    "status",
    "method",
    "loss",
    "seconds",
    "compile_seconds",
    "error",
]


def runs(results: list[Result]) -> pd.DataFrame:
    """One row per case × mode × backend: did it run, how long it took, why it failed."""
    rows = [
        {
            "case": r.case,
            "mode": r.mode,
            "backend": r.backend,
            "dtype": r.dtype,
            "status": "failed"
            if r.error
            else "skipped"
            if r.skipped
            else "unsupported"
            if r.unsupported
            else "ok",
            "method": r.method,
            "loss": r.loss,
            "seconds": r.seconds,
            "compile_seconds": r.compile_seconds,
            "error": r.error or r.skipped or r.unsupported or "",
        }  # fmt: skip
        for r in results
    ]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


MAGNITUDE_COLUMNS = ["case", "backend", "tap", "step", "norm"]
_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


def magnitudes(results: list[Result]) -> pd.DataFrame:
    """One row per case × backend × tap × step: ‖dL/d(tap)‖₂.

    A tap inside a scan gives one row per step t = 0..T−1. A tap outside any scan named
    ``name[k]`` (a layer or a stage: ``h[2]``, ``s[7]``) gives tap ``name``, step k;
    any other gives step −1. Exact zeros (a gradient that underflowed) stay 0.0.
    """
    rows = []
    for r in results:
        if not r.ok or r.mode != "rev":
            continue
        for name, g in r.taps.items():
            if r.tap_steps.get(name) is not None:
                norms = l2_norm(np.reshape(g, (len(g), -1)), axis=1)
                rows += [(r.case, r.backend, name, t, float(n)) for t, n in enumerate(norms)]
                continue
            indexed = _INDEXED.match(name)
            tap, step = (indexed[1], int(indexed[2])) if indexed else (name, -1)
            rows.append((r.case, r.backend, tap, step, l2_norm(g)))
    return pd.DataFrame(rows, columns=MAGNITUDE_COLUMNS)


@dataclass
class Comparison:
    """Everything one run produced: the raw Results and the tidy tables made from them."""

    results: list[Result]
    baseline: str
    cases: list[Any] = field(default_factory=list)  # the Case instances, for the theory
    agreement: pd.DataFrame = field(init=False)
    runs: pd.DataFrame = field(init=False)
    magnitudes: pd.DataFrame = field(init=False)
    summaries: pd.DataFrame = field(init=False)
    identities: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.agreement = agreement(self.results, self.baseline)
        self.identities = identities(self.results)
        self.runs = runs(self.results)
        self.magnitudes = magnitudes(self.results)
        self.summaries = theory.summaries(self.magnitudes, self.cases)

    @property
    def compared(self) -> int:
        """How many tensors were compared at all (``COMPARED``): 0 when every backend but
        the baseline was skipped or unsupported, or none ran beside it."""
        return int(compared(self.agreement).sum())

    @property
    def all_agree(self) -> bool:
        """True when something was compared, every comparison agreed, every identity held
        and no backend failed."""
        return (self.compared > 0 and bool(self.agreement["ok"].all())
                and bool(self.identities["ok"].all())
                and not (self.runs["status"] == "failed").any())  # fmt: skip

    @property
    def verdicts(self) -> dict[str, int]:
        """How many tensors ended in each verdict (``VERDICTS``)."""
        counts = self.agreement["verdict"].value_counts()
        return {v: int(counts.get(v, 0)) for v in VERDICTS}

    @property
    def exit_code(self) -> int:
        """1 when a tensor disagrees, an identity is broken, a backend failed or nothing
        was compared (a success not earned), else 0 — an oracle that could not resolve a
        tensor (inconclusive) alone does not fail the run."""
        failed = bool(flagged(self.agreement).any()) or bool(flagged(self.identities).any())
        failed = failed or bool((self.runs["status"] == "failed").any())
        return 1 if failed or self.compared == 0 else 0
