"""``gradparity run`` and ``gradparity report``: select the cases, run them through the
backends, compare, and print (run) or write (report). Each command composes the layers
in that order and does nothing else."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from harness.backends import DEFAULT_BACKENDS, DEFAULT_BASELINE, REGISTRY
from harness.noise import MAX_RUNS
from harness.selection import (
    MAX_JOBS,
    MAX_POINTS,
    POINTS_CEILING,
    SEED_LIMIT,
    machine_memory,
)
from harness.sweep import SCHEDULER_TIMEOUT

DEFAULT_CASE_TIMEOUT = 600.0  # harness.sandbox.case.DEFAULT_TIMEOUT, without importing it here


def whole(
    option: str, low: int, high: int, what: str = "a whole number", why: str = ""
) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``; anything else is one
    sentence naming ``option``, the range (and ``why`` it ends there) and the text given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{option} takes {what} from {low:,} to {high:,}{why}, not {text!r}"
            )
        return value

    return parse


jobs_count = whole(
    "--jobs",
    1,
    MAX_JOBS,
    "a whole number of processes",
    " (each loads numpy, torch and jax: about 256 MiB)",
)
JOBS_HELP = f"at most {MAX_JOBS}"
seed_value = whole("--seed", 0, SEED_LIMIT - 1)
SEED_HELP = f"a whole number from 0 to {SEED_LIMIT - 1:,} (default 0)"


def add_backend_options(
    p: argparse.ArgumentParser, option: str, help_text: str, also: tuple[str, ...] = (), **kw
) -> None:
    """An option that names a backend: one of REGISTRY (or of ``also``), checked when it
    is parsed."""
    p.add_argument(
        option,
        choices=[*REGISTRY, *also],
        metavar="NAME",
        help=f"{help_text}; known: {', '.join([*REGISTRY, *also])}",
        **kw,
    )


def add_selection(p: argparse.ArgumentParser) -> None:
    """The options that choose what is compared: cases, backends, dtype, seed, baseline."""
    p.add_argument(
        "--case",
        action="append",
        metavar="PATTERN",
        help="an exact case name (it wins: --case elman is that one case), else a "
        "glob ('elman*'), a family (lstm) or a substring; repeatable (default: the "
        "catalog)",
    )
    add_backend_options(
        p, "--backend", f"repeatable; default: {' '.join(DEFAULT_BACKENDS)}", action="append"
    )
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=seed_value, default=0, help=SEED_HELP)
    add_backend_options(
        p,
        "--baseline",
        f"the backend the others are compared against (default {DEFAULT_BASELINE})",
        default=DEFAULT_BASELINE,
    )
    add_set(p)
    p.add_argument(
        "--jobs",
        type=jobs_count,
        default=1,
        metavar="N",
        help=f"spread the cases over N processes (default 1, {JOBS_HELP}); in a "
        "sweep, the points over N workers",
    )
    add_noise(p)
    add_modes(p)
    add_sweep(p)
    add_limits(p, DEFAULT_CASE_TIMEOUT, CASE_LIMITS)


GiB = 1024**3
MIN_MEMORY = 256 * 1024**2  # a worker with numpy, torch and jax loaded uses about as much
MAX_TIMEOUT = 7 * 24 * 3600.0


def seconds(text: str) -> float:
    """--timeout S: a number of seconds, above 0 and at most a week (nan and inf are not)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value <= MAX_TIMEOUT):  # false for nan too
        raise argparse.ArgumentTypeError(
            f"--timeout takes a number of seconds above 0 and at most {MAX_TIMEOUT:.0f} (a "
            f"week), not {text!r}"
        )
    return value


def size(text: str) -> int:
    """--memory SIZE: '4G', '512M', '65536K', a number of bytes, or 0 (no limit); at least
    256M (a worker's own libraries) and at most this machine's memory."""
    clean = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": GiB, "T": 1024 * GiB}.get(clean[-1:], 1)
    try:
        number = float(clean[:-1] if scale != 1 else clean)
    except ValueError:
        number = float("nan")
    value = number * scale
    total = machine_memory()
    if value == 0:
        return 0
    if not (MIN_MEMORY <= value <= (total or value)):  # false for nan too
        most = f" and at most this machine's {total / GiB:.0f}G" if total else ""
        raise argparse.ArgumentTypeError(
            f"--memory takes a size like 4G or 512M, at least 256M{most} (0: no limit), "
            f"not {text!r}"
        )
    return int(value)


class _Given(argparse.Action):
    """Store the value, and that the user gave it (``memory_given``): a default is not a
    choice the user made."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def add_limits(p: argparse.ArgumentParser, timeout: float, what: str) -> None:
    """--timeout and --memory: what a worker running user code may take; and
    --no-memory-check: a catalog case is refused when its estimated memory exceeds this
    machine's (or --memory, when given)."""
    p.add_argument(
        "--timeout",
        type=seconds,
        default=timeout,
        metavar="S",
        help=f"seconds {what} may take in its worker process, above 0 and at most "
        f"{MAX_TIMEOUT:.0f} (a week; default {timeout:g})",
    )
    p.add_argument(
        "--memory",
        type=size,
        default=4 * GiB,
        metavar="SIZE",
        action=_Given,
        help="data-segment limit of that worker process, at least 256M and at most "
        "this machine's memory (default 4G; 0: none); "
        "when given, also the most a catalog case's estimated memory may be "
        "(default: this machine's memory)",
    )
    p.add_argument(
        "--no-memory-check",
        action="store_true",
        help="run a case even where its estimated memory exceeds this machine's (or --memory)",
    )
    p.set_defaults(memory_given=False)


def memory_budget(args: argparse.Namespace) -> tuple[int, str] | None:
    """What a case's estimated memory may be (bytes, and what they are in words), or None
    with --no-memory-check, or where neither --memory nor the system says."""
    if args.no_memory_check:
        return None
    if args.memory_given and args.memory:
        return args.memory, "--memory"
    total = machine_memory()
    return (total, "this machine's memory") if total else None


def limits(args: argparse.Namespace) -> Any:
    """The limits of the workers that run the cases of the user's (``harness.sandbox.case``)."""
    from harness.sandbox.case import Limits

    return Limits(args.timeout, args.memory)


CASE_LIMITS = "a case of your own (file.py:NAME), every backend together,"


def add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a case option, e.g. T=1000; several values (sigma=0.5,0.9) or an "
        "integer range (T=10-50:20, both ends) sweep it: every combination is "
        "a point",
    )


def add_sweep(p: argparse.ArgumentParser) -> None:
    """--seeds, --executor, --scheduler, --max-points: a grid of points (``harness.sweep``)."""
    p.add_argument(
        "--seeds",
        metavar="SEEDS",
        help="sweep the seed: 0-9, 0,3,7 or 0-2,10 (instead of --seed; each from "
        f"0 to {SEED_LIMIT - 1:,})",
    )
    p.add_argument(
        "--executor",
        choices=["local", "dask"],
        default="local",
        help="where a sweep's points run: local (this process, or --jobs N "
        "processes) or dask (a LocalCluster of --jobs workers, or --scheduler)",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="with --executor dask: an existing Dask cluster's scheduler (a host "
        "name or address and a port from 1 to 65535; it must answer within "
        f"{SCHEDULER_TIMEOUT:g} s)",
    )
    p.add_argument(
        "--max-points",
        type=whole("--max-points", 1, POINTS_CEILING),
        default=MAX_POINTS,
        metavar="N",
        help=f"the most points a sweep may have (default {MAX_POINTS:,}, at most "
        f"{POINTS_CEILING:,}): a larger grid is refused before it is built",
    )


def sweep_plan(args: argparse.Namespace) -> tuple | None:
    """(fixed options, swept options, points) when the options make a sweep (a swept
    --set, --seeds or --executor dask), else None — checked before any work."""
    from harness.selection import UsageError
    from harness.sweep import check_scheduler, grid, parse_grid, parse_seeds

    fixed, swept = parse_grid(args.set, args.max_points)
    seeds = parse_seeds(args.seeds, args.max_points)
    if seeds is not None and args.seed != 0:  # --seed given beside --seeds
        raise UsageError("give --seed or --seeds, not both")
    if args.scheduler is not None and args.executor != "dask":
        raise UsageError("--scheduler names a Dask cluster: it needs --executor dask")
    if not swept and seeds is None and args.executor == "local":
        return None
    points = grid(swept, seeds if seeds is not None else [args.seed], args.max_points)
    if args.scheduler is not None:
        check_scheduler(args.scheduler)
    return fixed, swept, points


def check_points(
    patterns,
    fixed: dict,
    swept: dict,
    points: list,
    bounds: Any = None,
    memory: tuple[int, str] | None = None,
) -> None:
    """Every point's cases built here first, so that a bad value, or a point too big for
    ``memory``, is exit 2 before work."""
    from harness.selection import build_cases

    for p in points if swept else points[:1]:
        build_cases(patterns, {**fixed, **dict(p.options)}, bounds, memory)


def mode_list(text: str) -> str:
    """--mode rev|fwd|hvp, or several with commas: checked here, so a typo is exit 2."""
    from harness.modes import UnknownMode, parse_modes

    try:
        parse_modes([text])
    except UnknownMode as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_modes(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode",
        action="append",
        type=mode_list,
        metavar="MODE",
        help="which derivative: rev (the gradient, default), fwd (forward mode: "
        "tangents along a seeded direction), hvp (Hessian-vector products); "
        "repeatable or comma-separated (--mode rev,fwd,hvp)",
    )


noise_runs = whole("--noise", 0, MAX_RUNS, "a whole number of perturbed runs")


def add_noise(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--noise",
        type=noise_runs,
        default=None,
        metavar="K",
        help="measure the noise floor on every autodiff reference with K "
        "rounding-perturbed runs (default: on the baseline, K=4; 0: not at all; "
        f"at most {MAX_RUNS:,}: more move the floor by under 0.2%%)",
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="compare backends and print the agreement table")
    add_selection(p)
    p.add_argument("--csv", metavar="FILE", help="also write the tidy agreement table")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("report", help="write the agreement report: Markdown, HTML, CSV, plots")
    add_selection(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder to write into (default: reports/; a sweep: reports/sweep/)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_report)


def cmd_run(args: argparse.Namespace) -> int:
    """select → run → compare → print (and the agreement table as CSV)."""
    from harness import console
    from harness.escaping import write_csv
    from harness.modes import parse_modes
    from harness.output import write_file
    from harness.progress import Progress
    from harness.provenance import header, sources
    from harness.runner import compare_backends
    from harness.selection import build_cases, check_comparable, output_file, parse_sets

    check_comparable(args.backend, args.baseline)
    plan = sweep_plan(args)
    if plan is not None:
        return run_sweep(args, plan, "run")
    csv = output_file(args.csv, "--csv") if args.csv is not None else None  # before a case's code
    cases = build_cases(args.case, parse_sets(args.set), limits(args), memory_budget(args))
    backends = args.backend or DEFAULT_BACKENDS
    modes = parse_modes(args.mode)
    with Progress(len(cases) * len(backends) * len(modes), "run", args.quiet) as bar:
        comparison = compare_backends(
            cases,
            backends,
            args.dtype,
            args.seed,
            args.baseline,
            bar,
            jobs=args.jobs,
            noise=args.noise,
            modes=modes,
        )
    for line in header(sources(cases)):  # the files of the user's that ran
        print(line)
    print(console.format_agreement(comparison.agreement))
    for line in console.findings(comparison) + console.summaries(comparison):
        print(line)
    print("\n" + console.verdict_line(comparison, len(cases), args.dtype))
    if csv is not None:
        write_file(csv, lambda path: write_csv(comparison.agreement, path))
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
    from harness.selection import build_cases, check_comparable, output_folder, parse_sets

    check_comparable(args.backend, args.baseline)
    plan = sweep_plan(args)
    if plan is not None:
        return run_sweep(args, plan, "report")
    out = output_folder("reports" if args.out is None else args.out)  # before a case's code
    cases = build_cases(args.case, parse_sets(args.set), limits(args), memory_budget(args))
    backends = args.backend or DEFAULT_BACKENDS
    extra = drift_runs(cases, backends)
    modes = parse_modes(args.mode)
    with Progress(len(cases) * len(backends) * len(modes) + extra, "report", args.quiet) as bar:
        comparison = compare_backends(
            cases,
            backends,
            args.dtype,
            args.seed,
            args.baseline,
            bar,
            jobs=args.jobs,
            noise=args.noise,
            modes=modes,
        )
        drift = dtype_drift(cases, args.seed, bar) if extra else None
    report = write_report(out, comparison, cases, drift, args.dtype, args.seed)
    print(verdict_line(comparison, len(cases), args.dtype))
    print(f"wrote {report.out / 'report.md'}, {report.out / 'report.html'} and the CSVs")
    return report.exit_code


def run_sweep(
    args: argparse.Namespace, plan: tuple, command: str, validate: dict | None = None
) -> int:
    """A sweep for run, report or validate: every point through ``harness.sweep`` on the
    chosen executor, then the points' verdicts printed (run, validate) and their labelled
    tables written (report; run --csv; validate --out)."""
    import time

    from harness import sweep
    from harness.escaping import write_csv
    from harness.modes import parse_modes
    from harness.output import write_file
    from harness.progress import Progress
    from harness.selection import output_file, output_folder

    fixed, swept, points = plan
    out = getattr(args, "out", None)  # resolved before a case's code runs (check_points)
    if command == "report":
        out = output_folder(os.path.join("reports", "sweep") if out is None else out)
    elif command == "validate" and out is not None:
        out = output_folder(out)
    csv = getattr(args, "csv", None)
    csv = output_file(csv, "--csv") if csv is not None else None
    check_points(args.case, fixed, swept, points, limits(args), memory_budget(args))
    keys = list(swept)
    backends = tuple(getattr(args, "backend", None) or DEFAULT_BACKENDS)
    job = sweep.Job(
        tuple(args.case) if args.case else None,
        tuple(fixed.items()),
        backends,
        args.dtype,
        getattr(args, "baseline", None) or DEFAULT_BASELINE,
        args.noise,
        tuple(parse_modes(args.mode)),
        validate,
        limits(args),
    )
    start = time.perf_counter()
    quiet = getattr(args, "quiet", False)
    with Progress(len(points), f"sweep ({args.executor})", quiet, unit="point") as bar:
        outcomes = sweep.sweep(job, points, args.executor, args.jobs, args.scheduler, bar)
    wall = time.perf_counter() - start
    tables = sweep.tables(outcomes, keys)
    lines = sweep.summary_lines(outcomes, keys)
    if command != "report":
        shown = (
            tables["points"]
            .drop(columns=["point", "exit_code"])
            .assign(seconds=tables["points"]["seconds"].round(2))
        )
        print(shown.to_string(index=False))
        print()
    for line in lines:
        print(line)
    if command == "report" and out is not None:  # a report always has its folder (above)
        from harness.report.sweep_document import write_sweep_report

        argv = " ".join(_argv_of(args))
        facts = {"command": f"gradparity report {argv}".strip(), "executor": args.executor
                 + (f" ({args.scheduler})" if args.scheduler else f", {args.jobs} job(s)"),
                 "wall_s": wall, "points_s": float(tables["points"]["seconds"].sum()),
                 "baseline": job.baseline, "dtype": args.dtype, "points": len(points),
                 "failed": int((tables["points"]["status"] != "ok").sum())}  # fmt: skip
        write_sweep_report(out, tables, keys, facts, sweep.families(outcomes))
        print(f"wrote {out / 'report.md'}, {out / 'report.html'} and the CSVs")
    elif out is not None and command == "validate":
        from harness.report.files import staged_report

        with staged_report(out) as stage:
            for name, table in tables.items():
                write_csv(table, stage / f"{name}.csv")
        print(f"wrote the labelled tables into {out}")
    if csv is not None:  # every point dead: the header alone, not an earlier run's rows
        import pandas as pd

        from harness.compare import AGREEMENT_COLUMNS

        agreement = tables.get("agreement")
        if agreement is None:
            agreement = pd.DataFrame(columns=["point", *keys, "seed", *AGREEMENT_COLUMNS])
        write_file(csv, lambda path: write_csv(agreement, path))
        print(f"wrote {args.csv}")
    return 1 if any(o.status != "ok" for o in outcomes) else 0


def _argv_of(args: argparse.Namespace) -> list[str]:
    """The sweep's own options, as the user gave them (for the report's command line)."""
    out = [a for c in args.case or [] for a in ("--case", c)]
    out += [a for kv in args.set or [] for a in ("--set", kv)]
    out += [a for b in args.backend or [] for a in ("--backend", b)]
    out += [a for m in args.mode or [] for a in ("--mode", m)]
    if args.dtype != "float64":
        out += ["--dtype", args.dtype]
    if args.baseline != DEFAULT_BASELINE:
        out += ["--baseline", args.baseline]
    if args.noise is not None:
        out += ["--noise", str(args.noise)]
    if args.seeds:
        out += ["--seeds", args.seeds]
    if args.executor != "local":
        out += ["--executor", args.executor]
    if args.jobs != 1:
        out += ["--jobs", str(args.jobs)]
    return out
