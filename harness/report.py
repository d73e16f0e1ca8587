"""``gradparity report``: the comparison a person wants to read.

Runs the selected cases through the backends (via ``compare_backends``), then writes, into
one folder: the tidy tables (agreement.csv, magnitudes.csv, runs.csv, drift.csv), a
summary.json, report.md (for GitHub, PNGs beside it) and report.html (one self-contained
file). Everything written is read from the tables; nothing here imports a framework or
computes a gradient. The exit code is 0 when every tensor agrees and no backend failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.cases import Case
from harness.escaping import csv_table
from harness.progress import Progress
from harness.report_doc import document, worst_per_pair
from harness.report_render import to_html, to_markdown
from harness.runner import Comparison, compare_backends, verdict_line

UNROLL_FAMILIES = ("elman", "lstm", "gru", "rnn")
DRIFT_LENGTHS = (8, 16, 32, 64, 128, 256, 512)
DRIFT_BACKEND = "torch"
CSV_FILES = ("agreement.csv", "magnitudes.csv", "runs.csv", "drift.csv")
GENERATED_PNG = re.compile(r"^(steps|layers|init|agreement|drift)_.*\.png$")


# --- what is not in the tables: versions and machine


def versions() -> dict[str, str]:
    """Versions of Python and the libraries, read from package metadata (never imported)."""
    out = {"python": platform.python_version()}
    for name in ("gradparity", "numpy", "pandas", "matplotlib", "torch", "jax", "jaxlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


# --- float32 drift: one unroll at a few lengths, float32 against float64


def drift_case(cases: list[Case]) -> tuple[Case, str] | None:
    """The case to grow and its length option: the first unroll with ``T``, else the
    first case with ``K`` (the deep chain's number of stages)."""
    for case in cases:
        if case.family in UNROLL_FAMILIES and "T" in case.options:
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
    from harness.compare import compare_arrays
    from harness.tolerances import tolerance_for

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
            dtype: compare_backends([variant], [DRIFT_BACKEND], dtype, seed, DRIFT_BACKEND,
                                    progress).results[0]
            for dtype in ("float64", "float32")
        }  # fmt: skip
        r64, r32 = results["float64"], results["float32"]
        row = {"case": case.name, "option": option, "length": length, "backend": DRIFT_BACKEND,
               "max_rel_err": math.nan, "rel_l2_err": math.nan, "underflowed": 0,
               "error": r64.error or r32.error or ""}  # fmt: skip
        if r64.ok and r32.ok and r64.taps:
            errors = [
                compare_arrays(r32.taps[t], g, tol, "float32", stepped=r64.tap_steps.get(t) is not None)
                for t, g in r64.taps.items()
            ]  # fmt: skip
            row["max_rel_err"] = max(e["max_rel_err"] for e in errors)
            row["rel_l2_err"] = max(e["rel_l2_err"] for e in errors)
            row["underflowed"] = sum(
                int(np.sum((np.asarray(r32.taps[t]) == 0) & (np.asarray(g) != 0)))
                for t, g in r64.taps.items()
            )
        rows.append(row)
    return pd.DataFrame(rows)


# --- summary.json


def _number(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def summary(comparison: Comparison, cases: list[Case], dtype: str, seed: int) -> dict[str, Any]:
    """Counts, the verdict, the worst error per backend pair, failures, seed, dtype,
    versions and machine — everything a CI log or a dashboard wants."""
    agreement, runs = comparison.agreement, comparison.runs
    status = runs["status"].value_counts()
    pairs = worst_per_pair(agreement)
    verdicts = comparison.verdicts
    failed = runs[runs["status"] == "failed"]
    return {
        "all_agree": comparison.all_agree,
        "exit_code": comparison.exit_code,
        "counts": {
            "cases": len(cases),
            "backends": int(runs["backend"].nunique()),
            "comparisons": len(agreement),
            "agree": verdicts["agree"],
            "disagree": verdicts["disagree"],  # measured, and outside the tolerance
            "inconclusive": verdicts["inconclusive"],  # an oracle that could not resolve it
            "not_compared": verdicts["failed"],  # a backend failed or a tensor was missing
            "runs": len(runs),
            "runs_ok": int(status.get("ok", 0)),
            "runs_failed": int(status.get("failed", 0)),
            "runs_skipped": int(status.get("skipped", 0)),
        },
        "worst_rel_l2_err": {
            p["pair"]: {"value": _number(p["worst_rel_l2_err"]), "where": p["where"]}
            for _, p in pairs.iterrows()
        },
        "failed": [
            {"case": r["case"], "backend": r["backend"], "error": r["error"]}
            for _, r in failed.iterrows()
        ],
        "cases": [c.label for c in cases],
        "backends": list(dict.fromkeys(runs["backend"])),
        "baseline": comparison.baseline,
        "seed": seed,
        "dtype": dtype,
        "versions": versions(),
        "machine": machine(),
    }


# --- writing


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    csv_table(table).to_csv(path, index=False, lineterminator="\n")


def clear_generated(out: Path) -> None:
    """Remove the PNGs an earlier report wrote here (and nothing else)."""
    for path in out.glob("*.png"):
        if GENERATED_PNG.match(path.name):
            path.unlink()


@dataclass
class Report:
    """What ``write_report`` produced: the comparison, the folder and the exit code."""

    comparison: Comparison
    out: Path
    exit_code: int


def write_report(
    out: str | Path,
    cases: list[Case],
    backends: list[str],
    dtype: str = "float64",
    seed: int = 0,
    baseline: str = "torch",
    quiet: bool = False,
    jobs: int = 1,
) -> Report:
    """Run, compare and write every report file into ``out`` (created if missing);
    ``jobs`` > 1 spreads the cases over that many processes."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    total = len(cases) * len(backends) + drift_runs(cases, backends)
    bar = Progress(total, "report", quiet)
    try:
        comparison = compare_backends(cases, backends, dtype, seed, baseline, bar, jobs=jobs)
        drift = dtype_drift(cases, seed, bar) if drift_runs(cases, backends) else pd.DataFrame()
    finally:
        bar.close()
    _write_csv(comparison.agreement, out / "agreement.csv")
    _write_csv(comparison.magnitudes, out / "magnitudes.csv")
    _write_csv(comparison.runs.round({"seconds": 4, "compile_seconds": 4}), out / "runs.csv")
    if not drift.empty:
        _write_csv(drift, out / "drift.csv")
    facts = summary(comparison, cases, dtype, seed)
    (out / "summary.json").write_text(json.dumps(facts, indent=2, allow_nan=False) + "\n")
    clear_generated(out)
    blocks = document(comparison, cases, facts, drift, out)
    (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    (out / "report.html").write_text(to_html(blocks, "gradparity report"), encoding="utf-8")
    return Report(comparison, out, facts["exit_code"])


def cmd_report(args: argparse.Namespace) -> int:
    """The ``gradparity report`` command."""
    from harness.backends import DEFAULT_BACKENDS
    from harness.selection import build_cases, check_jobs, output_folder, parse_sets

    check_jobs(args.jobs)
    cases = build_cases(args.case, parse_sets(args.set))
    output_folder(args.out)
    backends = args.backend or DEFAULT_BACKENDS
    report = write_report(args.out, cases, backends, args.dtype, args.seed, args.baseline,
                          quiet=args.quiet, jobs=args.jobs)  # fmt: skip
    print(verdict_line(report.comparison, len(cases), args.dtype))
    print(f"wrote {report.out / 'report.md'}, {report.out / 'report.html'} and the CSVs")
    return report.exit_code


__all__ = ["Report", "cmd_report", "dtype_drift", "summary", "write_report"]
