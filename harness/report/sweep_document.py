"""The report of a sweep (``harness.sweep``), from its labelled tables alone: the points,
agreement in digits over the grid, and where the grid allows it the landscape of
vanishing and exploding gradients —

- Elman over σ_max and T: a phase diagram of log10 ‖dL/dh_0‖ / ‖dL/dh_{T−1}‖ with Pascanu,
  Mikolov & Bengio's (2013) boundary σ_max·γ = 1 (γ = max φ': 1 for tanh, 1/4 for
  sigmoid), and the measured decay rate per step (``theory.fitted_rate``: exp of the slope
  of log ‖dL/dh_t‖ against the steps back) set against the bound σ_max·γ;
- MLP over depth and init: the mean per-layer variance ratio Var(dL/dh_l)/Var(dL/dh_{l+1})
  measured, beside the mean-field prediction for Glorot & Bengio's (2010) analysis
  (``theory.mlp_layer_ratios``).

Exact zeros (an underflowed gradient) are kept: a ratio with a zero numerator is −∞ in
log10 and drawn as its own colour, never dropped silently.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.cases.family import family_of
from harness.escaping import code, lit, write_csv
from harness.report import plots
from harness.report.document import _image
from harness.report.files import staged_report
from harness.report.render import Block, Heading, Para, Table, to_html, to_markdown
from harness.theory import MEAN_FIELD, PASCANU

plt = plots.plt
SWEEP_PNG = ("sweep_digits.png", "sweep_phase.png", "sweep_mlp_variance.png")


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _sorted_values(values: pd.Series) -> list:
    """The distinct values of a swept column, in numeric order where they are numbers."""
    distinct = list(dict.fromkeys(values))
    if all(not math.isnan(_number(v)) for v in distinct):
        return sorted(distinct, key=_number)
    return distinct


def digits_table(agreement: pd.DataFrame, keys: list[str], baseline: str) -> pd.DataFrame:
    """Per point × backend: the worst agreement over its tensors in digits,
    −log10 max_rel_err (capped at ``plots.SCORE_CAP`` for an exact match)."""
    rows = agreement[(agreement["backend"] != baseline) & agreement["max_rel_err"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=["point", *keys, "seed", "backend", "digits"])
    err = rows["max_rel_err"].astype(float).clip(lower=10.0**-plots.SCORE_CAP)
    scored = rows.assign(digits=-np.log10(err))
    return (
        scored.groupby(["point", *keys, "seed", "backend"], sort=False)["digits"]
        .min()
        .reset_index()
    )


def digits_plot(table: pd.DataFrame, keys: list[str], path: Path) -> plots.Plot:
    """Worst digits of agreement per backend over the grid (the worst seed of each point):
    a heatmap per backend over the first two swept options, or lines over the one."""
    backends = list(dict.fromkeys(table["backend"]))
    if len(keys) >= 2:
        x, y = keys[0], keys[1]
        fig, axes = plt.subplots(
            1,
            len(backends),
            figsize=(3.4 * len(backends) + 1.0, 3.2),
            squeeze=False,
            layout="constrained",
        )
        xs, ys = _sorted_values(table[x]), _sorted_values(table[y])
        for ax, b in zip(axes[0], backends, strict=True):
            worst = table[table["backend"] == b].groupby([y, x])["digits"].min()
            grid = np.array([[worst.get((yv, xv), np.nan) for xv in xs] for yv in ys])
            im = ax.imshow(
                grid, origin="lower", cmap="viridis", vmin=0, vmax=plots.SCORE_CAP, aspect="auto"
            )
            for (i, j), v in np.ndenumerate(grid):
                if not math.isnan(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.1f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="k" if v > 0.6 * plots.SCORE_CAP else "w",
                    )
            ax.set_xticks(range(len(xs)), xs)
            ax.set_yticks(range(len(ys)), ys)
            ax.set_xlabel(x)
            ax.set_ylabel(y)
            ax.set_title(b)
        fig.colorbar(im, ax=axes[0].tolist(), label="digits of agreement")
        alt = f"worst digits of agreement of each backend over {x} × {y}"
    else:
        fig, ax = plt.subplots(figsize=(5.5, 3.2), layout="constrained")
        x = keys[0] if keys else "seed"
        xs = _sorted_values(table[x])
        for b in backends:
            worst = table[table["backend"] == b].groupby(x)["digits"].min()
            ax.plot(range(len(xs)), [worst.get(v, np.nan) for v in xs], marker="o", label=b)
        ax.set_xticks(range(len(xs)), xs)
        ax.set_xlabel(x)
        ax.set_ylabel("digits of agreement")
        ax.legend()
        ax.grid(True, alpha=0.3)
        alt = f"worst digits of agreement of each backend over {x}"
    plots._save(fig, path)
    return plots.Plot(
        path,
        alt,
        "Each cell: −log10 of the worst max_rel_err against the "
        "baseline over the point's tensors, the worst seed (17: exactly equal).",
    )


def theory_rows(
    summaries: pd.DataFrame, baseline: str, families: dict[str, str], theory: str
) -> pd.DataFrame:
    """The baseline's summary rows of the cases whose family declares ``theory``
    (``harness.cases.family``; ``families``: case label -> family name)."""
    if summaries.empty:
        return summaries.iloc[0:0]
    declares = summaries["case"].map(lambda c: family_of(families.get(c, "")).theory == theory)
    return summaries[(summaries["backend"] == baseline) & declares.astype(bool)]


def elman_rows(summaries: pd.DataFrame, baseline: str, families: dict[str, str]) -> pd.DataFrame:
    """The baseline's summary rows of the unrolls whose family states Pascanu's bound, where
    σ_max·γ is known (theory_rate)."""
    if summaries.empty or not {"sigma", "T"} <= set(summaries.columns):
        return summaries.iloc[0:0]
    rows = theory_rows(summaries, baseline, families, PASCANU)
    return rows[rows["theory_rate"].notna()]


def _log_ratio(first_over_last: pd.Series) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(first_over_last.astype(float).to_numpy())


def phase_plot(rows: pd.DataFrame, path: Path) -> plots.Plot:
    """log10 ‖dL/dh_0‖/‖dL/dh_{T−1}‖ over σ_max (x) and T (y), the median over seeds;
    the line σ_max·γ = 1 where it falls in the grid."""
    sigmas, Ts = _sorted_values(rows["sigma"]), _sorted_values(rows["T"])
    rows = rows.assign(log_ratio=_log_ratio(rows["first_over_last"]))
    med = rows.groupby(["T", "sigma"])["log_ratio"].median()
    grid = np.array([[med.get((t, s), np.nan) for s in sigmas] for t in Ts])
    finite = grid[np.isfinite(grid)]
    bound = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    fig, ax = plt.subplots(
        figsize=(1.1 * len(sigmas) + 2.8, 0.6 * len(Ts) + 2.2), layout="constrained"
    )
    cmap = plt.get_cmap("RdBu_r").with_extremes(under="black", bad="0.8")  # under: −∞
    im = ax.imshow(
        np.ma.masked_invalid(np.where(np.isneginf(grid), -2 * bound, grid)),
        origin="lower",
        cmap=cmap,
        vmin=-bound,
        vmax=bound,
        aspect="auto",
    )
    for (i, j), v in np.ndenumerate(grid):
        text = "0 (underflow)" if np.isneginf(v) else "n/a" if math.isnan(v) else f"{v:.1f}"
        ax.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize=7,
            color="w" if np.isneginf(v) or abs(v) > 0.6 * bound else "k",
        )
    gamma = float((rows["theory_rate"] / rows["sigma"].map(_number)).median())
    edge = 1.0 / gamma
    xs = [_number(s) for s in sigmas]
    inside = xs[0] <= edge <= xs[-1]
    if inside:
        where = float(np.interp(edge, xs, range(len(xs))))
        ax.axvline(where, color="k", linestyle="--", linewidth=1.5)
        ax.text(where, len(Ts) - 0.45, " σ_max·γ = 1", ha="left", va="bottom", fontsize=8)
    ax.set_xticks(range(len(sigmas)), sigmas)
    ax.set_yticks(range(len(Ts)), Ts)
    ax.set_xlabel("σ_max(W_h)")
    ax.set_ylabel("T")
    fig.colorbar(im, ax=ax, label="log10 ‖dL/dh_0‖ / ‖dL/dh_{T−1}‖", extend="min")
    plots._save(fig, path)
    zeros = int(np.isneginf(rows["log_ratio"]).sum())
    return plots.Plot(
        path,
        "phase diagram of log10 ‖dL/dh_0‖/‖dL/dh_{T−1}‖ over σ_max and T",
        f"Median over seeds. Blue: the gradient vanishes back through time; red: "
        f"it grows. Pascanu et al.'s boundary σ_max·γ = 1 (γ = {gamma:.3g}, "
        f"σ_max = {edge:.3g}): "
        + ("dashed. " if inside else "outside this grid. ")
        + f"{zeros} of {len(rows)} runs had ‖dL/dh_0‖ exactly 0 "
        "(underflow), drawn black.",
    )


def decay_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per σ_max: the bound σ_max·γ and the measured decay rate per step (median, min and
    max over T and seeds), and measured / bound."""
    out = []
    for sigma in _sorted_values(rows["sigma"]):
        g = rows[rows["sigma"] == sigma]
        rate = g["rate"].astype(float).dropna()
        bound = float(g["theory_rate"].iloc[0])
        out.append({"sigma": sigma, "sigma_gamma": bound, "rate_median": rate.median(),
                    "rate_min": rate.min(), "rate_max": rate.max(), "runs": len(g),
                    "rate_over_bound": rate.median() / bound if bound else math.nan})  # fmt: skip
    return pd.DataFrame(out)


def mlp_rows(summaries: pd.DataFrame, baseline: str, families: dict[str, str]) -> pd.DataFrame:
    """The baseline's summary rows of the cases whose family states the mean field."""
    if summaries.empty or "depth" not in summaries.columns:
        return summaries.iloc[0:0]
    return theory_rows(summaries, baseline, families, MEAN_FIELD)


def mlp_plot(rows: pd.DataFrame, path: Path) -> plots.Plot:
    """Mean per-layer variance ratio against depth, one line per init: measured (markers,
    the median over seeds) and the mean-field prediction (dashed)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4), layout="constrained")
    by = "init" if "init" in rows.columns else None
    groups = rows.groupby(by, sort=False) if by else [("", rows)]
    depths = _sorted_values(rows["depth"])
    x = [_number(d) for d in depths]
    for i, (name, g) in enumerate(groups):
        med = g.groupby("depth")[["rate", "theory_rate"]].median()
        ax.plot(
            x,
            [med["rate"].get(d, np.nan) for d in depths],
            marker="o",
            color=f"C{i}",
            linestyle="none",
            label=f"{name} measured".strip(),
        )
        ax.plot(
            x,
            [med["theory_rate"].get(d, np.nan) for d in depths],
            color=f"C{i}",
            linestyle="--",
            label=f"{name} mean field".strip(),
        )
    ax.axhline(1.0, color="0.5", linewidth=0.8)
    ax.set_xticks(x, depths)
    ax.set_xlabel("depth")
    ax.set_ylabel("Var(dL/dh_l) / Var(dL/dh_(l+1))")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    plots._save(fig, path)
    return plots.Plot(
        path,
        "per-layer variance ratio of the MLP against depth, per init",
        "Markers: the mean ratio over the hidden layers, measured (median over "
        "seeds); dashed: the mean-field prediction (wide layers, zero biases). "
        "Below 1 the gradient's variance shrinks back through the layers.",
    )


def _cell(x: Any, fmt: str = ".3g") -> str:
    return "–" if isinstance(x, float) and math.isnan(x) else format(x, fmt)


def document(
    t: dict[str, pd.DataFrame],
    keys: list[str],
    facts: dict,
    out: Path,
    families: dict[str, str],
) -> list[Block]:
    """The report's blocks: overview, points, digits over the grid, the landscapes of the
    cases whose family declares a theory (``families``: case label -> family name)."""
    pts = t["points"]
    bad = pts[pts["status"] != "ok"]
    blocks: list[Block] = [
        Heading("gradparity sweep", 1),
        Para(f"Command: {code(facts['command'])}. {len(pts)} points "
             f"({lit(' × '.join([*keys, 'seed']))}), executor {lit(facts['executor'])}; "
             f"wall time {facts['wall_s']:.1f} s, the points' own seconds summed "
             f"{facts['points_s']:.1f} s. Baseline {lit(facts['baseline'])}, {facts['dtype']}."),
        Para(f"**{len(pts) - len(bad)} of {len(pts)} points agree.**" + (
            " Failed: " + "; ".join(f"{lit(r['point'])} ({lit(r['status'])}"
                                   + (f": {lit(r['why'])}" if r["why"] else "") + ")"
                                   for _, r in bad.iterrows()) if len(bad) else "")),
    ]  # fmt: skip
    digits = digits_table(
        t.get("agreement", pd.DataFrame(columns=["backend", "max_rel_err"])),
        keys,
        facts["baseline"],
    )
    worst = digits.groupby("point")["digits"].min() if not digits.empty else pd.Series()
    blocks += [
        Heading("Points", 2),
        Table(
            ("point", "status", "worst digits", "seconds", "why"),
            tuple(
                (
                    lit(r["point"]),
                    lit(r["status"]),
                    _cell(worst.get(r["point"], math.nan), ".1f"),
                    f"{r['seconds']:.2f}",
                    lit(r["why"]),
                )
                for _, r in pts.iterrows()
            ),
        ),
    ]
    if not digits.empty:
        blocks += [
            Heading("Agreement over the grid", 2),
            _image(digits_plot(digits, keys, out / SWEEP_PNG[0])),
        ]
    summaries = t.get("summaries", pd.DataFrame())
    elman = elman_rows(summaries, facts["baseline"], families)
    if not elman.empty and len(set(elman["sigma"])) > 1:
        decay = decay_table(elman)
        blocks += [Heading("Vanishing and exploding: Elman over σ_max and T", 2),
                   _image(phase_plot(elman, out / SWEEP_PNG[1])),
                   Para("The measured decay rate per step (exp of the fitted slope of log "
                        "‖dL/dh_t‖ against steps back; over the nonzero norms) against "
                        "Pascanu et al.'s bound σ_max·γ:"),
                   Table(("σ_max", "σ_max·γ", "rate (median)", "rate (min … max)",
                          "runs", "rate / σ_max·γ"),
                         tuple((lit(r["sigma"]), _cell(r["sigma_gamma"]), _cell(r["rate_median"]),
                                f"{_cell(r['rate_min'])} … {_cell(r['rate_max'])}",
                                str(r["runs"]), _cell(r["rate_over_bound"]))
                               for _, r in decay.iterrows()))]  # fmt: skip
        t["decay"] = decay
    mlp = mlp_rows(summaries, facts["baseline"], families)
    if not mlp.empty and len(set(mlp["depth"])) > 1:
        blocks += [
            Heading("MLP: depth and initialisation", 2),
            _image(mlp_plot(mlp, out / SWEEP_PNG[2])),
        ]
    return blocks


def write_sweep_report(
    out: str | Path,
    t: dict[str, pd.DataFrame],
    keys: list[str],
    facts: dict,
    families: dict[str, str],
) -> list[Path]:
    """The sweep's CSVs (each table with its point columns; points.csv one row per point),
    report.md and report.html (figures embedded), and sweep.json (the facts): all of them
    or none (``staged_report``), and no file of an earlier report beside them.
    ``families``: each case's label -> its family's name (``harness.sweep.families``)."""
    out = Path(os.path.abspath(out))
    with staged_report(out) as stage:
        blocks = document(t, keys, facts, stage, families)
        for name, table in t.items():
            write_csv(table, stage / f"{name}.csv")
        (stage / "sweep.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
        (stage / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        (stage / "report.html").write_text(to_html(blocks, "gradparity sweep"), encoding="utf-8")
    written = [out / f"{name}.csv" for name in t]
    return [*written, out / "sweep.json", out / "report.md", out / "report.html"]


__all__ = [
    "decay_table",
    "digits_table",
    "elman_rows",
    "mlp_rows",
    "theory_rows",
    "write_sweep_report",
]
