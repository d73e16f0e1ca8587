"""The report's files: a Comparison (and a drift table) it is given, written into one
folder — the tidy tables (agreement.csv, identities.csv, magnitudes.csv, runs.csv,
drift.csv), a
summary.json, report.md (for GitHub, PNGs beside it) and report.html (one self-contained
file). Everything written is read from the tables; nothing here runs a backend, imports a
framework or computes a gradient.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from harness import output
from harness.cases import Case
from harness.compare import Comparison, Verdict, baseline_odd
from harness.escaping import write_csv
from harness.provenance import sources, summary_entry, with_sources
from harness.report.document import document, worst_per_pair
from harness.report.render import to_html, to_markdown

CSV_FILES = ("agreement.csv", "identities.csv", "magnitudes.csv", "runs.csv", "drift.csv")
GENERATED_PNG = re.compile(r"^(steps|layers|init|agreement|drift|sweep)_.*\.png$")
# Every file a report writes — ``gradparity report``, a sweep's report and
# ``validate --out`` alike, so that one of them written over another leaves none of its
# files behind. The names are needed only for a folder an older version wrote (without a
# manifest: ``harness.output``).
REPORT_FILES = frozenset(
    {
        *CSV_FILES,
        "faults.csv",
        "points.csv",
        "summaries.csv",
        "decay.csv",
        "summary.json",
        "sweep.json",
        "report.md",
        "report.html",
        "diagnostics.md",
        "report-error.txt",
    }
)


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
            "compared": comparison.compared,  # rows whose numbers were compared: 0 is no success
            "agree": verdicts[Verdict.AGREE],
            "agree_within_noise": verdicts[Verdict.WITHIN_NOISE],  # the problem limits it
            "disagree": verdicts[Verdict.DISAGREE],  # measured, and outside the tolerance
            "inconclusive": verdicts[Verdict.INCONCLUSIVE],  # an oracle could not resolve it
            "unsupported": verdicts[Verdict.UNSUPPORTED],  # a backend lacks a function
            "not_compared": verdicts[Verdict.FAILED],  # a backend failed or a tensor was missing
            # disagreements where the baseline is the odd one out: the fault is the baseline's
            "baseline_odd_one_out": int(baseline_odd(agreement).sum()),
            "runs": len(runs),
            "runs_ok": int(status.get("ok", 0)),
            "runs_failed": int(status.get("failed", 0)),
            "runs_skipped": int(status.get("skipped", 0)),
            "runs_unsupported": int(status.get("unsupported", 0)),
            "identities": len(comparison.identities),
            "identities_broken": int((~comparison.identities["ok"].astype(bool)).sum()),
        },
        "modes": list(dict.fromkeys(runs["mode"])),
        "worst_rel_l2_err": {
            p["pair"]: {"value": _number(p["worst_rel_l2_err"]), "where": p["where"]}
            for _, p in pairs.iterrows()
        },
        "failed": [
            {"case": r["case"], "backend": r["backend"], "error": r["error"]}
            for _, r in failed.iterrows()
        ],
        "cases": [c.label for c in cases],
        "sources": summary_entry(sources(cases)),  # the user's files that ran: path, SHA-256
        "backends": list(dict.fromkeys(runs["backend"])),
        "baseline": comparison.baseline,
        "seed": seed,
        "dtype": dtype,
        "versions": versions(),
        "machine": machine(),
    }


# --- writing


def report_file(name: str) -> bool:
    """Is ``name`` one of the files a report writes (``REPORT_FILES``, a generated plot)?"""
    return name in REPORT_FILES or bool(GENERATED_PNG.match(name))


def staged_report(out: str | Path) -> AbstractContextManager[Path]:
    """A staging folder for a report into ``out`` (``harness.output.staged``): written
    whole or not at all, and replacing every file an earlier report wrote there."""
    return output.staged(out, "report", report_file)


@dataclass
class Report:
    """What ``write_report`` produced: the comparison, the folder and the exit code."""

    comparison: Comparison
    out: Path
    exit_code: int


def write_report(
    out: str | Path,
    comparison: Comparison,
    cases: list[Case],
    drift: pd.DataFrame | None = None,
    dtype: str = "float64",
    seed: int = 0,
) -> Report:
    """Write every report file of ``comparison`` (and of the float32 ``drift`` table, if
    given) into ``out``, created if missing: all of them or, on a write error
    (``harness.output.OutputError``) or an interrupt, none (``staged_report``)."""
    out = Path(os.path.abspath(out))
    drift = pd.DataFrame() if drift is None else drift
    with staged_report(out) as stage:
        write_csv(comparison.agreement, stage / "agreement.csv")
        write_csv(comparison.identities, stage / "identities.csv")
        write_csv(comparison.magnitudes, stage / "magnitudes.csv")
        runs = comparison.runs.round({"seconds": 4, "compile_seconds": 4})
        write_csv(with_sources(runs, sources(cases)), stage / "runs.csv")
        if not drift.empty:
            write_csv(drift, stage / "drift.csv")
        facts = summary(comparison, cases, dtype, seed)
        (stage / "summary.json").write_text(json.dumps(facts, indent=2, allow_nan=False) + "\n")
        blocks = document(comparison, cases, facts, drift, stage)
        (stage / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
        (stage / "report.html").write_text(to_html(blocks, "gradparity report"), encoding="utf-8")
    return Report(comparison, out, facts["exit_code"])


__all__ = ["REPORT_FILES", "Report", "report_file", "staged_report", "summary", "write_report"]
