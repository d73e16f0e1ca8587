"""float32 against float64 as a computation grows: one unroll (or the deep chain) at a few
lengths, on one backend, in both dtypes, from the same inputs rounded.

This runs a backend (via ``compare_backends``), so it sits below the commands and above
nothing the report needs: the report is handed the table this makes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from harness.cases import Case
from harness.compare import compare_arrays
from harness.runner import compare_backends
from harness.tolerances import tolerance_for

DRIFT_LENGTHS = (8, 16, 32, 64, 128, 256, 512)
DRIFT_BACKEND = "torch"


def drift_case(cases: list[Case]) -> tuple[Case, str] | None:
    """The case to grow and its length option: the first unroll (as its family declares)
    with ``T``, else the first case with ``K`` (the deep chain's number of stages)."""
    for case in cases:
        if case.declaration.unroll and "T" in case.options:
            return case, "T"
    return next(((c, "K") for c in cases if "K" in c.options), None)


def drift_runs(cases: list[Case], backends: list[str]) -> int:
    """How many backend runs ``dtype_drift`` will make (for the progress bar)."""
    return 2 * len(DRIFT_LENGTHS) if DRIFT_BACKEND in backends and drift_case(cases) else 0


def dtype_drift(cases: list[Case], seed: int, progress: Any = None) -> pd.DataFrame:
    """max_rel_err and rel_l2_err of float32 against float64 on ``DRIFT_BACKEND``, for the
    drift case at each length in DRIFT_LENGTHS; the worst over the case's taps. Also
    ``underflowed``: how many tapped gradient elements are exactly 0 in float32 but not
    in float64."""
    chosen = drift_case(cases)
    if chosen is None:
        return pd.DataFrame()
    case, option = chosen
    changed = {k: v for k, v in case.cfg.items() if v != case.options[k] and k != option}
    tol = tolerance_for("autodiff", "autodiff", "float32")
    rows = []
    for length in DRIFT_LENGTHS:
        variant = type(case)(**changed, **{option: length})
        results = {
            dtype: compare_backends(
                [variant], [DRIFT_BACKEND], dtype, seed, DRIFT_BACKEND, progress
            ).results[0]
            for dtype in ("float64", "float32")
        }
        r64, r32 = results["float64"], results["float32"]
        row = {
            "case": case.name,
            "option": option,
            "length": length,
            "backend": DRIFT_BACKEND,
            "max_rel_err": math.nan,
            "rel_l2_err": math.nan,
            "underflowed": 0,
            "error": r64.error or r32.error or "",
        }
        if r64.ok and r32.ok and r64.taps:
            errors = [
                compare_arrays(
                    r32.taps[t], g, tol, "float32", stepped=r64.tap_steps.get(t) is not None
                )
                for t, g in r64.taps.items()
            ]
            row["max_rel_err"] = max(e["max_rel_err"] for e in errors)
            row["rel_l2_err"] = max(e["rel_l2_err"] for e in errors)
            row["underflowed"] = sum(
                int(np.sum((np.asarray(r32.taps[t]) == 0) & (np.asarray(g) != 0)))
                for t, g in r64.taps.items()
            )
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["DRIFT_BACKEND", "DRIFT_LENGTHS", "drift_case", "drift_runs", "dtype_drift"]
