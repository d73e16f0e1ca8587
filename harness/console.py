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
from harness.compare.text import Finding, Topic


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
    oracle could not resolve, the odd one out, what is unsupported and what was skipped:
    ``found``'s findings, one line each."""
    return [f.line() for f in found(comparison)]


def found(comparison: Any) -> list[Finding]:
    """``findings``, as data: each Finding carries its facts (topic, case, mode, tensor,
    backend, counts, worst element and values) and renders its line from a template."""
    table, runs = comparison.agreement, comparison.runs
    out: list[Finding] = []
    odd_baseline = baseline_odd(table)
    told = [Verdict.DISAGREE, Verdict.FAILED, Verdict.INCONCLUSIVE]
    shown = table["verdict"].isin(told) & ~odd_baseline
    failures = _run_failures(table[shown], runs)
    said: set = set()
    for i, row in table[shown].iterrows():
        verdict = Verdict.of(row["verdict"])
        key = failures.get(i)
        if key is not None:  # a run that failed as a whole: said once, for all it left
            if key not in said:
                said.add(key)
                rows = [j for j, k in failures.items() if k == key]
                backends = list(dict.fromkeys(table.loc[rows, "backend"]))
                out.append(_run_failed(row, verdict, backends, len(rows), key[2]))
            continue
        out.append(_of_row(row, verdict))
    noisy = table[table["verdict"] == Verdict.WITHIN_NOISE]
    for case, g in noisy.groupby("case", sort=False):
        out.append(
            Finding(
                case,
                Topic.WITHIN_NOISE,
                "{n} tensors agree within the problem's own rounding noise (up to "
                "{noise:.1e} of the scale, {apart:.1e} apart), beyond the fixed tolerance: "
                "the problem, not a backend, limits the agreement; the references are good "
                "to {digits} digits there",
                False,
                evidence="agreement",
                sign=Verdict.WITHIN_NOISE.mark,
                facts={
                    "n": len(g),
                    "noise": g["noise_floor"].max(),
                    "apart": g["max_rel_err"].max(),
                    "digits": _digits(g["digits"]),
                },
            )
        )
    out += _baseline_odd(table[odd_baseline])
    named = (table["odd_one_out"] != "") & (table["odd_one_out"] != table["baseline"])
    odd = table.loc[named, ["case", "kind", "tensor", "odd_one_out"]]
    for (case, kind, tensor, who), _ in odd.groupby(list(odd.columns), sort=False):
        out.append(
            Finding(
                case,
                Topic.ODD_ONE_OUT,
                "{role} {tensor!r}: {backend} is the odd one out (the others agree)",
                False,
                tensor=tensor,
                backend=who,
                evidence="agreement",
                caution=True,
                facts={"role": kind},
            )
        )
    out += identities_found(getattr(comparison, "identities", None))
    unsupported = runs[runs["status"] == "unsupported"]
    for (backend, what), g in unsupported.groupby(["backend", "error"], sort=False):
        out.append(
            Finding(
                "",
                Topic.UNSUPPORTED,
                "{backend} unsupported, {what}: {cases}, {names}",
                False,
                backend=backend,
                evidence="runs",
                sign=Verdict.UNSUPPORTED.mark,
                facts={
                    "what": what,
                    "cases": counted(len(g), "case"),
                    "names": ", ".join(g["case"]),
                },
            )
        )
    skipped = runs[runs["status"] == "skipped"]
    for (backend, mode, why), g in skipped.groupby(["backend", "mode", "error"], sort=False):
        out.append(
            Finding(
                "",
                Topic.SKIPPED,
                "{backend}{in_mode} skipped on {where}: {why}",
                False,
                backend=backend,
                evidence="runs",
                mode=mode,
                sign="-",
                facts={
                    "in_mode": "" if mode == "rev" else f" ({mode})",
                    "where": ", ".join(g["case"]) if len(g) <= 3 else f"{len(g)} cases",
                    "why": why,
                },
            )
        )
    return out


def _run_failed(
    row: pd.Series, verdict: Verdict, backends: list[str], n: int, error: str
) -> Finding:
    return Finding(
        row["case"],
        Topic.RUN_FAILED,
        "{backends} failed, {tensors} not compared: {error}",
        True,
        backend=listing(backends),
        evidence="runs",
        mode=row["mode"],
        sign=verdict.mark,
        facts={"backends": listing(backends), "tensors": counted(n, "tensor"), "error": error},
    )


def _of_row(row: pd.Series, verdict: Verdict) -> Finding:
    """One told row's finding: a failed tensor, an inconclusive one, the forward that
    differs, a tensor that disagrees."""
    common: dict[str, Any] = {
        "tensor": row["tensor"],
        "backend": row["backend"],
        "evidence": "agreement",
        "mode": row["mode"],
        "sign": verdict.mark,
    }
    where = "{role} {tensor!r}, {backend} vs {baseline}: "
    words = {"role": row["kind"], "baseline": row["baseline"]}
    if verdict is Verdict.FAILED:
        return Finding(
            row["case"],
            Topic.FAILED,
            where + "{error}",
            True,
            **common,
            facts={**words, "error": row["error"]},
        )
    if verdict is Verdict.INCONCLUSIVE:
        return Finding(
            row["case"],
            Topic.INCONCLUSIVE,
            where + "{verdict} — {reason}",
            False,
            **common,
            facts={**words, "verdict": verdict, "reason": row["reason"]},
        )
    measured: dict[str, Any] = {
        "element": str(row["worst_index"]),
        "values": (float(row["worst_got"]), float(row["worst_expected"])),
        "counts": (int(row["n_bad"]), int(row["n_elements"])),
        "first_bad": str(row["bad_steps"] or ""),
    }
    if row["mode"] == "rev" and row["kind"] == "loss":
        return Finding(
            row["case"],
            Topic.FORWARD,
            "the forward differs, {backend} vs {baseline}: loss {parted}, beyond the "
            "tolerance and the problem's own noise; the gradients below are computed from "
            "different values",
            True,
            **common,
            **measured,
            facts={**words, "parted": parted(row["worst_got"], row["worst_expected"])},
        )
    what = {"rev": "", "fwd": "the tangent disagrees, ", "hvp": "the H·v disagrees, "}
    tail = " elements; " if row["mode"] != "rev" else " elements disagree; "
    return Finding(
        row["case"],
        Topic.DISAGREES,
        where + "{what}{counts[0]}/{counts[1]}" + tail + "{worst}{steps}",
        True,
        **common,
        **measured,
        facts={
            **words,
            "what": what[row["mode"]],
            "worst": worst_at(row),
            "steps": f"; bad steps {row['bad_steps']}" if row["bad_steps"] else "",
        },
    )


def _baseline_odd(rows: pd.DataFrame) -> list[Finding]:
    """One finding per tensor on which the baseline is the odd one out: the fault is the
    baseline's, so the tensor is named once, with the backends that agree among themselves,
    and not once per backend compared with it."""
    out = []
    for (case, mode, kind, tensor), g in rows.groupby(
        ["case", "mode", "kind", "tensor"], sort=False
    ):
        first = g.iloc[0]
        out.append(
            Finding(
                case,
                Topic.BASELINE_ODD,
                "{role} {tensor!r}: the baseline {backend} is the odd one out — it disagrees "
                "with {others}, which agree among themselves; {first} vs {backend}: {worst}",
                True,
                tensor=tensor,
                backend=first["baseline"],
                evidence="agreement",
                mode=mode,
                sign=Verdict.DISAGREE.mark,
                facts={
                    "role": kind,
                    "others": listing(list(g["backend"])),
                    "first": first["backend"],
                    "worst": worst_at(first),
                },
            )
        )
    return out


def identity_findings(identities: pd.DataFrame | None) -> list[str]:
    """Each broken identity, by backend; then one line of how many held."""
    return [f.line() for f in identities_found(identities)]


def identities_found(identities: pd.DataFrame | None) -> list[Finding]:
    """``identity_findings``, as data."""
    if identities is None or identities.empty:
        return []
    mark = Verdict.DISAGREE.mark
    out = [
        Finding(
            r["case"],
            Topic.IDENTITY,
            "{identity} identity broken — {reason} (|lhs − rhs| = {rel_err:.1e} of the "
            "scale, allowed {rtol:.0e})"
            if r["verdict"] == Verdict.DISAGREE
            else "{identity} identity: {reason}",
            True,
            backend=r["backend"],
            evidence="identities",
            mode=r["mode"],
            sign=mark,
            facts={k: r[k] for k in ("identity", "reason", "rel_err", "rtol")},
        )
        for _, r in identities[~identities["ok"]].iterrows()
    ]
    held = identities[identities["ok"]]
    if len(held):
        kinds = ", ".join(f"{n} {k}" for k, n in held["identity"].value_counts(sort=False).items())
        out.append(
            Finding(
                "",
                Topic.IDENTITIES_HELD,
                "identities: {kinds} held (each autodiff backend's modes against each "
                "other; worst {worst:.1e} of the scale)",
                False,
                evidence="identities",
                sign="",
                counts=(len(held), len(identities)),
                facts={"kinds": kinds, "worst": held["rel_err"].max()},
            )
        )
    return out


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


__all__ = ["format_agreement", "findings", "found", "summaries", "verdict_line"]
