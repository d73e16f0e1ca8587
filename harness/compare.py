"""Comparison: Results in, tidy tables out. Nothing here runs a backend; it reads Results
(and, for the theory beside the magnitudes, the cases' options).

- ``agreement``: one row per case × tensor × backend, against a baseline backend, each
  with exactly one verdict (``VERDICTS``);
- ``runs``: one row per case × backend (status, timings, mode, error);
- ``magnitudes``: one row per case × backend × tap × step (the gradient norm).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from harness import theory
from harness.result import BUILD, Directional, Result
from harness.tolerances import Tolerance, tolerance_for

AGREEMENT_COLUMNS = [
    "case", "kind", "tensor", "backend", "baseline", "dtype", "shape",
    "max_abs_err", "max_rel_err", "rel_l2_err", "cosine", "worst_index", "worst_got",
    "worst_expected", "n_bad", "n_unresolved", "n_elements", "bad_steps", "factor",
    "factor_residual", "rtol", "atol", "verdict", "ok", "odd_one_out", "reason", "error",
]  # fmt: skip

# Every row ends in one of these. "inconclusive": an oracle (finite differences) whose
# own error estimate is too large to judge some elements, and no element it can judge
# disagrees; "failed": nothing to compare (a backend failed, a tensor is missing).
VERDICTS = ("agree", "disagree", "inconclusive", "failed")
FLAGGED = ("disagree", "failed")  # what makes a run fail (exit 1); inconclusive alone does not

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


def flagged(table: pd.DataFrame) -> pd.Series:
    """The rows that fail a run: a disagreement or a failure."""
    return table["verdict"].isin(FLAGGED)


def kind_of(result: Result) -> str:
    return "autodiff" if result.mode == "autodiff" else "numeric"


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
) -> dict[str, Any]:
    """Agreement metrics of ``got`` against ``expected`` (see ``harness.tolerances``).

    max_rel_err = max_i |a_i − b_i| / s_i — the largest error relative to the tensor's own
    scale s = max |b| (per step when ``stepped``), so an element near zero neither blows it
    up nor hides; rel_l2_err = ‖a − b‖/‖b‖; cosine = ⟨a, b⟩/(‖a‖‖b‖). ``stepped``: axis 0
    indexes unroll steps, and each step is judged against its own scale.

    ``uncertainty`` (an oracle's error estimate u_i): an element with u_i > RESOLVE·s_i is
    unresolved and not judged. The verdict is "disagree" when a judged element lies
    outside the tolerance, else "inconclusive" when some element is unresolved, else "agree".
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
    abs_b = np.abs(b)
    if stepped and b.ndim >= 1:  # a scalar per step (shape (T,)) is its own scale
        scale = np.max(abs_b, axis=tuple(range(1, b.ndim)), keepdims=True) if b.ndim > 1 else abs_b
    else:
        scale = np.max(abs_b, initial=0.0)
    scale = np.maximum(scale, tiny)
    diff = np.abs(a - b)
    # Below tiny/ε (≈1e-292 in float64) a value's terms are subnormal: backends that flush
    # subnormals to zero (XLA on the CPU) differ there legitimately, so nothing is judged.
    allowed = tol.rtol * abs_b + tol.atol * scale + tiny / float(np.finfo(dtype).eps)
    if uncertainty is not None:
        allowed = allowed + np.asarray(uncertainty, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.where(np.isfinite(a) & np.isfinite(b), diff / allowed, np.inf)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        rel = diff / scale
    bad = ratio > 1
    unresolved = np.zeros(b.shape, dtype=bool)
    if uncertainty is not None:
        u = np.broadcast_to(np.asarray(uncertainty, dtype=np.float64), b.shape)
        with np.errstate(invalid="ignore"):
            unresolved = ~(u <= RESOLVE * scale)  # NaN (no estimate) is unresolved too
        bad &= ~unresolved
    judged = np.where(unresolved, -np.inf, ratio) if unresolved.any() and bad.any() else ratio
    worst = np.unravel_index(int(np.argmax(judged)), ratio.shape) if ratio.size else ()
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
    verdict = "disagree" if bad.any() else "inconclusive" if unresolved.any() else "agree"
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
    return {
        "max_abs_err": float(np.max(diff, initial=0.0)),
        "max_rel_err": float(np.max(rel, initial=0.0)),
        "rel_l2_err": rel_l2,
        "cosine": cosine,
        "worst_index": str(tuple(int(i) for i in worst)),
        "worst_got": float(a[worst]) if a.size else math.nan,
        "worst_expected": float(b[worst]) if b.size else math.nan,
        "n_bad": int(bad.sum()),
        "n_unresolved": int(unresolved.sum()),
        "n_elements": int(b.size),
        "bad_steps": bad_steps,
        "factor": factor,
        "factor_residual": factor_residual,
        "verdict": verdict,
        "ok": verdict == "agree",
        "reason": reason,
        "error": "",
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


def compare_directional(
    full: Any, probe: Directional, tol: Tolerance, dtype: str = "float64"
) -> dict[str, Any]:
    """A full gradient b against directional derivatives d_j ≈ ⟨b, v_j⟩ (unit v_j).

    Direction j agrees when |d_j − ⟨b, v_j⟩| ≤ rtol·|⟨b, v_j⟩| + atol·‖b‖ + err_j: the
    scale of a projection on a unit vector is ‖b‖. max_rel_err = rel_l2_err =
    max_j |d_j − ⟨b, v_j⟩|/‖b‖ (a lower bound of ‖a − b‖/‖b‖); cosine does not exist here
    and is NaN; worst_index names the direction. A direction whose error estimate exceeds
    RESOLVE·‖b‖ is unresolved (see ``compare_arrays``).
    """
    b = np.asarray(full, dtype=np.float64)
    if probe.directions.shape[1:] != b.shape:
        return {
            "verdict": "failed",
            "ok": False,
            "error": f"directions of shape {probe.directions.shape[1:]} for a tensor of shape {b.shape}",
        }
    expected = probe.directions.reshape(len(probe.values), -1) @ b.ravel()
    scale = max(l2_norm(b), float(np.finfo(dtype).tiny))
    diff = np.abs(probe.values - expected)
    allowed = tol.rtol * np.abs(expected) + tol.atol * scale + probe.errors
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.where(np.isfinite(probe.values), diff / allowed, np.inf)
        unresolved = ~(probe.errors <= RESOLVE * scale)
    bad = (ratio > 1) & ~unresolved
    worst = int(np.argmax(np.where(unresolved, -np.inf, ratio) if bad.any() else ratio))
    verdict = "disagree" if bad.any() else "inconclusive" if unresolved.any() else "agree"
    reason = ""
    if verdict == "inconclusive":
        reason = (
            f"the oracle cannot resolve {int(unresolved.sum())}/{len(probe.values)} directions: "
            f"its error estimate exceeds {RESOLVE:g} of ‖b‖ (the loss is too curved for its "
            "step); the other directions agree"
        )
    return {
        "max_abs_err": float(diff.max()),
        "max_rel_err": float(diff.max() / scale),
        "rel_l2_err": float(diff.max() / scale),  # |⟨a − b, v⟩|/‖b‖ ≤ ‖a − b‖/‖b‖
        "cosine": math.nan,
        "worst_index": f"direction {worst}",
        "worst_got": float(probe.values[worst]),
        "worst_expected": float(expected[worst]),
        "n_bad": int(bad.sum()),
        "n_unresolved": int(unresolved.sum()),
        "n_elements": len(probe.values),
        "bad_steps": "",
        "verdict": verdict,
        "ok": verdict == "agree",
        "reason": reason,
        "error": "",
    }


def _pick_baseline(results: list[Result], baseline: str) -> Result | None:
    by_name = {r.backend: r for r in results}
    if baseline in by_name and by_name[baseline].ok and not by_name[baseline].directional:
        return by_name[baseline]
    usable = [r for r in results if r.ok and not r.directional]
    return next((r for r in usable if kind_of(r) == "autodiff"), usable[0] if usable else None)


def _pair(x: Result, y: Result, key, tolerances) -> dict[str, Any]:
    """Compare tensor ``key`` of x against y (y as the expected side)."""
    tol = tolerance_for(kind_of(x), kind_of(y), y.dtype, tolerances)
    if key in x.directional or key in y.directional:
        full, probe = (y, x) if key in x.directional else (x, y)
        if key not in full.tensors():
            return {
                "verdict": "failed",
                "ok": False,
                "error": f"{full.backend} returned no {key[0]} {key[1]!r}",
            }
        out = compare_directional(full.tensors()[key], probe.directional[key], tol, y.dtype)
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
    stepped = key[0] == "tap" and y.tap_steps.get(key[1]) is not None
    out = compare_arrays(got, expected, tol, y.dtype, unc, stepped)
    out.update(rtol=tol.rtol, atol=tol.atol)
    return out


def _odd_one_out(results: list[Result], key, tolerances) -> str:
    """With three or more backends: the one that disagrees with every other while all
    the others agree among themselves ("" if there is no such single backend)."""
    have = [r for r in results if r.ok and (key in r.tensors() or key in r.directional)]
    if len(have) < 3:
        return ""
    verdicts = {
        (x.backend, y.backend): _pair(x, y, key, tolerances).get("verdict", "failed")
        for x, y in combinations(have, 2)
    }
    for suspect in have:
        against = [v for (p, q), v in verdicts.items() if suspect.backend in (p, q)]
        others = [v for (p, q), v in verdicts.items() if suspect.backend not in (p, q)]
        if all(v == "disagree" for v in against) and not any(v in FLAGGED for v in others):
            return suspect.backend
    return ""


def agreement(
    results: list[Result], baseline: str = "torch", tolerances: dict | None = None
) -> pd.DataFrame:
    """One row per case × tensor × backend (other than the baseline), in a stable order."""
    rows = []
    for case in dict.fromkeys(r.case for r in results):
        group = [r for r in results if r.case == case and r.skipped is None]
        base = _pick_baseline(group, baseline)
        if base is None:
            for r in group:
                error = (
                    r.error
                    if r.backend == BUILD
                    else f"no backend succeeded; {r.backend}: {r.error}"
                )
                rows.append({"case": case, "kind": "loss", "tensor": "loss", "backend": r.backend,
                             "baseline": baseline, "dtype": r.dtype, "verdict": "failed",
                             "ok": False, "error": error})  # fmt: skip
            continue
        keys = list(base.tensors())
        odd = {key: _odd_one_out(group, key, tolerances) for key in keys}
        for r in group:
            if r is base:
                continue
            extra = [k for k in r.tensors() if k not in base.tensors()] if r.ok else []
            for key in keys + extra:
                row = {"case": case, "kind": key[0], "tensor": key[1], "backend": r.backend,
                       "baseline": base.backend, "dtype": base.dtype,
                       "shape": str(tuple(np.shape(base.tensors().get(key, r.tensors().get(key))))),
                       "odd_one_out": odd.get(key, "")}  # fmt: skip
                if not r.ok:
                    row.update(verdict="failed", ok=False, error=f"{r.backend} failed: {r.error}")
                elif key in extra:
                    row.update(verdict="failed", ok=False,
                               error=f"{r.backend} returned an extra {key[0]} {key[1]!r}")  # fmt: skip
                else:
                    row.update(_pair(r, base, key, tolerances))
                rows.append(row)
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


RUN_COLUMNS = [
    "case",
    "backend",
    "dtype",
    "status",
    "mode",
    "loss",
    "seconds",
    "compile_seconds",
    "error",
]


def runs(results: list[Result]) -> pd.DataFrame:
    """One row per case × backend: did it run, how long it took, and why it failed."""
    rows = [
        {
            "case": r.case,
            "backend": r.backend,
            "dtype": r.dtype,
            "status": "failed" if r.error else "skipped" if r.skipped else "ok",
            "mode": r.mode,
            "loss": r.loss,
            "seconds": r.seconds,
            "compile_seconds": r.compile_seconds,
            "error": r.error or r.skipped or "",
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
        if not r.ok:
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

    def __post_init__(self) -> None:
        self.agreement = agreement(self.results, self.baseline)
        self.runs = runs(self.results)
        self.magnitudes = magnitudes(self.results)
        self.summaries = theory.summaries(self.magnitudes, self.cases)

    @property
    def all_agree(self) -> bool:
        """True when every comparison agreed and no backend failed."""
        return bool(self.agreement["ok"].all()) and not (self.runs["status"] == "failed").any()

    @property
    def verdicts(self) -> dict[str, int]:
        """How many tensors ended in each verdict (``VERDICTS``)."""
        counts = self.agreement["verdict"].value_counts()
        return {v: int(counts.get(v, 0)) for v in VERDICTS}

    @property
    def exit_code(self) -> int:
        """1 when a tensor disagrees or a backend failed, else 0 — an oracle that could
        not resolve a tensor (inconclusive) alone does not fail the run."""
        failed = bool(flagged(self.agreement).any())
        return 1 if failed or (self.runs["status"] == "failed").any() else 0
