"""The report's content: the tables and plots of one Comparison as a list of blocks.

An overview first (how many tensors, whether all agree, the worst error per backend
pair, failures, the heatmap, float32 drift), then one section per case: its math, its
agreement per tensor, and for unrolls and deep networks the gradient norm per step or per
layer. ``harness.report.render`` turns the blocks into Markdown and HTML.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import harness.modes
from harness.cases import Case
from harness.compare import (
    COMPARED,
    WITHIN_NOISE,
    Comparison,
    Verdict,
    derivation_of,
    legend,
    worst_at,
)
from harness.escaping import code, lit
from harness.report import plots
from harness.report.render import Block, Bullets, Code, Heading, Image, Para, Table

DEEP_TAPS = 5  # a case with this many indexed taps (s[0], s[1], ...) gets a per-layer plot


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")


def _err(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1e}"


def _number(x: float) -> str:
    """4 significant digits; a missing value (no theory, an underflow) as a dash."""
    return "—" if math.isnan(x) else f"{x:.4g}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _image(plot: plots.Plot) -> Image:
    return Image(plot.path, plot.alt, plot.caption)


# --- theory (harness.theory may not exist yet, or may fail: the report goes on without it)


def theory_summaries(comparison: Comparison, cases: list[Case]) -> tuple[pd.DataFrame, str]:
    """The comparison's theory summaries (``harness.theory.summaries``) when they exist,
    else an empty table; and a note saying why, when computing them failed."""
    table = getattr(comparison, "summaries", None)
    if isinstance(table, pd.DataFrame):
        return table, ""
    try:
        from harness import theory
    except ImportError:
        return pd.DataFrame(), ""
    if not hasattr(theory, "summaries"):
        return pd.DataFrame(), ""
    try:
        table = theory.summaries(comparison.magnitudes, cases)
    except Exception as e:  # noqa: BLE001 - theory is an extra; the report must still appear
        return pd.DataFrame(), f"theory summaries failed: {type(e).__name__}: {e}"
    return (table if isinstance(table, pd.DataFrame) else pd.DataFrame()), ""


def theory_bound(mags: pd.DataFrame, case: Case, baseline: str) -> pd.DataFrame | None:
    """The theoretical bound on ‖dL/dh_t‖ (columns tap, step, bound), anchored at the
    baseline's last step, when ``harness.theory.bound_curve`` gives one for this case."""
    try:
        from harness import theory
    except ImportError:
        return None
    if not hasattr(theory, "bound_curve"):
        return None
    h = mags[(mags["case"] == case.label) & (mags["tap"] == "h") & (mags["step"] >= 0)]
    h = h[h["backend"] == baseline] if (h["backend"] == baseline).any() else h
    h = h[h["backend"] == h["backend"].iloc[0]].sort_values("step") if len(h) else h
    if len(h) < 2:
        return None
    try:
        curve = theory.bound_curve(case, float(h["norm"].iloc[-1]), len(h))
    except Exception:  # noqa: BLE001 - no bound is better than no report
        return None
    if curve is None:
        return None
    return pd.DataFrame({"tap": "h", "step": h["step"].to_numpy(), "bound": list(curve)})


# --- the overview


def worst_per_pair(agreement: pd.DataFrame) -> pd.DataFrame:
    """One row per (backend, baseline) pair: comparisons, how many agree (of them, how
    many only within the problem's noise), are inconclusive, unsupported or failed, the
    worst rel_l2_err (‖a − b‖/‖b‖) and where it is."""
    rows = []
    groups = agreement.groupby(["mode", "backend", "baseline"], sort=False)
    for (mode, backend, baseline), group in groups:
        measured = group[group["error"].fillna("") == ""]
        worst = measured.loc[measured["rel_l2_err"].idxmax()] if len(measured) else None
        rows.append({
            "pair": f"{backend} vs {baseline}" + ("" if mode == "rev" else f" ({mode})"),
            "compared": len(group),
            "agree": int(group["ok"].astype(bool).sum()),
            "within_noise": int((group["verdict"] == Verdict.WITHIN_NOISE).sum()),
            "inconclusive": int((group["verdict"] == Verdict.INCONCLUSIVE).sum()),
            "unsupported": int((group["verdict"] == Verdict.UNSUPPORTED).sum()),
            "failed": int((group["verdict"] == Verdict.FAILED).sum()),
            "worst_rel_l2_err": math.nan if worst is None else float(worst["rel_l2_err"]),
            "where": "" if worst is None else f"{worst['case']}: {worst['kind']} {worst['tensor']}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def verdict(facts: dict[str, Any]) -> str:
    n = facts["counts"]
    cases, backends = _count(n["cases"], "case"), _count(n["backends"], "backend")
    scope = f"{cases} × {backends}, {facts['dtype']}, seed {facts['seed']}, baseline {code(facts['baseline'])}"
    if n["compared"] == 0 and not n["runs_failed"] and not n["not_compared"]:
        return (
            f"**Nothing was compared**: no backend beside the baseline gave a result to "
            f"compare (fewer than two ran, or the others were skipped or unsupported) — "
            f"{scope}."
        )
    noisy = n.get("agree_within_noise", 0)
    within = f", {noisy} of them only within the problem's own rounding noise" if noisy else ""
    if facts["all_agree"]:
        return f"**All {n['comparisons']} compared tensors agree**{within} — {scope}."
    if not facts["exit_code"]:
        apart = [
            f"{n[k]} {w}"
            for k, w in (
                ("inconclusive", "inconclusive (an oracle could not resolve them)"),
                ("unsupported", "unsupported (a backend lacks a function the case needs)"),
            )
            if n.get(k)
        ]
        agree = n["agree"] + noisy
        return (
            f"**No tensor disagrees**: {agree} of {n['comparisons']} agree{within}; "
            f"{', '.join(apart)} — {scope}."
        )
    parts = []
    if n["disagree"]:
        parts.append(f"{n['disagree']} of {n['comparisons']} compared tensors do not agree")
    if n.get("baseline_odd_one_out"):
        parts.append(
            f"on {n['baseline_odd_one_out']} of them the baseline "
            f"{code(facts['baseline'])} is the odd one out: the others agree among "
            "themselves, so the fault is the baseline's"
        )
    if n["not_compared"]:
        parts.append(f"{n['not_compared']} of {n['comparisons']} tensors could not be compared")
    for key in ("inconclusive", "unsupported"):
        if n.get(key):
            parts.append(f"{n[key]} {key}")
    if n["runs_failed"]:
        parts.append(f"{n['runs_failed']} backend runs failed")
    if n.get("identities_broken"):
        parts.append(
            f"{n['identities_broken']} of {n['identities']} identities broken (a "
            "backend's forward and reverse modes, or its H·v and H·w, disagree)"
        )
    return f"**{'; '.join(parts)}** — {scope}."


def overview(comparison: Comparison, facts: dict[str, Any], out: Path) -> list[Block]:
    pairs = worst_per_pair(comparison.agreement)
    held = [
        Verdict.AGREE
        if p["agree"] + p["inconclusive"] + p["unsupported"] == p["compared"]
        else Verdict.DISAGREE
        for _, p in pairs.iterrows()
    ]
    rows = tuple(
        (lit(p["pair"]), str(p["compared"]), f"{v.mark} {p['agree']}", str(p["within_noise"]),
         str(p["inconclusive"]), str(p["unsupported"]), _err(p["worst_rel_l2_err"]),
         lit(p["where"]), str(p["failed"]))
        for v, (_, p) in zip(held, pairs.iterrows(), strict=True)
    )  # fmt: skip
    styles = tuple(("", "", v.style) for v in held)
    blocks: list[Block] = [
        Heading("gradparity report", 1),
        Para(verdict(facts)),
        Para(
            "Each backend's gradients are compared with the baseline's, tensor by tensor "
            "(the loss, every parameter, every tapped intermediate). `rel_l2_err` is "
            "‖a − b‖/‖b‖ over a tensor; `max_rel_err` is the largest elementwise error relative "
            "to the tensor's scale max|b| (per step for unroll taps). Finite differences "
            "(`numeric`) are judged with their own error estimate added to the tolerance; where "
            "that estimate exceeds 1e-4 of the scale (a step whose gradient is too small for "
            "them to resolve, a loss too curved for their step) they cannot vouch for the "
            "element, and a tensor with such elements, and no element that disagrees, is "
            "**inconclusive** (?): not an agreement, not a failure. The baseline's gradient is "
            "also computed again on parameters and inputs moved by one ulp at random (Monte "
            "Carlo arithmetic, Parker 1997): the spread of each element is its **noise floor**, "
            "what rounding alone does to it. Where the floor is small the absolute tolerance "
            "is tightened to 100 floors, so an error in a small element shows; where it "
            "exceeds the tolerance, a difference within 3 floors **agrees within noise** (≈): "
            "the problem, not a backend, limits the agreement, and `digits` says to how many "
            "significant digits the references are good there. A backend that lacks a "
            "function the case needs is **unsupported** (–) there and counted apart. Per "
            "backend pair:"
        ),
    ]
    if rows:
        header = (
            "backend pair",
            "tensors",
            "agree",
            "of them within noise",
            "inconclusive",
            "unsupported",
            "worst rel_l2_err",
            "where",
            "failed",
        )
        blocks.append(Table(header, rows, styles))
    failed = facts["failed"]
    if failed:
        blocks += [
            Heading("Failed backends", 3),
            Bullets(
                tuple(
                    f"{code(f['backend'])} on {code(f['case'])}: {lit(f['error'])}" for f in failed
                )
            ),
        ]
    heatmap = plots.agreement_heatmap(
        *by_mode(comparison.agreement, comparison.runs), out / "agreement_heatmap.png"
    )
    blocks += [Heading("Agreement at a glance", 3), _image(heatmap)]
    return blocks


def by_mode(agreement: pd.DataFrame, runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables with each case of a mode other than rev relabelled ``case (mode)``, so
    that the heatmap gives each case and mode a row of its own."""

    def relabel(table: pd.DataFrame) -> pd.DataFrame:
        suffix = table["mode"].map(lambda m: "" if m == "rev" else f" ({m})")
        return table.assign(case=table["case"] + suffix)

    return relabel(agreement), relabel(runs)


MODE_TITLES = {
    "rev": "reverse mode: the gradient",
    "fwd": "forward mode: the tangents J·u along the case's direction u",
    "hvp": "second order: H·v along the case's direction v",
}


def modes_section(comparison: Comparison) -> list[Block]:
    """Forward mode and H·v, where they were run: what the rows mean, and each autodiff
    backend's modes held against each other (``harness.modes``)."""
    ids = comparison.identities
    modes = [m for m in dict.fromkeys(comparison.agreement["mode"]) if m != "rev"]
    if not modes:
        return []
    blocks: list[Block] = [
        Heading("Forward mode and second order", 2),
        Para(
            "Beside the gradient (reverse mode, `rev`), each backend computed "
            + " and ".join(f"{MODE_TITLES[m]} (`{m}`)" for m in modes)
            + ". The directions are random, unit-norm over all the parameters, seeded by the "
            "case and the seed, the same for every backend. In mode `fwd` the row `loss` is "
            "J_L·u = ⟨∇L, u⟩ and a tap's row the change of the tapped value along u; in mode "
            "`hvp` a parameter's row is its part of H·v. They are compared with the same "
            "metrics, per-step scale, noise floor and verdicts as the gradients. Finite "
            "differences take the stencil along u of the loss and the taps, and along v of "
            "the reference tape's gradient; a loss with kinks (relu) has no second "
            "derivative at them: its H·v rows are marked, not failed."
        ),
    ]
    if len(ids):
        body, styles = [], []
        ordered = ids.assign(order=ids["mode"].map(harness.modes.MODES.index)).sort_values(
            "order", kind="stable"
        )
        for (mode, backend), g in ordered.groupby(["mode", "backend"], sort=False):
            broken = g[~g["ok"]]
            verdict = Verdict.AGREE if broken.empty else Verdict.DISAGREE
            body.append((code(mode), lit(backend), lit(g["identity"].iloc[0]),
                         f"{verdict.mark} {int(g['ok'].sum())}/{len(g)}",
                         _err(float(g["rel_err"].max())),
                         lit(", ".join(broken["case"])) or "—"))  # fmt: skip
            styles.append(("", "", "", verdict.style))
        blocks += [
            Para("Each autodiff backend held against itself: its forward mode against its own "
                 "gradient, the transpose identity ⟨1, J_L·u⟩ = ⟨∇L, u⟩, and its H·v against "
                 "its H·w, the symmetry ⟨w, H·v⟩ = ⟨v, H·w⟩. Both sides are sums whose "
                 "rounding is relative to the sum of their terms' magnitudes; an identity "
                 "holds within 1e-10 of that in float64 (1e-4 in float32). A backend that "
                 "breaks one has two modes that cannot both be right."),
            Table(("mode", "backend", "identity", "held", "worst |lhs − rhs| / scale",
                   "broken on"), tuple(body), tuple(styles)),
        ]  # fmt: skip
    return blocks


def _where(row: pd.Series) -> str:
    return f"{row['case']}: {row['kind']} {row['tensor']}"


def detection_section(comparison: Comparison) -> list[Block]:
    """What this run could and could not have caught, from ``detects_rel`` (the smallest
    relative error of one element that the comparison flags there) and the verdicts."""
    table = comparison.agreement
    judged_rows = table["verdict"].isin(COMPARED) & table["detects_rel_median"].notna()
    judged = table[judged_rows]
    if judged.empty:
        return []
    derivations = {(r.case, r.backend): derivation_of(r) for r in comparison.results}
    directional = comparison.row_facts.loc[judged_rows, "directional"]
    by_derivation = judged.assign(
        derivation=[
            derivations.get((c, b), "autodiff")
            for c, b in zip(judged["case"], judged["backend"], strict=True)
        ]
    )
    rows = []
    for backend, g in by_derivation.groupby("backend", sort=False):
        seen = g[np.isfinite(g["detects_rel_median"])]  # inf: nothing there could be flagged
        blind = len(g) - len(seen)
        if seen.empty:
            rows.append(
                (
                    lit(f"{backend} vs {g['baseline'].iloc[0]}"),
                    str(len(g)),
                    "—",
                    "—",
                    f"none resolved ({blind} tensors)",
                    "—",
                )
            )
            continue
        worst = seen.loc[seen["detects_rel_median"].idxmax()]
        where = _where(worst) + (f"; {blind} tensors unresolved" if blind else "")
        worst_element = seen["detects_rel_worst"][np.isfinite(seen["detects_rel_worst"])]
        rows.append((lit(f"{backend} vs {g['baseline'].iloc[0]}"), str(len(g)),
                     _err(float(seen["detects_rel_median"].median())),
                     _err(float(worst["detects_rel_median"])), lit(where),
                     _err(float(worst_element.max()) if len(worst_element) else math.nan)))  # fmt: skip
    could, could_not = [], []
    auto = by_derivation[(by_derivation["derivation"] == "autodiff") & ~directional]
    auto = auto[np.isfinite(auto["detects_rel_median"])]
    if len(auto):
        worst = auto.loc[auto["detects_rel_median"].idxmax()]
        could.append(
            f"Between autodiff backends: in every one of {len(auto)} tensors, an error of "
            f"{_err(float(worst['detects_rel_median']))} relative in one element of typical size "
            f"(the median element; the coarsest tensor is {lit(_where(worst))}), and "
            f"{_err(float(auto['detects_rel_median'].median()))} in the median tensor."
        )
    noisy = judged[judged["verdict"] == Verdict.WITHIN_NOISE]
    for case, g in noisy.groupby("case", sort=False):
        could_not.append(
            f"{lit(case)}: an error below {WITHIN_NOISE:g}× the noise floor (up to "
            f"{_err(float(g['noise_floor'].max()))} of the scale) — the problem's own rounding "
            f"noise, {float(g['digits'].min()):.1f} digits: no backend can be checked beyond it."
        )
    unresolved = judged[judged["n_unresolved"].fillna(0) > 0]
    if len(unresolved):
        could_not.append(
            f"The {int(unresolved['n_unresolved'].sum())} elements or directions finite "
            f"differences could not resolve, in {len(unresolved)} tensors (first: "
            f"{lit(_where(unresolved.iloc[0]))}): there, only the autodiff backends check each other."
        )
    if directional.any():
        n_dir = len(dict.fromkeys(judged.loc[directional, "case"]))
        could_not.append(
            f"Finite differences on the {n_dir} larger cases see each tensor along a few random "
            "directions only: an error confined to one element shows there only as its share "
            "of a projection (the autodiff backends still compare every element)."
        )
    small = judged[(judged["detects_rel_worst"] > 1e-2) & np.isfinite(judged["detects_rel_worst"])]
    if len(small):
        could_not.append(
            f"A relative error in the smallest elements of {len(small)} tensors: an element "
            "far below its tensor's scale is judged by the tensor's absolute tolerance, so "
            "only an error of more than 1e-2 of the element itself is flagged there (worst: "
            f"{_err(float(small['detects_rel_worst'].max()))}, {lit(_where(small.loc[small['detects_rel_worst'].idxmax()]))})."
        )
    missing = table[~table["verdict"].isin(COMPARED)]
    for verdict, g in missing.groupby("verdict", sort=False):
        pairs = list(
            dict.fromkeys(f"{b} on {c}" for c, b in zip(g["case"], g["backend"], strict=True))
        )
        could_not.append(
            f"Anything at all where a backend was {verdict}: "
            f"{lit(', '.join(pairs[:6]))}{' …' if len(pairs) > 6 else ''}."
        )
    header = (
        "backend vs baseline",
        "tensors",
        "detects_rel, median tensor",
        "coarsest tensor",
        "where",
        "smallest element, worst",
    )
    return [
        Heading("What this run could and could not have caught", 2),
        Para("`detects_rel` is the smallest relative error in one element that the comparison "
             "would flag there: the tolerance of that element (with the noise floor and, for "
             "finite differences, their error estimate) divided by |b_i|. Per tensor, "
             "`agreement.csv` gives its median over the elements and its worst (the smallest "
             "elements); per backend:"),
        Table(header, tuple(rows)),
        Para("**Could have caught:**"),
        Bullets(tuple(could) or ("nothing between autodiff backends (none was compared)",)),
        Para("**Could not have caught:**"),
        Bullets(tuple(could_not) or ("nothing beyond the above",)),
    ]  # fmt: skip


def drift_section(drift: pd.DataFrame, out: Path) -> list[Block]:
    if drift.empty:
        return []
    blocks: list[Block] = [Heading("float32 against float64 as the computation grows", 2)]
    measured = drift[drift["max_rel_err"].notna()]
    if len(measured):
        blocks.append(_image(plots.dtype_drift(measured, out / "drift_float32.png")))
    rows = tuple(
        (
            str(r["length"]),
            _err(r["max_rel_err"]),
            _err(r["rel_l2_err"]),
            str(r["underflowed"]),
            lit(r["error"]),
        )
        for _, r in drift.iterrows()
    )
    option = drift["option"].iloc[0]
    header = (lit(option), "max_rel_err", "rel_l2_err", "float32 zeros (underflow)", "error")
    blocks.append(Table(header, rows))
    return blocks


# --- one case


def _cell(row: pd.Series) -> str:
    """✓ and the max relative error (≈ within noise, with its digits); ✗ with what went
    wrong, or 'failed'; – unsupported.

    It reads the cell's state alone, one agreement row (its verdict, its error, its
    metrics) and its ``run_failed`` fact (``Comparison.row_facts``), never the run's
    status (``runs.status``): a tensor can fail on its own (a fault that left it
    uncompared, ``Result.uncompared``, even in a run that failed, such as a JVP without
    its loss; a case that could not be built), and shows that fault; a row that stands
    for its backend's run failing as a whole shows 'failed', the run's error being in
    the notes below the table. The heatmap's ``plots.agreement_scores`` reads the run's
    status first, per case × backend, and the cells only of the runs that were ok."""
    verdict = Verdict.of(row["verdict"])
    mark = verdict.mark
    if verdict is Verdict.UNSUPPORTED:
        return f"{mark} {verdict}"
    error = row["error"] if isinstance(row["error"], str) else ""
    if error:  # a failed row, or a disagreeing one whose error the validation names
        failed = Verdict.FAILED
        return f"{failed.mark} {failed}" if row["run_failed"] else f"{failed.mark} {lit(error)}"
    if verdict is Verdict.INCONCLUSIVE:
        return f"{mark} {row['max_rel_err']:.1e}: {verdict}, {int(row['n_unresolved'])}/{row['n_elements']} unresolved"
    if verdict is Verdict.WITHIN_NOISE:
        return f"{mark} {row['max_rel_err']:.1e}: within noise, {row['digits']:.1f} digits"
    if verdict.agrees:
        return (
            f"{mark} 0 (exact)" if row["max_rel_err"] == 0 else f"{mark} {row['max_rel_err']:.1e}"
        )
    steps = f", steps {row['bad_steps']}" if row["bad_steps"] else ""
    return (
        f"{mark} {row['max_rel_err']:.1e}: {row['n_bad']}/{row['n_elements']} bad{lit(steps)}; "
        f"{lit(worst_at(row))}"
    )


def _cell_style(row: pd.Series) -> str:
    """The style of ``_cell``'s cell, from the same facts: its verdict's, or a failure's
    where the row carries an error."""
    verdict = Verdict.of(row["verdict"])
    if verdict is not Verdict.UNSUPPORTED and isinstance(row["error"], str) and row["error"]:
        return Verdict.FAILED.style
    return verdict.style


def agreement_table(rows: pd.DataFrame) -> Table:
    """Tensor × backend: ✓ or ✗ and the max relative error against the baseline; ``rows``
    are agreement rows joined with their ``Comparison.row_facts``."""
    backends = list(dict.fromkeys(rows["backend"]))
    baseline = rows["baseline"].iloc[0]
    body, styles = [], []
    for (kind, tensor), group in rows.groupby(["kind", "tensor"], sort=False):
        by_backend = {r["backend"]: r for _, r in group.iterrows()}
        shape = group["shape"].dropna()
        body.append(
            (
                f"{kind} {code(tensor)}",
                lit(shape.iloc[0]) if len(shape) else "",
                *(_cell(by_backend[b]) if b in by_backend else "" for b in backends),
            )
        )
        styles.append(
            ("", "", *(_cell_style(by_backend[b]) if b in by_backend else "" for b in backends))
        )
    header = ("tensor", "shape", *(lit(f"{b} vs {baseline}") for b in backends))
    return Table(header, tuple(body), tuple(styles))


def _theory_table(theory: pd.DataFrame, label: str, baseline: str) -> list[Block]:
    if theory.empty or "case" not in theory:
        return []
    rows = theory[theory["case"] == label]
    if "backend" in rows and (rows["backend"] == baseline).any():
        rows = rows[rows["backend"] == baseline]
    if rows.empty:
        return []
    cols = [
        c for c in ("tap", "rate", "theory_rate", "first_over_last", "zeros", "theory") if c in rows
    ]
    body = tuple(
        tuple(_number(v) if isinstance(v, float) else lit(v) for v in r)
        for r in rows[cols].itertuples(index=False)
    )
    header = tuple(lit(c) for c in cols)
    return [Para(f"Magnitudes against theory ({code(baseline)}):"), Table(header, body)]


def scan_taps(comparison: Comparison, label: str) -> set[str]:
    """The case's taps made inside a scan (an unroll's steps), as the Results say."""
    return {
        tap
        for r in comparison.results
        if r.case == label
        for tap, steps in r.tap_steps.items()
        if steps is not None
    }


def magnitude_plots(comparison: Comparison, case: Case, out: Path) -> list[Block]:
    """Norm per step for taps inside a scan; norm per layer (stage) for indexed taps
    (``h[l]``, ``s[k]``) of MLPs and of staged cases at least DEEP_TAPS deep."""
    mags, baseline = comparison.magnitudes, comparison.baseline
    blocks: list[Block] = []
    mine = mags[(mags["case"] == case.label) & (mags["step"] >= 0)]
    scanned = scan_taps(comparison, case.label)
    in_scan = [t for t in dict.fromkeys(mine["tap"]) if t in scanned]
    layered = [t for t in dict.fromkeys(mine["tap"]) if t not in scanned]
    if in_scan:
        bound = theory_bound(mags, case, baseline)
        path = out / f"steps_{_slug(case.label)}.png"
        plot = plots.norms_by_index(mags, case.label, in_scan, path, baseline, "t", bound)
        blocks.append(_image(plot))
    deep = mine[mine["tap"].isin(layered)].groupby("tap")["step"].nunique()
    by_layer = case.declaration.layer_index
    if layered and (by_layer is not None or deep.max() >= DEEP_TAPS):
        index = by_layer or "k"
        path = out / f"layers_{_slug(case.label)}.png"
        blocks.append(
            _image(plots.norms_by_index(mags, case.label, layered, path, baseline, index))
        )
    return blocks


def case_section(
    comparison: Comparison, case: Case, theory: pd.DataFrame, out: Path
) -> list[Block]:
    table = comparison.agreement.join(comparison.row_facts)
    rows = table[table["case"] == case.label]
    runs = comparison.runs[comparison.runs["case"] == case.label]
    blocks: list[Block] = [Heading(f"{case.label} ({case.family})", 2), Code(case.doc())]
    options = ", ".join(f"{k}={v}" for k, v in case.cfg.items())
    if options:
        blocks.append(Para(f"Options: {code(options)}."))
    if len(rows):
        blocks.append(
            Para(
                "`max_rel_err` against the baseline, the largest |a − b| relative to the "
                f"tensor's scale max|b| (per step for unroll taps): {lit(legend())}."
            )
        )
        modes = list(dict.fromkeys(rows["mode"]))
        for mode in modes:
            if modes != ["rev"]:
                blocks.append(
                    Para(f"**{MODE_TITLES[mode][0].upper()}{MODE_TITLES[mode][1:]}** (`{mode}`):")
                )
            blocks.append(agreement_table(rows[rows["mode"] == mode]))
    notes = [
        f"**{lit(r['backend'])} {r['status']}**: {lit(r['error'])}"
        for _, r in runs.iterrows()
        if r["status"] != "ok"
    ]
    notes += [
        f"{'' if r['mode'] == 'rev' else '(' + r['mode'] + ') '}{r['kind']} {code(r['tensor'])}, "
        f"**{lit(r['backend'])}**: {r['verdict']} — {lit(r['reason'])}"
        for _, r in rows[
            rows["verdict"].isin([Verdict.INCONCLUSIVE, Verdict.WITHIN_NOISE])
        ].iterrows()
    ]
    marked = int(rows["kinked"].sum())
    if marked:
        notes.append(
            f"(hvp) {marked} rows marked: {lit(harness.modes.NO_SECOND)}; the autodiff backends "
            "(relu'' = 0 where it exists) are compared with each other there, and not "
            "failed where they part"
        )
    odd = rows.loc[rows["odd_one_out"].astype("string").fillna("") != ""]
    notes += [
        f"{r['kind']} {code(r['tensor'])}: **{lit(r['odd_one_out'])}** is the odd one out"
        for _, r in odd.drop_duplicates(["kind", "tensor"]).iterrows()
    ]
    if notes:
        blocks.append(Bullets(tuple(notes)))
    blocks += _theory_table(theory, case.label, comparison.baseline)
    return blocks + magnitude_plots(comparison, case, out)


def init_overlays(comparison: Comparison, cases: list[Case], out: Path) -> list[Block]:
    """MLP cases that differ only in their ``init``, overlaid in one per-layer plot."""
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        if case.declaration.layer_index is not None and "init" in case.cfg:
            key = tuple(sorted((k, str(v)) for k, v in case.cfg.items() if k != "init"))
            groups.setdefault(key, []).append(case)
    blocks: list[Block] = []
    for group in groups.values():
        if len({c.cfg["init"] for c in group}) < 2:
            continue
        labels = [c.label for c in group]
        path = out / f"init_{_slug('_'.join(labels))}.png"
        mags = comparison.magnitudes
        tap = next(iter(mags.loc[(mags["case"] == labels[0]) & (mags["step"] >= 0), "tap"]), "h")
        plot = plots.overlay_cases(mags, labels, tap, path, comparison.baseline)
        blocks += [
            Heading("Initialisations compared: " + " vs ".join(labels), 2),
            Para(
                "The same network with each initialisation ("
                + ", ".join(f"{code(c.label)}: init={lit(c.cfg['init'])}" for c in group)
                + ")."
            ),
            _image(plot),
        ]
    return blocks


def document(
    comparison: Comparison, cases: list[Case], facts: dict[str, Any], drift: pd.DataFrame, out: Path
) -> list[Block]:
    """The whole report as blocks; the PNGs it shows are written into ``out`` on the way."""
    theory, theory_note = theory_summaries(comparison, cases)
    blocks = overview(comparison, facts, out)
    blocks += modes_section(comparison)
    blocks += detection_section(comparison)
    blocks += drift_section(drift, out)
    blocks += init_overlays(comparison, cases, out)
    for case in cases:
        blocks += case_section(comparison, case, theory, out)
    blocks += [
        Heading("Run details", 2),
        Bullets(
            (
                f"seed {facts['seed']}, dtype {facts['dtype']}, baseline {code(facts['baseline'])}",
                "versions: " + ", ".join(lit(f"{k} {v}") for k, v in facts["versions"].items()),
                "machine: " + ", ".join(lit(f"{k} {v}") for k, v in facts["machine"].items()),
                "tables: `agreement.csv`, `identities.csv`, `magnitudes.csv`, `runs.csv` (timings)"
                + (", `drift.csv`" if not drift.empty else "")
                + ", `summary.json`",
                *([lit(theory_note)] if theory_note else []),
            )
        ),
    ]
    return blocks


__all__ = ["agreement_table", "case_section", "document", "overview", "verdict"]
