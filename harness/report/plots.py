"""The report's figures, drawn from the tidy tables with matplotlib's Agg backend (headless).

Every function takes a table, draws one PNG and returns a ``Plot``: where it went, what it
shows (alt text) and a caption that says how many values could not be drawn. Gradient norms
can be exactly 0.0 (a gradient that underflowed): log axes never see them, they are counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harness.compare.verdicts import Verdict

# text.parse_math off: a label is shown as written; a case's name with $…$ is no TeX to parse
matplotlib.rcParams.update(
    {"svg.hashsalt": "gradparity", "figure.dpi": 100, "font.size": 9, "text.parse_math": False}
)

SCORE_CAP = 17.0  # −log10 of an exact 0 error: a digit beyond float64's ~16
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
INDEX_NAMES = {"t": "step", "l": "layer", "k": "stage"}


@dataclass(frozen=True)
class Plot:
    """A figure written to ``path``: ``alt`` says what it shows, ``caption`` how to read it."""

    path: Path
    alt: str
    caption: str


def _save(fig: plt.Figure, path: Path) -> None:
    """PNG without a Software stamp, so the same figure gives the same bytes."""
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _positive(values: pd.Series) -> tuple[pd.Series, int]:
    """The values a log axis can show (finite and > 0), and how many were exactly 0."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    return v.where(np.isfinite(v) & (v > 0)), int((v == 0).sum())


def _zeros_note(n_zero: int, n_total: int) -> str:
    if n_zero == 0:
        return "No norm was exactly 0."
    return f"{n_zero} of {n_total} norms were exactly 0 (underflow) and are not drawn."


def _styles(backends: list[str], baseline: str) -> dict[str, dict]:
    """The baseline as a line, every other backend as markers on top of it."""
    out = {}
    for i, b in enumerate(backends):
        if b == baseline:
            out[b] = {"linestyle": "-", "linewidth": 2.2, "alpha": 0.6, "color": "0.2"}
        else:
            out[b] = {
                "linestyle": "none",
                "marker": MARKERS[i % len(MARKERS)],
                "markersize": 3.5,
                "markerfacecolor": "none",
                "color": f"C{i}",
            }
    return out


def _log_axis(ax: plt.Axes, drawn: bool) -> None:
    if drawn:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "every norm is exactly 0", ha="center", transform=ax.transAxes)
    ax.grid(True, which="major", alpha=0.3)


def norms_by_index(
    mags: pd.DataFrame,
    case: str,
    taps: list[str],
    path: Path,
    baseline: str,
    index: str = "t",
    bound: pd.DataFrame | None = None,
) -> Plot:
    """‖dL/dtap_i‖ against the index i (an unroll's step t, a network's layer l), one panel
    per tap, every backend overlaid; ``bound`` (columns tap, step, bound), where the theory
    gives one, is drawn dashed."""
    rows = mags[(mags["case"] == case) & mags["tap"].isin(taps) & (mags["step"] >= 0)]
    backends = list(dict.fromkeys(rows["backend"]))
    styles = _styles(backends, baseline)
    fig, axes = plt.subplots(len(taps), 1, figsize=(7, 0.4 + 2.6 * len(taps)), squeeze=False)
    n_zero = 0
    for ax, tap in zip(axes[:, 0], taps, strict=True):
        drawn = False
        for backend in backends:
            one = rows[(rows["tap"] == tap) & (rows["backend"] == backend)]
            norms, zeros = _positive(one["norm"])
            n_zero += zeros
            drawn |= bool(norms.notna().any())
            style = dict(styles[backend])
            if "marker" in style:  # at most ~80 markers per line, so long unrolls stay legible
                style["markevery"] = max(1, len(one) // 80)
            ax.plot(one["step"], norms, label=backend, **style)
        if bound is not None and (bound["tap"] == tap).any():
            b = bound[bound["tap"] == tap]
            values, _ = _positive(b["bound"])
            if values.notna().any():
                ax.plot(b["step"], values, "--", color="C3", label="theoretical bound")
        _log_axis(ax, drawn)
        ax.set_xlabel(index)
        ax.set_ylabel(f"‖dL/d{tap}_{index}‖")
        ax.legend(fontsize=7, loc="best")
    per = INDEX_NAMES.get(index, index)
    axes[0, 0].set_title(f"{case}: gradient norm per {per}")
    fig.tight_layout()
    _save(fig, path)
    what = ", ".join(f"‖dL/d{t}_{index}‖" for t in taps)
    bound_note = " Dashed: the theoretical bound." if bound is not None and len(bound) else ""
    caption = (
        f"{what} against {index} on a log scale, {len(backends)} backends overlaid "
        f"({baseline} as the line, the others as markers).{bound_note} "
        f"{_zeros_note(n_zero, len(rows))}"
    )
    return Plot(path, f"{case}: gradient norm per {per}", caption)


def overlay_cases(
    mags: pd.DataFrame, cases: list[str], tap: str, path: Path, baseline: str, index: str = "l"
) -> Plot:
    """‖dL/dtap_i‖ against i for several cases on one axis (one colour per case, so
    variants of one network — e.g. two initialisations — can be told apart), every
    backend overlaid: the baseline as the line, the others as markers."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    n_zero = n_total = 0
    drawn = False
    for i, case in enumerate(cases):
        rows = mags[(mags["case"] == case) & (mags["tap"] == tap) & (mags["step"] >= 0)]
        n_total += len(rows)
        for j, backend in enumerate(dict.fromkeys(rows["backend"])):
            norms, zeros = _positive(rows.loc[rows["backend"] == backend, "norm"])
            n_zero += zeros
            drawn |= bool(norms.notna().any())
            steps = rows.loc[rows["backend"] == backend, "step"]
            if backend == baseline:
                ax.plot(steps, norms, "-", color=f"C{i}", linewidth=2, alpha=0.7, label=case)
            else:
                ax.plot(
                    steps,
                    norms,
                    linestyle="none",
                    marker=MARKERS[j % len(MARKERS)],
                    markersize=4,
                    markerfacecolor="none",
                    color=f"C{i}",
                )
    _log_axis(ax, drawn)
    ax.set_xlabel(index)
    ax.set_ylabel(f"‖dL/d{tap}_{index}‖")
    ax.set_title(" vs ".join(cases))
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    _save(fig, path)
    caption = (
        f"‖dL/d{tap}_{index}‖ against {index} on a log scale, one colour per case; lines: "
        f"{baseline}, markers: the other backends. {_zeros_note(n_zero, n_total)}"
    )
    return Plot(path, " vs ".join(cases), caption)


def agreement_scores(
    agreement: pd.DataFrame, runs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Case × backend grid of −log10(worst rel_l2_err) (an exact 0 scores SCORE_CAP) and a
    matching grid of labels: the score, 'failed', 'skipped', 'baseline', or '✗ score'.

    It reads the run's status first (``runs.status``: a run that was not ok is labelled
    by it), and only then the run's cells (agreement rows: 'error' where one carries an
    error, else the worst score); ``document._cell`` reads a cell's state alone."""
    cases = list(dict.fromkeys(runs["case"]))
    backends = list(dict.fromkeys(runs["backend"]))
    score = pd.DataFrame(np.nan, index=cases, columns=backends)
    label = pd.DataFrame("", index=cases, columns=backends)
    for _, run in runs.iterrows():
        case, backend = run["case"], run["backend"]
        rows = agreement[(agreement["case"] == case) & (agreement["backend"] == backend)]
        if run["status"] != "ok":
            label.loc[case, backend] = run["status"]
        elif rows.empty:
            label.loc[case, backend] = "baseline"
        elif (rows["error"].fillna("") != "").any():
            label.loc[case, backend] = "error"
        else:
            worst = float(rows["rel_l2_err"].max())
            s = SCORE_CAP if worst == 0 else min(SCORE_CAP, max(0.0, -math.log10(worst)))
            score.loc[case, backend] = s
            verdicts = set(rows["verdict"])
            shown = (
                Verdict.DISAGREE,
                Verdict.INCONCLUSIVE,
                Verdict.WITHIN_NOISE,
            )  # the first found
            mark = next((f"{v.mark} " for v in shown if v in verdicts), "")
            label.loc[case, backend] = f"{mark}{'exact' if worst == 0 else f'{s:.1f}'}"
    return score, label


def agreement_heatmap(agreement: pd.DataFrame, runs: pd.DataFrame, path: Path) -> Plot:
    """Case × backend heatmap of −log10 of the worst rel_l2_err (digits of agreement)."""
    score, label = agreement_scores(agreement, runs)
    size = (2.6 + 1.3 * len(score.columns), max(3.2, 1.2 + 0.32 * len(score)))
    fig, ax = plt.subplots(figsize=size)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    image = ax.imshow(
        np.ma.masked_invalid(score.to_numpy(float)),
        cmap=cmap,
        vmin=0,
        vmax=SCORE_CAP,
        aspect="auto",
    )
    for (i, j), text in np.ndenumerate(label.to_numpy()):
        if text in ("failed", "error") or text.startswith(Verdict.DISAGREE.mark):  # boxed in red
            box = {"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "red"}
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="red",
                fontweight="bold",
                bbox=box,
            )
        else:
            light = np.isnan(score.iat[i, j]) or score.iat[i, j] > 9  # viridis: light at the top
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="black" if light else "white",
            )
    ax.set_xticks(range(len(score.columns)), score.columns)
    ax.set_yticks(range(len(score)), score.index)
    ax.xaxis.tick_top()
    fig.colorbar(image, ax=ax, label="digits that agree\n(−log10 worst rel_l2_err)")
    fig.tight_layout()
    _save(fig, path)
    n_failed = int(label.isin(["failed", "error"]).to_numpy().sum())
    n_bad, n_unsure, n_noise = (
        int(label.map(lambda s, v=v: s.startswith(v.mark)).to_numpy().sum())
        for v in (Verdict.DISAGREE, Verdict.INCONCLUSIVE, Verdict.WITHIN_NOISE)
    )
    caption = (
        f"Digits of agreement with the baseline: −log10 of the worst rel_l2_err (‖a − b‖/‖b‖) over each case's "
        f"tensors; an exact match is shown as 'exact' (scored {SCORE_CAP:g}). Grey: baseline, "
        f"skipped, unsupported or failed. {n_bad} cells disagree ({Verdict.DISAGREE.mark}), "
        f"{n_unsure} are inconclusive ({Verdict.INCONCLUSIVE.mark}: an oracle could not resolve "
        f"a tensor), {n_noise} agree only within the problem's own rounding noise "
        f"({Verdict.WITHIN_NOISE.mark}), {n_failed} failed."
    )
    return Plot(path, "agreement heatmap (case × backend)", caption)


def dtype_drift(drift: pd.DataFrame, path: Path) -> Plot:
    """float32 against float64 (same backend, same inputs rounded) as the length grows:
    max_rel_err and rel_l2_err of the tapped gradients, float32's ε for scale."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    n_zero = 0
    for column, style in (("max_rel_err", "o-"), ("rel_l2_err", "s--")):
        values, zeros = _positive(drift[column])
        n_zero += zeros
        ax.plot(drift["length"], values, style, label=column)
    ax.axhline(float(np.finfo(np.float32).eps), color="0.5", linewidth=1, label="float32 ε")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    case, option = drift["case"].iloc[0], drift["option"].iloc[0]
    ax.set_xlabel(f"{option} (length of {case})")
    ax.set_ylabel("error of float32 vs float64")
    ax.set_title(f"{case}: float32 drift as {option} grows ({drift['backend'].iloc[0]})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    note = f" {n_zero} errors were exactly 0 and are not drawn." if n_zero else ""
    if "underflowed" in drift and drift["underflowed"].sum():
        worst = drift.loc[drift["underflowed"].idxmax()]
        note += (
            f" Underflow: in float32, up to {int(worst['underflowed'])} gradient elements "
            f"(at {option} = {worst['length']}) are exactly 0 where float64 has a nonzero "
            f"value — a relative error of 1."
        )
    caption = (
        f"The same {case} at {option} = {', '.join(str(n) for n in drift['length'])} in float32 "
        f"and float64 on {drift['backend'].iloc[0]}: the largest elementwise relative error and "
        f"the relative L2 error of dL/d(tap) over all taps (and steps).{note}"
    )
    return Plot(path, f"{case}: float32 vs float64 as {option} grows", caption)


__all__ = [
    "Plot",
    "SCORE_CAP",
    "agreement_heatmap",
    "agreement_scores",
    "dtype_drift",
    "norms_by_index",
    "overlay_cases",
]
