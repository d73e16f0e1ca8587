"""Comparison: Results in, tidy tables out. Nothing here runs a backend.

- ``agreement``: one row per case × tensor × backend, against a baseline backend;
- ``runs``: one row per case × backend (status, timings, mode, error);
- ``magnitudes``: one row per case × backend × tap × step (the gradient norm).
"""

from __future__ import annotations

import math
import re
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from harness.result import BUILD, Directional, Result
from harness.tolerances import Tolerance, tolerance_for

AGREEMENT_COLUMNS = [
    "case", "kind", "tensor", "backend", "baseline", "dtype", "shape",
    "max_abs_err", "max_rel_err", "rel_l2_err", "cosine", "worst_index", "worst_got",
    "worst_expected", "n_bad", "n_elements", "bad_steps", "rtol", "atol", "ok",
    "odd_one_out", "error",
]  # fmt: skip


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
    """
    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return {"ok": False, "error": f"shape {a.shape} where {b.shape} was expected"}
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
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else ()
    norm_a, norm_b = l2_norm(a), l2_norm(b)
    if norm_b > 0:
        rel_l2 = l2_norm(a - b) / norm_b
    else:
        rel_l2 = 0.0 if norm_a == 0 else math.inf
    if norm_a > 0 and norm_b > 0:
        cosine = float(np.dot((a / norm_a).ravel(), (b / norm_b).ravel()))
    else:
        cosine = 1.0 if norm_a == norm_b else 0.0
    bad_steps = ""
    if stepped and b.ndim >= 1 and bad.any():
        bad_steps = _ranges(np.flatnonzero(bad.reshape(len(b), -1).any(axis=1)))
    return {
        "max_abs_err": float(np.max(diff, initial=0.0)),
        "max_rel_err": float(np.max(rel, initial=0.0)),
        "rel_l2_err": rel_l2,
        "cosine": cosine,
        "worst_index": str(tuple(int(i) for i in worst)),
        "worst_got": float(a[worst]) if a.size else math.nan,
        "worst_expected": float(b[worst]) if b.size else math.nan,
        "n_bad": int(bad.sum()),
        "n_elements": int(b.size),
        "bad_steps": bad_steps,
        "ok": bool(not bad.any()),
        "error": "",
    }


def compare_directional(
    full: Any, probe: Directional, tol: Tolerance, dtype: str = "float64"
) -> dict[str, Any]:
    """A full gradient b against directional derivatives d_j ≈ ⟨b, v_j⟩ (unit v_j).

    Direction j agrees when |d_j − ⟨b, v_j⟩| ≤ rtol·|⟨b, v_j⟩| + atol·‖b‖ + err_j: the
    scale of a projection on a unit vector is ‖b‖. max_rel_err = rel_l2_err =
    max_j |d_j − ⟨b, v_j⟩|/‖b‖ (a lower bound of ‖a − b‖/‖b‖); cosine does not exist here
    and is NaN; worst_index names the direction.
    """
    b = np.asarray(full, dtype=np.float64)
    if probe.directions.shape[1:] != b.shape:
        return {
            "ok": False,
            "error": f"directions of shape {probe.directions.shape[1:]} for a tensor of shape {b.shape}",
        }
    expected = probe.directions.reshape(len(probe.values), -1) @ b.ravel()
    scale = max(l2_norm(b), float(np.finfo(dtype).tiny))
    diff = np.abs(probe.values - expected)
    allowed = tol.rtol * np.abs(expected) + tol.atol * scale + probe.errors
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = np.where(np.isfinite(probe.values), diff / allowed, np.inf)
    worst = int(np.argmax(ratio))
    bad = ratio > 1
    return {
        "max_abs_err": float(diff.max()),
        "max_rel_err": float(diff.max() / scale),
        "rel_l2_err": float(diff.max() / scale),  # |⟨a − b, v⟩|/‖b‖ ≤ ‖a − b‖/‖b‖
        "cosine": math.nan,
        "worst_index": f"direction {worst}",
        "worst_got": float(probe.values[worst]),
        "worst_expected": float(expected[worst]),
        "n_bad": int(bad.sum()),
        "n_elements": len(probe.values),
        "bad_steps": "",
        "ok": bool(not bad.any()),
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
            return {"ok": False, "error": f"{full.backend} returned no {key[0]} {key[1]!r}"}
        out = compare_directional(full.tensors()[key], probe.directional[key], tol, y.dtype)
        out.update(rtol=tol.rtol, atol=tol.atol)
        return out
    got, expected = x.tensors().get(key), y.tensors().get(key)
    if got is None:
        return {"ok": False, "error": f"{x.backend} returned no {key[0]} {key[1]!r}"}
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
    ok = {
        (x.backend, y.backend): _pair(x, y, key, tolerances)["ok"] for x, y in combinations(have, 2)
    }
    for suspect in have:
        against = [v for (p, q), v in ok.items() if suspect.backend in (p, q)]
        others = [v for (p, q), v in ok.items() if suspect.backend not in (p, q)]
        if not any(against) and all(others):
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
                             "baseline": baseline, "dtype": r.dtype, "ok": False,
                             "error": error})  # fmt: skip
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
                    row.update(ok=False, error=f"{r.backend} failed: {r.error}")
                elif key in extra:
                    row.update(ok=False, error=f"{r.backend} returned an extra {key[0]} {key[1]!r}")
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
