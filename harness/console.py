"""What the commands print about a Comparison: the agreement grid under the line that
names its metric, the findings (what disagrees, to the digits where the values part; what
an oracle could not resolve; the odd one out), the magnitude summaries, the verdict line.
Text only, for the command line, whose streams show every control character a case's or a
plug-in's words carry (``escaping.console``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.compare import Verdict, baseline_odd, counted, legend, listing, parted, worst_at


def format_agreement(table: pd.DataFrame) -> str:
    """A case·tensor × backend grid under a line that names its metric: each cell the
    verdict's mark and max_rel_err, the largest |a − b| relative to the baseline's scale."""
    if table.empty:
        return "(nothing compared)"

    def cell(row) -> str:
        verdict = Verdict.of(row["verdict"])
        if not verdict.compared:
            return f"{verdict.mark} {verdict}"
        return f"{verdict.mark} {row['max_rel_err']:.1e}"

    shown = table.assign(cell=table.apply(cell, axis=1), name=table["kind"] + ":" + table["tensor"])
    index = ["case", "name"] if set(table["mode"]) <= {"rev"} else ["case", "mode", "name"]
    grid = shown.pivot_table(
        index=index, columns="backend", values="cell", aggfunc="first", sort=False
    )
    grid.columns.name = f"vs {table['baseline'].iloc[0]}"
    heading = (
        "max_rel_err = max|a − b| / max|b| against the baseline (per step for unroll taps); "
        + legend()
        + (
            ""
            if index == ["case", "name"]
            else "; mode fwd: the tangent along the case's direction u, hvp: H·v along v"
        )
    )
    return heading + "\n" + grid.fillna("").to_string()


def _run_failures(rows: pd.DataFrame, runs: pd.DataFrame) -> dict[Any, tuple[str, str, str]]:
    """row index -> (case, mode, the run's error), for the failed rows whose backend's run
    failed with an error that more than one row shares (each backend's error for every
    tensor, or one error of the case's that every backend met)."""
    failed = runs[runs["status"] == "failed"].set_index(["case", "mode", "backend"])["error"]
    keys = {}
    for i, row in rows[rows["verdict"] == Verdict.FAILED].iterrows():
        error = failed.get((row["case"], row["mode"], row["backend"]))
        if isinstance(error, str) and error:
            keys[i] = (row["case"], row["mode"], error)
    shared = pd.Series(list(keys.values()), dtype=object).value_counts()
    return {i: k for i, k in keys.items() if shared[k] > 1}


def findings(comparison: Any) -> list[str]:
    """What disagrees, forward first (the worst element, with the digits where the values
    part), what agrees only within the problem's noise and to how many digits, what an
    oracle could not resolve, the odd one out, what is unsupported and what was skipped."""
    table, runs = comparison.agreement, comparison.runs
    lines = []
    odd_baseline = baseline_odd(table)
    told = [Verdict.DISAGREE, Verdict.FAILED, Verdict.INCONCLUSIVE]
    shown = table["verdict"].isin(told) & ~odd_baseline
    failures = _run_failures(table[shown], runs)
    said: set = set()
    for i, row in table[shown].iterrows():
        case = row["case"] if row["mode"] == "rev" else f"{row['case']} ({row['mode']})"
        where = f"{case}: {row['kind']} {row['tensor']!r}, {row['backend']} vs {row['baseline']}"
        verdict = Verdict.of(row["verdict"])
        key = failures.get(i)
        if key is not None:  # a run that failed as a whole: said once, for all it left
            if key not in said:
                said.add(key)
                rows = [j for j, k in failures.items() if k == key]
                backends = list(dict.fromkeys(table.loc[rows, "backend"]))
                lines.append(
                    f"  {verdict.mark} {case}: {listing(backends)} failed, "
                    f"{counted(len(rows), 'tensor')} not compared: {key[2]}"
                )
            continue
        if row["mode"] != "rev" and verdict is Verdict.DISAGREE:
            what = "tangent" if row["mode"] == "fwd" else "H·v"
            lines.append(
                f"  {verdict.mark} {where}: the {what} disagrees, {row['n_bad']}/{row['n_elements']} "
                f"elements; {worst_at(row)}"
                f"{'; bad steps ' + row['bad_steps'] if row['bad_steps'] else ''}"
            )
            continue
        if verdict is Verdict.FAILED:
            lines.append(f"  {verdict.mark} {where}: {row['error']}")
        elif verdict is Verdict.INCONCLUSIVE:
            lines.append(f"  {verdict.mark} {where}: {verdict} — {row['reason']}")
        elif row["kind"] == "loss":
            lines.append(
                f"  {verdict.mark} {row['case']}: the forward differs, {row['backend']} vs {row['baseline']}: "
                f"loss {parted(row['worst_got'], row['worst_expected'])}, beyond the tolerance "
                f"and the problem's own noise; the gradients below are computed from different "
                "values"
            )
        else:
            steps = f"; bad steps {row['bad_steps']}" if row["bad_steps"] else ""
            lines.append(
                f"  {verdict.mark} {where}: {row['n_bad']}/{row['n_elements']} elements disagree; "
                f"{worst_at(row)}{steps}"
            )
    noisy = table[table["verdict"] == Verdict.WITHIN_NOISE]
    for case, g in noisy.groupby("case", sort=False):
        lines.append(
            f"  {Verdict.WITHIN_NOISE.mark} {case}: {len(g)} tensors agree within the problem's own rounding noise "
            f"(up to {g['noise_floor'].max():.1e} of the scale, {g['max_rel_err'].max():.1e} "
            f"apart), beyond the fixed tolerance: the problem, not a backend, limits the "
            f"agreement; the references are good to {_digits(g['digits'])} digits there"
        )
    lines += _baseline_odd_lines(table[odd_baseline])
    named = (table["odd_one_out"] != "") & (table["odd_one_out"] != table["baseline"])
    odd = table.loc[named, ["case", "kind", "tensor", "odd_one_out"]]
    for (case, kind, tensor, who), _ in odd.groupby(list(odd.columns), sort=False):
        lines.append(f"  ! {case}: {kind} {tensor!r}: {who} is the odd one out (the others agree)")
    lines += identity_findings(getattr(comparison, "identities", None))
    unsupported = runs[runs["status"] == "unsupported"]
    for (backend, what), g in unsupported.groupby(["backend", "error"], sort=False):
        lines.append(
            f"  {Verdict.UNSUPPORTED.mark} {backend} unsupported, {what}: {counted(len(g), 'case')}, "
            f"{', '.join(g['case'])}"
        )
    skipped = runs[runs["status"] == "skipped"]
    for (backend, mode, why), g in skipped.groupby(["backend", "mode", "error"], sort=False):
        where = ", ".join(g["case"]) if len(g) <= 3 else f"{len(g)} cases"
        mode = "" if mode == "rev" else f" ({mode})"
        lines.append(f"  - {backend}{mode} skipped on {where}: {why}")
    return lines


def _baseline_odd_lines(rows: pd.DataFrame) -> list[str]:
    """One line per tensor on which the baseline is the odd one out: the fault is the
    baseline's, so the tensor is named once, with the backends that agree among themselves,
    and not once per backend compared with it."""
    lines = []
    for (case, mode, kind, tensor), g in rows.groupby(
        ["case", "mode", "kind", "tensor"], sort=False
    ):
        first = g.iloc[0]
        label = case if mode == "rev" else f"{case} ({mode})"
        lines.append(
            f"  {Verdict.DISAGREE.mark} {label}: {kind} {tensor!r}: the baseline {first['baseline']} is the odd one "
            f"out — it disagrees with {listing(list(g['backend']))}, which agree among "
            f"themselves; {first['backend']} vs {first['baseline']}: {worst_at(first)}"
        )
    return lines


def identity_findings(identities: pd.DataFrame | None) -> list[str]:
    """Each broken identity, by backend; then one line of how many held."""
    if identities is None or identities.empty:
        return []
    mark = Verdict.DISAGREE.mark
    lines = [
        (
            f"  {mark} {r['case']} ({r['mode']}): {r['identity']} identity broken — "
            f"{r['reason']} (|lhs − rhs| = {r['rel_err']:.1e} of the scale, "
            f"allowed {r['rtol']:.0e})"
            if r["verdict"] == Verdict.DISAGREE
            else f"  {mark} {r['case']} ({r['mode']}): {r['identity']} identity: {r['reason']}"
        )
        for _, r in identities[~identities["ok"]].iterrows()
    ]
    held = identities[identities["ok"]]
    if len(held):
        kinds = ", ".join(f"{n} {k}" for k, n in held["identity"].value_counts(sort=False).items())
        lines.append(
            f"  identities: {kinds} held (each autodiff backend's modes against each "
            f"other; worst {held['rel_err'].max():.1e} of the scale)"
        )
    return lines


def _digits(digits: pd.Series) -> str:
    low, high = float(digits.min()), float(digits.max())
    return f"{low:.1f}" if high - low < 0.05 else f"{low:.1f}–{high:.1f}"


def summaries(comparison: Any) -> list[str]:
    """Modes of the finite-difference checks, and the magnitude summaries beside theory."""
    lines = []
    directional = comparison.runs.query("method == 'directional'")["case"].tolist()
    if directional:
        lines.append(
            f"  numeric: directional check (random directions per tensor) on {', '.join(directional)}"
        )
    s = comparison.summaries
    if s.empty:
        return lines
    s = (
        s[s["backend"] == comparison.agreement["baseline"].iloc[0]]
        if len(comparison.agreement)
        else s
    )
    lines.append(
        "\ngradient magnitudes (rate: fitted factor per step/layer back; theory beside it)"
    )
    shown = s[["case", "tap", "steps", "rate", "first_over_last", "zeros", "theory"]]
    lines.append(
        shown.to_string(index=False, float_format=lambda v: "—" if np.isnan(v) else f"{v:.3g}")
    )
    return lines


def _blame(table: pd.DataFrame, n_disagree: int) -> str:
    """Which side a disagreement is on, where the numbers say: the baseline, when it is
    the odd one out (``harness.compare.baseline_odd``)."""
    odd = table[baseline_odd(table)]
    if odd.empty:
        return ""
    who = ", ".join(dict.fromkeys(odd["baseline"]))
    tensors = len(odd.drop_duplicates(["case", "mode", "kind", "tensor"]))
    if len(odd) == n_disagree:
        return (
            f": the baseline {who} is the odd one out on {counted(tensors, 'tensor')} — the others "
            "agree among themselves, so the fault is the baseline's"
        )
    return f" (the baseline {who} is the odd one out on {counted(tensors, 'tensor')})"


def verdict_line(comparison: Any, cases: int, dtype: str) -> str:
    """ "96 of 100 tensors agree, 2 agree within noise, 2 inconclusive … over 19 cases
    (float64): no disagreement (some agree within noise, inconclusive)"."""
    counts, n = comparison.verdicts, len(comparison.agreement)
    parts = [f"{counts[Verdict.AGREE]} of {n} tensors agree" if n else "no tensor compared"]
    parts += [f"{counts[v]} {v}" for v in Verdict if v is not Verdict.AGREE and counts[v]]
    failed_runs = int((comparison.runs["status"] == "failed").sum())
    if failed_runs:
        parts.append(counted(failed_runs, "failed run"))
    ids = getattr(comparison, "identities", None)
    broken = 0 if ids is None else int((~ids["ok"]).sum())
    if broken:
        parts.append(counted(broken, "broken identity", "broken identities"))
    if counts[Verdict.DISAGREE] or broken:
        verdict = "DISAGREEMENT" + _blame(comparison.agreement, counts[Verdict.DISAGREE])
    elif comparison.exit_code and (counts[Verdict.FAILED] or failed_runs):
        verdict = "FAILED"
    elif comparison.compared == 0:
        verdict = (
            f"NOTHING COMPARED — no backend beside the baseline {comparison.baseline} "
            "gave a result to compare (skipped or unsupported: see above); add a backend "
            "that runs on these cases"
        )
    elif counts[Verdict.AGREE] == n:
        verdict = "all agree"
    else:
        some = [v for v in Verdict if v is not Verdict.AGREE and not v.fails_run and counts[v]]
        verdict = f"no disagreement (some {', '.join(some)})"
    return f"{', '.join(parts)} over {counted(cases, 'case')} ({dtype}): {verdict}"


__all__ = ["format_agreement", "findings", "summaries", "verdict_line"]
