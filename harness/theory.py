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

Deep MLPs (taps h[l]): ``rate`` is the mean over the hidden layers of the variance ratio
Var(dL/dh_l) / Var(dL/dh_{l+1}), variances estimated as n²/size. Backprop through layer
l+1 is dL/dh_l = (dL/dh_{l+1} ⊙ φ'(z_{l+1})) W_{l+1}ᵀ, so for wide layers with weights
independent of the signal (mean-field theory: Poole et al. 2016, "Exponential
expressivity in deep neural networks through transient chaos"; Schoenholz et al. 2017,
"Deep information propagation") each ratio is

    fan_out · Var(W_{l+1}) · E[φ'(z_{l+1})²],    z_{l+1} ~ N(0, q_{l+1}),

with the pre-activation variance carried forward from the inputs: q_1 = D·Var(W_1)·E[x²],
q_{l+1} = width·Var(W_{l+1})·E[φ(z_l)²] (zero biases at init). ``theory_rate`` is the mean
of these over the same layers, the expectations taken by Gauss–Hermite quadrature. In the
linear regime (φ' ≈ 1: tanh on small inputs) it is Glorot & Bengio's fan_out·Var(W) (2010,
"Understanding the difficulty of training deep feedforward neural networks", §4.2.1): 1/3
for the standard U(±1/√fan_in), 1 for Glorot's; sigmoid multiplies it by about σ'(0)² =
1/16, relu by exactly 1/2 (half the units pass the gradient; He et al. 2015, "Delving deep
into rectifiers").

Where a case's assumptions do not hold, ``theory_rate`` is NaN and ``theory`` says why,
in words. Which theory applies to a case is its family's declaration
(``harness.cases.family``: ``theory``, one of ``THEORIES``; ``unroll``), read from the
case: this module names no family.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermegauss

PASCANU = "pascanu"  # the bound σ_max·γ on an Elman unroll's gradient per step
MEAN_FIELD = "mean-field"  # the variance ratio per layer of a deep MLP
THEORIES = (PASCANU, MEAN_FIELD)  # what a family may declare as its ``theory``

GAMMA = {"tanh": 1.0, "sigmoid": 0.25}
MIN_WIDTH = 8  # narrower layers are too far from the mean-field (wide-layer) average
_NODES, _WEIGHTS = hermegauss(80)  # ∫ f(z) e^(−z²/2) dz: exact for polynomials of degree < 160
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


Elementwise = Callable[[np.ndarray], np.ndarray]
ACTIVATIONS: dict[str, tuple[Elementwise, Elementwise]] = {  # activation -> (φ, φ')
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
}
SUMMARY_COLUMNS = [
    "case",
    "backend",
    "tap",
    "steps",
    "rate",
    "first_over_last",
    "zeros",
    "theory_rate",
    "theory",
]


def fitted_rate(norms: np.ndarray) -> float:
    """exp(slope) of log n against steps back from the end, over the nonzero n."""
    back = np.arange(len(norms))[::-1].astype(float)
    keep = norms > 0
    if keep.sum() < 2:
        return math.nan
    slope = np.polyfit(back[keep], np.log(norms[keep]), 1)[0]
    return float(np.exp(slope))


def _numbers(case: Any, *names: str) -> bool:
    """Whether the case's options hold these names as real numbers: a case of the user's
    may claim a catalog family without the options that family's theory reads."""
    cfg = getattr(case, "cfg", None)
    return isinstance(cfg, dict) and all(
        isinstance(cfg.get(n), (int, float))
        and not isinstance(cfg.get(n), bool)
        and math.isfinite(cfg[n])
        for n in names
    )


def _elman_theory(case: Any) -> bool:
    """The catalog's Elman options that Pascanu et al.'s bound reads are there."""
    return _numbers(case, "sigma") and isinstance(case.cfg.get("act"), str)


def elman_bound(case: Any) -> float:
    """σ_max(W_h)·γ for an Elman case (its option ``sigma`` is σ_max exactly)."""
    return float(case.cfg["sigma"]) * GAMMA[case.cfg["act"]]


def gaussian_mean(f: Any, q: float) -> float:
    """E[f(z)] for z ~ N(0, q), by Gauss–Hermite quadrature."""
    return float(np.sum(_WEIGHTS * f(np.sqrt(q) * _NODES)))


def weight_variance(fan_in: int, fan_out: int, init: str) -> float:
    """Var(W) of the init: 1/(3·fan_in) for U(±1/√fan_in), 2/(fan_in+fan_out) for Glorot's."""
    return 1 / (3 * fan_in) if init == "standard" else 2 / (fan_in + fan_out)


def mlp_layer_ratios(case: Any) -> np.ndarray:
    """The mean-field Var(dL/dh_l) / Var(dL/dh_{l+1}) for the hidden layers l = 1..L−2."""
    cfg = case.cfg
    phi, dphi = ACTIVATIONS[cfg["act"]]
    widths = [cfg["D"]] + [cfg["width"]] * (cfg["depth"] - 1) + [cfg["C"]]

    def var_w(layer: int) -> float:  # W_layer: widths[layer−1] × widths[layer]
        return weight_variance(widths[layer - 1], widths[layer], cfg["init"])

    q = [widths[0] * var_w(1) * cfg["x_scale"] ** 2]  # q_1: X ~ N(0, x_scale²)
    for layer in range(2, cfg["depth"]):
        q.append(widths[layer - 1] * var_w(layer) * gaussian_mean(lambda z: phi(z) ** 2, q[-1]))
    return np.array(
        [  # ratio l: through W_{l+1}, whose pre-activation has variance q[l]
            widths[layer + 1] * var_w(layer + 1) * gaussian_mean(lambda z: dphi(z) ** 2, q[layer])
            for layer in range(1, cfg["depth"] - 1)
        ]
    )


def mlp_theory(case: Any) -> tuple[float, str]:
    """(the predicted mean ratio, the sentence that says so), or (NaN, why there is none)."""
    cfg = getattr(case, "cfg", {})
    needed = {"act", "init", "width", "depth", "D", "C", "x_scale"}
    if not needed <= set(cfg) or cfg["act"] not in ACTIVATIONS:
        return math.nan, "no theory: not the catalog's MLP (its options are not known here)"
    if cfg["depth"] < 3:
        return math.nan, "no theory: fewer than two hidden layers, no ratio to predict"
    if cfg["width"] < MIN_WIDTH:
        return math.nan, (
            f"no theory: width {cfg['width']} is too narrow for the mean-field "
            f"average (it needs wide layers; shown from width {MIN_WIDTH})"
        )
    rate = float(np.mean(mlp_layer_ratios(case)))
    return rate, (
        f"mean field ({cfg['init']} init, {cfg['act']}; wide layers, zero biases): "
        f"Var(dL/dh) × {rate:.3g} per layer back"
    )


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
    row["theory"] = "no theory: no bound on ‖dL/dh_t‖ is stated for LSTM and GRU"
    if case is not None and case.declaration.theory == PASCANU:
        if not _elman_theory(case):
            row["theory"] = "no theory: not the catalog's Elman (its options are not known here)"
            return row
        if case.cfg.get("objective", "last") != "last" or case.cfg["act"] not in GAMMA:
            row["theory"] = (
                "no theory: Pascanu et al.'s bound is for the loss on the last "
                "step, with tanh or sigmoid units"
            )
            return row
        bound = elman_bound(case)
        row["theory_rate"] = bound
        trend = "vanishes" if bound < 1 else "may explode"
        row["theory"] = f"σ_max·γ = {bound:.3g}: n_t ≤ {bound:.3g}^(T−1−t)·n_(T−1) ({trend})"
    return row


def _mlp_row(case: Any, norms: pd.Series) -> dict[str, Any]:
    sizes = {
        layer: case.cfg["N"] * (case.cfg["D"] if layer == 0 else case.cfg["width"])
        for layer in norms.index
    }
    var = np.array([norms[layer] ** 2 / sizes[layer] for layer in sorted(norms.index)])
    hidden = var[1:]  # h[0] is the input; its width D may differ
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = hidden[:-1] / hidden[1:]
    rate, theory = mlp_theory(case)
    return {
        "steps": len(var),
        "rate": float(np.mean(ratios)) if len(ratios) else math.nan,
        "first_over_last": float(var[0] / var[-1]) if var[-1] > 0 else math.nan,
        "zeros": int((var == 0).sum()),
        "theory_rate": rate,
        "theory": theory,
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
        if case is not None and case.declaration.theory == MEAN_FIELD:
            if not _numbers(case, "N", "D", "width"):
                continue  # per-element variances need the catalog MLP's sizes
            row = _mlp_row(case, norms)
        elif case is not None and case.declaration.unroll:
            row = _unroll_row(case, norms.to_numpy())
        else:
            continue
        rows.append({"case": label, "backend": backend, "tap": tap, **row})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def bound_curve(case: Any, last_norm: float, steps: int) -> np.ndarray | None:
    """The Elman bound n_{T−1}·(σ_max·γ)^(T−1−t) for t = 0..T−1 (None for other cases)."""
    if (
        case is None
        or case.declaration.theory != PASCANU
        or not _elman_theory(case)
        or case.cfg["act"] not in GAMMA
    ):
        return None
    return last_norm * elman_bound(case) ** np.arange(steps)[::-1].astype(float)
