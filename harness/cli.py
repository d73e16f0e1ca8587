"""The ``gradparity`` command.

Exit codes: 0 all agree; 1 any disagreement or failed backend; 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.backends import DEFAULT_BACKENDS, REGISTRY, UnknownBackend
from harness.cases import CATALOG, CaseError, select
from harness.compare import parted
from harness.escaping import csv_table, terminal
from harness.runner import verdict_line
from harness.selection import (
    UsageError,
    build_cases,
    check_jobs,
    output_file,
    parse_sets,
)


def _shape_line(arrays: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in arrays.items()) or "none"


def _why(e: Exception) -> str:
    return str(e) if isinstance(e, CaseError) else f"{type(e).__name__}: {e}"


def cmd_list(args: argparse.Namespace) -> int:
    """The catalog; a case that cannot be built is listed with "?" and its error below."""
    rows, broken = [], []
    for cls in select(None, include_slow=True):
        try:
            params, _ = cls().build(0)
            size: int | str = int(sum(v.size for v in params.values()))
        except Exception as e:  # noqa: BLE001 - one broken case must not hide the others
            size = "?"
            broken.append(f"  ✗ {cls.name}: the case could not be built: {_why(e)}")
        rows.append({
            "case": cls.name, "family": cls.family, "parameters": size,
            "options": " ".join(f"{k}={v}" for k, v in cls.options.items()),
            "default": "" if not cls.slow else "slow",
        })  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False))
    for line in broken:
        print(line)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """A case's math, its options (with what each takes), and the shapes a plug-in sees."""
    if args.case not in CATALOG:
        raise CaseError(f"no case {args.case!r}; cases: {', '.join(CATALOG)}")
    case = build_cases([args.case], parse_sets(args.set))[0]
    print(f"{case.label}  (family: {case.family})\n")
    print(case.doc() + "\n")
    print("options:")
    for key, value in case.cfg.items():
        default = "" if value == case.options[key] else f" (default {case.options[key]!r})"
        print(f"  {key}={value!r}{default}: {case.takes(key)}")
    if not case.cfg:
        print("  none")
    try:
        params, inputs = case.build(0)
    except Exception as e:  # noqa: BLE001 - said in one line, with exit 1
        print(f"\n✗ the case could not be built with these options: {_why(e)}")
        return 1
    print(f"parameters: {_shape_line(params)}")
    print(f"inputs:     {_shape_line(inputs)}")
    from harness.backends.numeric import NumpyOps

    probe = NumpyOps()
    case.loss(probe, {k: v.astype(float) for k, v in params.items()}, inputs)
    taps = [
        f"{n}{list(v[0].shape)}" + (f" × {probe.tap_steps[n]} steps" if probe.tap_steps[n] else "")
        for n, v in probe.values.items()
    ]
    print(f"taps:       {', '.join(taps) or 'none'}")
    return 0


MARKS = {"agree": "✓", "disagree": "✗", "inconclusive": "?", "failed": "✗"}


def format_agreement(table: pd.DataFrame) -> str:
    """A case·tensor × backend grid under a line that names its metric: each cell the
    verdict's mark and max_rel_err, the largest |a − b| relative to the baseline's scale."""
    if table.empty:
        return "(nothing compared)"

    def cell(row) -> str:
        if row["verdict"] == "failed":
            return "✗ failed"
        return f"{MARKS.get(row['verdict'], '✗')} {row['max_rel_err']:.1e}"

    shown = table.assign(cell=table.apply(cell, axis=1), name=table["kind"] + ":" + table["tensor"])
    grid = shown.pivot_table(
        index=["case", "name"], columns="backend", values="cell", aggfunc="first", sort=False
    )
    grid.columns.name = f"vs {table['baseline'].iloc[0]}"
    legend = (
        "max_rel_err = max|a − b| / max|b| against the baseline (per step for unroll taps); "
        "✓ within the tolerance (for numeric, widened by its own error estimate), ✗ outside "
        "it, ? finite differences cannot resolve it"
    )
    return legend + "\n" + grid.fillna("").to_string()


def print_findings(comparison) -> None:
    """What disagrees (the worst element, with the digits where the values part), what an
    oracle could not resolve, the odd one out, and what was skipped."""
    table, runs = comparison.agreement, comparison.runs
    for _, row in table[table["verdict"].isin(["disagree", "failed", "inconclusive"])].iterrows():
        where = (
            f"{row['case']}: {row['kind']} {row['tensor']!r}, {row['backend']} vs {row['baseline']}"
        )
        if row["verdict"] == "failed":
            print(terminal(f"  ✗ {where}: {row['error']}"))
        elif row["verdict"] == "inconclusive":
            print(terminal(f"  ? {where}: inconclusive — {row['reason']}"))
        else:
            steps = f"; bad steps {row['bad_steps']}" if row["bad_steps"] else ""
            print(terminal(
                f"  ✗ {where}: {row['n_bad']}/{row['n_elements']} elements disagree; worst at "
                f"{row['worst_index']}: {parted(row['worst_got'], row['worst_expected'])}; "
                f"max_rel_err {row['max_rel_err']:.2e}{steps}"
            ))  # fmt: skip
    odd = table.loc[table["odd_one_out"].astype(bool), ["case", "kind", "tensor", "odd_one_out"]]
    for (case, kind, tensor, who), _ in odd.groupby(list(odd.columns), sort=False):
        print(
            terminal(f"  ! {case}: {kind} {tensor!r}: {who} is the odd one out (the others agree)")
        )
    for _, r in runs[runs["status"] == "skipped"].iterrows():
        print(terminal(f"  - {r['case']}: {r['backend']} skipped ({r['error']})"))


def print_summaries(comparison) -> None:
    """Modes of the finite-difference checks, and the magnitude summaries beside theory."""
    directional = comparison.runs.query("mode == 'directional'")["case"].tolist()
    if directional:
        print(
            f"  numeric: directional check (random directions per tensor) on {', '.join(directional)}"
        )
    s = comparison.summaries
    if s.empty:
        return
    s = (
        s[s["backend"] == comparison.agreement["baseline"].iloc[0]]
        if len(comparison.agreement)
        else s
    )
    print("\ngradient magnitudes (rate: fitted factor per step/layer back; theory beside it)")
    shown = s[["case", "tap", "steps", "rate", "first_over_last", "zeros", "theory"]]
    print(shown.to_string(index=False, float_format=lambda v: "—" if np.isnan(v) else f"{v:.3g}"))


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import compare_backends

    jobs = check_jobs(args.jobs)
    cases = build_cases(args.case, parse_sets(args.set))
    if args.csv:
        output_file(args.csv, "--csv")
    backends = args.backend or DEFAULT_BACKENDS
    comparison = compare_backends(cases, backends, args.dtype, args.seed, args.baseline, jobs=jobs)
    print(format_agreement(comparison.agreement))
    print_findings(comparison)
    print_summaries(comparison)
    print("\n" + verdict_line(comparison, len(cases), args.dtype))
    if args.csv:
        csv_table(comparison.agreement).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return comparison.exit_code


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", action="append", metavar="PATTERN",
                   help="an exact case name (it wins: --case elman is that one case), else a "
                   "glob ('elman*'), a family (lstm) or a substring; repeatable (default: the "
                   "catalog)")  # fmt: skip
    p.add_argument("--backend", action="append", metavar="NAME",
                   help=f"repeatable; default: {' '.join(DEFAULT_BACKENDS)}; known: {' '.join(REGISTRY)}")  # fmt: skip
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline", default="torch", help="backend the others are compared against")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a case option, e.g. T=1000")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="spread the cases over N processes (default 1)")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="gradparity",
        description="Run one computation through several implementations of the chain rule "
        "and show, tensor by tensor, whether their gradients agree.",
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="the cases, with family and size")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("describe", help="a case's math, options, parameters, inputs and taps")
    p.add_argument("case")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_describe)
    p = sub.add_parser("run", help="compare backends and print the agreement table")
    _add_selection(p)
    p.add_argument("--csv", metavar="FILE", help="also write the tidy agreement table")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("report", help="write the agreement report: Markdown, HTML, CSV, plots")
    _add_selection(p)
    p.add_argument("--out", default="reports", metavar="DIR", help="folder to write into (default: reports/)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")

    def cmd_report(args: argparse.Namespace) -> int:
        from harness.report import cmd_report as report  # lazy: matplotlib loads only here

        return report(args)

    p.set_defaults(func=cmd_report)
    from harness.plugins.commands import add_commands  # argparse only; work imported per command

    add_commands(sub)
    from harness.bench import add_command as add_bench  # argparse only; work imported on run

    add_bench(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command; bad input is exit 2 with one sentence, never a traceback.

    Output piped into a program that stops reading (``gradparity run | head``) ends the
    command quietly, with the shell's status for SIGPIPE (141), after the work in flight
    has been cleaned up (plug-in workers included)."""
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return code
    except (UsageError, CaseError, UnknownBackend) as e:
        print(f"gradparity: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Python's advice (docs: "Note on SIGPIPE"): point stdout at devnull, so that the
        # interpreter's last flush at exit finds nothing to write into the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
