"""``gradparity validate`` and ``gradparity selftest``: their options here, their work
imported only when the command runs (``gradparity list`` stays instant)."""

from __future__ import annotations

import argparse
import sys

from harness.backends import ALL, DEFAULT_REFERENCES
from harness.cli.run import (
    JOBS_HELP,
    MAX_TIMEOUT,
    SEED_HELP,
    add_backend_options,
    add_limits,
    add_modes,
    add_noise,
    add_set,
    add_sweep,
    jobs_count,
    limits,
    memory_budget,
    run_sweep,
    seconds,
    seed_value,
    sweep_plan,
)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``validate`` and ``selftest`` on the ``gradparity`` parser."""
    p = sub.add_parser(
        "validate",
        help="check YOUR backprop (a stage, a model or an engine) against the references",
        description="Run your implementation beside the references and say, tensor by tensor "
        "and step by step, where it leaves them. Exit 0: it agrees; 1: a disagreement or a "
        "fault; 2: bad usage. A model may supply forward mode and H·v too (--mode fwd, hvp): "
        "jvp(params, inputs, tangent[, case]) -> {'loss': J_L·u, 'taps': {...}} and "
        "hvp(params, inputs, vector[, case]) -> {param: H·v}, as the target itself (one mode) "
        "or as its attributes grads, jvp and hvp.",
    )
    p.add_argument("target", metavar="TARGET", help="package.module:attr or path/to/file.py:attr")
    from harness.validation.forms import form_names

    p.add_argument(
        "--as",
        dest="form",
        choices=form_names(),
        help="the plug-in's form (default: guessed from the object)",
    )
    p.add_argument(
        "--case",
        action="append",
        metavar="PATTERN",
        help="case name, glob, family or substring; repeatable (a model needs one; "
        "an engine defaults to the catalog)",
    )
    add_set(p)
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--seed", type=seed_value, default=0, help=SEED_HELP)
    add_backend_options(
        p,
        "--reference",
        f"a reference backend, repeatable; {ALL}: every backend of gradparity run "
        f"(default: {' '.join(DEFAULT_REFERENCES)}, the numpy ones)",
        also=(ALL,),
        action="append",
    )
    add_backend_options(
        p, "--baseline", "the reference the plug-in is compared with (default: reference)"
    )
    add_limits(p, 60.0, "one case (in the plug-in; for a case of your own, also in the references)")
    p.add_argument(
        "--no-isolation",
        action="store_true",
        help="run the plug-in in this process (no time or memory limit)",
    )
    p.add_argument("--out", metavar="DIR", help="write the tables, diagnostics and report here")
    p.add_argument(
        "--jobs",
        type=jobs_count,
        default=1,
        metavar="N",
        help="share the cases among N processes, each with a worker of its own "
        f"(default 1, {JOBS_HELP}; the same tables)",
    )
    add_noise(p)
    add_modes(p)
    add_sweep(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "selftest",
        help="run the bug zoo: every broken implementation flagged, every correct one passed",
    )
    p.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    p.add_argument("--only", action="append", metavar="NAME", help="zoo entries (substring)")
    add_backend_options(
        p, "--reference", "reference backends (default: reference torch)", action="append"
    )
    p.add_argument(
        "--timeout",
        type=seconds,
        default=60.0,
        metavar="S",
        help="seconds one case may take in an implementation, above 0 and at most "
        f"{MAX_TIMEOUT:.0f} (a week; default 60)",
    )
    p.add_argument("--csv", metavar="FILE", help="also write the detection table")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_selftest)


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.selection import (
        UsageError,
        build_cases,
        check_comparable,
        output_folder,
        parse_sets,
    )
    from harness.target import BadTarget, locate, parse_target
    from harness.validation.validator import NeedCases, validate

    try:  # a typo in TARGET is said before any case is built or any work starts
        locate(parse_target(args.target))
    except BadTarget as e:
        raise UsageError(str(e)) from None
    check_comparable(args.reference, args.baseline, references=True)
    if args.set and not args.case:
        raise UsageError("--set needs --case (the options belong to a case)")
    plan = sweep_plan(args)
    if plan is not None:
        if not args.case:
            raise UsageError("a sweep needs --case (its points are options of a case)")
        opts = {
            "target": args.target,
            "form": args.form,
            "references": args.reference,
            "baseline": args.baseline,
            "timeout": args.timeout,
            "memory": args.memory,
            "isolate": not args.no_isolation,
        }
        return run_sweep(args, plan, "validate", opts)
    # resolved before the plug-in or a case's code runs: either may change directory
    out = output_folder(args.out) if args.out is not None else None
    cases = (
        build_cases(args.case, parse_sets(args.set), limits(args), memory_budget(args))
        if args.case
        else None
    )
    from harness.progress import Progress

    try:
        with Progress(None, "validate", args.quiet) as bar:
            v = validate(
                args.target,
                form=args.form,
                cases=cases,
                dtype=args.dtype,
                references=args.reference,
                baseline=args.baseline,
                seed=args.seed,
                timeout=args.timeout,
                memory=args.memory,
                isolate=not args.no_isolation,
                jobs=args.jobs,
                progress=bar,
                noise=args.noise,
                modes=args.mode,
            )
    except (BadTarget, NeedCases) as e:
        raise UsageError(str(e)) from None
    print(v.text())
    if out is not None:
        written = v.write(out)
        print(f"wrote {', '.join(str(p) for p in written[:4])}{' …' if len(written) > 4 else ''}")
    sys.stdout.flush()
    return 0 if v.ok else 1


def cmd_selftest(args: argparse.Namespace) -> int:
    from harness.escaping import write_csv
    from harness.output import write_file
    from harness.progress import Progress
    from harness.selection import UsageError, output_file
    from harness.zoo.selftest import entries, format_table, selftest

    csv = output_file(args.csv, "--csv") if args.csv is not None else None
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    chosen = entries(args.only)
    if not chosen:
        raise UsageError(f"--only {' '.join(args.only)!r} matches no entry of the zoo")
    with Progress(len(chosen) * len(dtypes), "selftest", args.quiet) as bar:
        table = selftest(
            dtypes, only=args.only, references=args.reference, timeout=args.timeout, progress=bar
        )
    print(format_table(table))
    if csv is not None:
        write_file(csv, lambda path: write_csv(table, path))
    passed = bool(table["verdict"].eq("ok").all())
    n_broken = int((table["expected"] == "broken").sum())
    n_correct = len(table) - n_broken
    print(
        f"\n{n_broken} broken runs, {n_correct} correct runs over {', '.join(dtypes)}: "
        f"{'every broken one flagged, every correct one passed' if passed else 'SELFTEST FAILED'}"
    )
    return 0 if passed else 1
