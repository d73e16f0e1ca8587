"""The ``gradparity`` command.

Exit codes: 0 all agree; 1 any disagreement or failed backend; 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.backends import DEFAULT_BACKENDS, REGISTRY, UnknownBackend
from harness.cases import CATALOG, Case, CaseError, select


class UsageError(Exception):
    """Bad command-line input: exit 2 with the message."""


def parse_sets(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["T=1000", "H=64"]`` -> ``{"T": "1000", "H": "64"}``."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE, not {pair!r}")
        out[key.strip()] = value.strip()
    return out


def check_jobs(jobs: int) -> int:
    """``--jobs`` counts processes: 1 or more."""
    if jobs < 1:
        raise UsageError(f"--jobs takes a number of processes, 1 or more, not {jobs}")
    return jobs


def build_cases(patterns: Sequence[str] | None, sets: dict[str, str]) -> list[Case]:
    """The selected cases, each configured with the ``--set`` options it has."""
    classes = select(list(patterns) if patterns else None)
    unused = set(sets) - {k for cls in classes for k in cls.options}
    if unused:
        raise UsageError(
            f"no selected case takes option(s) {sorted(unused)}; "
            f"see `gradparity describe CASE` for a case's options"
        )
    return [cls(**{k: v for k, v in sets.items() if k in cls.options}) for cls in classes]


def _shape_line(arrays: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in arrays.items()) or "none"


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for cls in select(None, include_slow=True):
        case = cls()
        params, _ = case.build(0)
        rows.append({
            "case": cls.name, "family": cls.family,
            "parameters": int(sum(v.size for v in params.values())),
            "options": " ".join(f"{k}={v}" for k, v in cls.options.items()),
            "default": "" if not cls.slow else "slow",
        })  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    if args.case not in CATALOG:
        raise CaseError(f"no case {args.case!r}; cases: {', '.join(CATALOG)}")
    case = build_cases([args.case], parse_sets(args.set))[0]
    params, inputs = case.build(0)
    print(f"{case.label}  (family: {case.family})\n")
    print(case.doc() + "\n")
    opts = ", ".join(f"{k}={v!r} (default {case.options[k]!r})" for k, v in case.cfg.items())
    print(f"options:    {opts or 'none'}")
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


def format_agreement(table: pd.DataFrame) -> str:
    """A case·tensor × backend grid; each cell the max relative error and ✓ or ✗."""
    if table.empty:
        return "(nothing compared)"

    def cell(row) -> str:
        if row["error"]:
            return "✗ failed"
        mark = "✓" if row["ok"] else "✗"
        return f"{mark} {row['max_rel_err']:.1e}"

    shown = table.assign(cell=table.apply(cell, axis=1), name=table["kind"] + ":" + table["tensor"])
    grid = shown.pivot_table(
        index=["case", "name"], columns="backend", values="cell", aggfunc="first", sort=False
    )
    grid.columns.name = f"vs {table['baseline'].iloc[0]}"
    return grid.fillna("").to_string()


def print_findings(comparison) -> None:
    table, runs = comparison.agreement, comparison.runs
    bad = table[~table["ok"].astype(bool)]
    for _, row in bad.iterrows():
        where = (
            f"{row['case']}: {row['kind']} {row['tensor']!r}, {row['backend']} vs {row['baseline']}"
        )
        if row["error"]:
            print(f"  ✗ {where}: {row['error']}")
        else:
            steps = f"; bad steps {row['bad_steps']}" if row["bad_steps"] else ""
            print(
                f"  ✗ {where}: {row['n_bad']}/{row['n_elements']} elements disagree; worst at "
                f"{row['worst_index']}: got {row['worst_got']:.6g}, expected "
                f"{row['worst_expected']:.6g} (max rel err {row['max_rel_err']:.2e}){steps}"
            )
    odd = table.loc[table["odd_one_out"].astype(bool), ["case", "kind", "tensor", "odd_one_out"]]
    for (case, kind, tensor, who), _ in odd.groupby(list(odd.columns), sort=False):
        print(f"  ! {case}: {kind} {tensor!r}: {who} is the odd one out (the others agree)")
    for _, r in runs[runs["status"] == "skipped"].iterrows():
        print(f"  - {r['case']}: {r['backend']} skipped ({r['error']})")


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
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import compare_backends

    jobs = check_jobs(args.jobs)
    cases = build_cases(args.case, parse_sets(args.set))
    backends = args.backend or DEFAULT_BACKENDS
    comparison = compare_backends(cases, backends, args.dtype, args.seed, args.baseline, jobs=jobs)
    print(format_agreement(comparison.agreement))
    print_findings(comparison)
    print_summaries(comparison)
    n, n_ok = len(comparison.agreement), int(comparison.agreement["ok"].sum())
    verdict = "all agree" if comparison.all_agree else "DISAGREEMENT"
    print(f"\n{n_ok}/{n} comparisons agree over {len(cases)} cases ({args.dtype}): {verdict}")
    if args.csv:
        comparison.agreement.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0 if comparison.all_agree else 1


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", action="append", metavar="PATTERN",
                   help="case name, glob (mlp_*), family or substring; repeatable (default: the catalog)")  # fmt: skip
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

    add_commands(sub)  # (issue 5) validate and selftest
    from harness.bench import add_command as add_bench  # argparse only; work imported on run

    add_bench(sub)  # (issue 6) bench
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, CaseError, UnknownBackend) as e:
        print(f"gradparity: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
