"""``gradparity run`` and ``gradparity report``: select the cases, run them through the
backends, compare, and print (run) or write (report). Each command composes the layers
in that order and does nothing else."""

from __future__ import annotations

import argparse

from harness.backends import DEFAULT_BACKENDS, REGISTRY


def add_selection(p: argparse.ArgumentParser) -> None:
    """The options that choose what is compared: cases, backends, dtype, seed, baseline."""
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
    add_noise(p)
    add_modes(p)


def mode_list(text: str) -> str:
    """--mode rev|fwd|hvp, or several with commas: checked here, so a typo is exit 2."""
    from harness.modes import UnknownMode, parse_modes

    try:
        parse_modes([text])
    except UnknownMode as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_modes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", action="append", type=mode_list, metavar="MODE",
                   help="which derivative: rev (the gradient, default), fwd (forward mode: "
                   "tangents along a seeded direction), hvp (Hessian-vector products); "
                   "repeatable or comma-separated (--mode rev,fwd,hvp)")  # fmt: skip


def noise_runs(text: str) -> int:
    """--noise K: a whole number of runs, at least 0."""
    try:
        runs = int(text)
    except ValueError:
        runs = -1
    if runs < 0:
        raise argparse.ArgumentTypeError(
            f"--noise takes a whole number of perturbed runs, at least 0, not {text!r}"
        )
    return runs


def add_noise(p: argparse.ArgumentParser) -> None:
    p.add_argument("--noise", type=noise_runs, default=None, metavar="K",
                   help="measure the noise floor on every autodiff reference with K "
                   "rounding-perturbed runs (default: on the baseline, K=4; 0: not at all)")  # fmt: skip


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="compare backends and print the agreement table")
    add_selection(p)
    p.add_argument("--csv", metavar="FILE", help="also write the tidy agreement table")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("report", help="write the agreement report: Markdown, HTML, CSV, plots")
    add_selection(p)
    p.add_argument("--out", default="reports", metavar="DIR", help="folder to write into (default: reports/)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_report)


def cmd_run(args: argparse.Namespace) -> int:
    """select → run → compare → print (and the agreement table as CSV)."""
    from harness import console
    from harness.escaping import csv_table
    from harness.runner import compare_backends
    from harness.selection import build_cases, check_jobs, output_file, parse_sets

    jobs = check_jobs(args.jobs)
    cases = build_cases(args.case, parse_sets(args.set))
    if args.csv:
        output_file(args.csv, "--csv")
    backends = args.backend or DEFAULT_BACKENDS
    comparison = compare_backends(cases, backends, args.dtype, args.seed, args.baseline,
                                  jobs=jobs, noise=args.noise, modes=args.mode)  # fmt: skip
    print(console.format_agreement(comparison.agreement))
    for line in console.findings(comparison) + console.summaries(comparison):
        print(line)
    print("\n" + console.verdict_line(comparison, len(cases), args.dtype))
    if args.csv:
        csv_table(comparison.agreement).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return comparison.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    """select → run (the cases, then float32 drift on one unroll) → compare → write."""
    from harness.console import verdict_line
    from harness.drift import drift_runs, dtype_drift
    from harness.modes import parse_modes
    from harness.progress import Progress
    from harness.report import write_report  # matplotlib loads only here
    from harness.runner import compare_backends
    from harness.selection import build_cases, check_jobs, output_folder, parse_sets

    check_jobs(args.jobs)
    cases = build_cases(args.case, parse_sets(args.set))
    out = output_folder(args.out)
    backends = args.backend or DEFAULT_BACKENDS
    extra = drift_runs(cases, backends)
    modes = parse_modes(args.mode)
    with Progress(len(cases) * len(backends) * len(modes) + extra, "report", args.quiet) as bar:
        comparison = compare_backends(cases, backends, args.dtype, args.seed, args.baseline,
                                      bar, jobs=args.jobs, noise=args.noise, modes=modes)  # fmt: skip
        drift = dtype_drift(cases, args.seed, bar) if extra else None
    report = write_report(out, comparison, cases, drift, args.dtype, args.seed)
    print(verdict_line(comparison, len(cases), args.dtype))
    print(f"wrote {report.out / 'report.md'}, {report.out / 'report.html'} and the CSVs")
    return report.exit_code
