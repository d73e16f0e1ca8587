"""Gradient magnitudes against theory: a summary per unroll and per deep network.

Reads the magnitudes table (case, backend, tap, step, norm) and the cases' options;
never recomputes a gradient.

Unrolls (Elman, LSTM, GRU): with n_t = ‖dL/dh_t‖, t = 0..T−1,
- ``rate``: the fitted factor per step back from T, exp(slope) of a least-squares line
  through log n_t against (T−1−t), over the steps where n_t > 0 (exact zeros are
  underflow, left out and counted in ``zeros``);
- ``first_over_last``: n_0 / n_{T−1} (0.0 when n_0 underflowed to exactly 0);
- ``theory_rate`` for the Elman RNN: σ_max(W_h)·γ, γ = max φ' (1 for tanh, 1/4 for
  sigmoid). Pascanu, Mikolov & Bengio (2013, "On the difficulty of training recurrent
  neural networks", §2.1): with the loss on the last step, dh_t = (dh_{t+1} ⊙ φ'(a_{t+1})) W_hᵀ,
  so n_t ≤ (σ_max·γ)^(T−1−t) · n_{T−1}: below 1 the gradient must vanish (a sufficient
  condition); above 1 it may explode. No such bound is stated for LSTM and GRU.

Deep MLPs (taps h[l]): ``rate`` is the mean over layers of the variance ratio
Var(dL/dh_{l−1}) / Var(dL/dh_l), variances estimated as n²/size. ``theory_rate`` is
fan_out·Var(W) of the init in the linear regime (Glorot & Bengio 2010, "Understanding
the difficulty of training deep feedforward neural networks", §4.2.1): 1/3 for the
standard U(±1/√fan_in) with equal widths, 2·fan_out/(fan_in+fan_out) = 1 for Glorot's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

GAMMA = {"tanh": 1.0, "sigmoid": 0.25}
SUMMARY_COLUMNS = [
    "case", "backend", "tap", "steps", "rate", "first_over_last", "zeros",
    "theory_rate", "theory",
]  # fmt: skip


def fitted_rate(norms: np.ndarray) -> float:
    """exp(slope) of log n against steps back from the end, over the nonzero n."""
    back = np.arange(len(norms))[::-1].astype(float)
    keep = norms > 0
    if keep.sum() < 2:
        return math.nan
    slope = np.polyfit(back[keep], np.log(norms[keep]), 1)[0]
    return float(np.exp(slope))


def elman_bound(case: Any) -> float:
    """σ_max(W_h)·γ for an Elman case (its option ``sigma`` is σ_max exactly)."""
    return float(case.cfg["sigma"]) * GAMMA[case.cfg["act"]]


def mlp_layer_gain(case: Any) -> float:
    """fan_out·Var(W) of the hidden layers' init (equal widths): the linear-regime factor
    by which Var(dL/dh) shrinks (< 1) or stays (≈ 1) per layer back."""
    width = case.cfg["width"]
    var = 1 / (3 * width) if case.cfg["init"] == "standard" else 2 / (2 * width)
    return width * var


def _unroll_row(case: Any, norms: np.ndarray) -> dict[str, Any]:
    first, last = norms[0], norms[-1]
    row = {
        "steps": len(norms),
        "rate": fitted_rate(norms),
        "first_over_last": float(first / last) if last > 0 else math.nan,
        "zeros": int((norms == 0).sum()),
        "theory_rate": math.nan,
        "theory": "",
    }
    if case is not None and case.family == "elman":
        bound = elman_bound(case)
        row["theory_rate"] = bound
        kind = "vanishes" if bound < 1 else "may explode"
        row["theory"] = f"σ_max·γ = {bound:.3g}: n_t ≤ {bound:.3g}^(T−1−t)·n_(T−1) ({kind})"
    return row


def _mlp_row(case: Any, norms: pd.Series) -> dict[str, Any]:
    sizes = {
        layer: case.cfg["N"] * (case.cfg["D"] if layer == 0 else case.cfg["width"])
        for layer in norms.index
    }
    var = np.array([norms[layer] ** 2 / sizes[layer] for layer in sorted(norms.index)])
    hidden = var[1:]  # h[0] is the input; its width D may differ
    ratios = hidden[:-1] / hidden[1:]
    gain = mlp_layer_gain(case)
    return {
        "steps": len(var),
        "rate": float(np.mean(ratios)) if len(ratios) else math.nan,
        "first_over_last": float(var[0] / var[-1]) if var[-1] > 0 else math.nan,
        "zeros": int((var == 0).sum()),
        "theory_rate": gain,
        "theory": f"{case.cfg['init']} init: Var(dL/dh) × {gain:.3g} per layer back (linear regime)",
    }


def summaries(magnitudes: pd.DataFrame, cases: Any = None) -> pd.DataFrame:
    """One row per case × backend × tap for taps with steps (unrolls) and per-layer taps
    of MLPs. ``cases``: Case instances (or a dict label -> Case) for the theory columns."""
    if isinstance(cases, dict):
        by_label = cases
    else:
        by_label = {c.label: c for c in (cases or [])}
    rows = []
    for (label, backend, tap), group in magnitudes.groupby(["case", "backend", "tap"], sort=False):
        group = group[group["step"] >= 0].sort_values("step")
        if len(group) < 2:
            continue
        case = by_label.get(label)
        norms = group.set_index("step")["norm"]
        if case is not None and case.family == "mlp":
            row = _mlp_row(case, norms)
        elif case is not None and case.family in ("elman", "lstm", "gru"):
            row = _unroll_row(case, norms.to_numpy())
        else:
            continue
        rows.append({"case": label, "backend": backend, "tap": tap, **row})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def bound_curve(case: Any, last_norm: float, steps: int) -> np.ndarray | None:
    """The Elman bound n_{T−1}·(σ_max·γ)^(T−1−t) for t = 0..T−1 (None for other cases)."""
    if case is None or case.family != "elman":
        return None
    return last_norm * elman_bound(case) ** np.arange(steps)[::-1].astype(float)
