"""``gradparity bench``: how fast each implementation computes gradients, and what
checking them costs. Its options here; its work (``harness.bench``) imported only when it
runs, so ``gradparity list`` stays instant.

The thread counts of BLAS and XLA are read when they load (``harness.bench.threads``), so
the command checks its options, then runs itself again in a fresh Python process
(``python -m harness.cli bench …``) whose environment has them set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from harness.bench.threads import PINNED, cpus, pin_cpus, thread_environment
from harness.cli.run import (
    DEFAULT_CASE_TIMEOUT,
    JOBS_HELP,
    MAX_TIMEOUT,
    add_limits,
    jobs_count,
    limits,
    memory_budget,
    whole,
)
from harness.selection import UsageError

FULL_OUT = "reports"
QUICK_OUT = os.path.join("reports", "quick")
CASES_OUT = os.path.join("reports", "cases")
SWEEP_BENCH_FILES = ("sweep_bench.csv", "sweep_bench.md")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes only (under a minute)")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="folder for bench.csv and bench.md (default: reports/ for the full "
        "plan, reports/quick/ for --quick)",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: torch and jax on the GPU (the numpy backends stay on the CPU)",
    )
    p.add_argument(
        "--threads",
        default=1,
        metavar="N",
        type=whole(
            "--threads",
            1,
            cpus(),
            why=" (the CPUs this process may run on: more threads than CPUs time their contention)",
        ),
        help="threads for every backend: BLAS, torch, XLA (default 1, at most the "
        f"{cpus()} CPUs this process may run on)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--peers",
        action="store_true",
        help="instead: the bug zoo through gradparity validate, torch's gradcheck "
        "and jax's check_grads, float64 and float32; writes peers.csv and peers.md",
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="instead: a 60-point Elman sweep (sigma × T × 3 seeds) one by one, on "
        "--jobs local processes and on a Dask LocalCluster; writes sweep_bench.csv "
        "and sweep_bench.md",
    )
    p.add_argument(
        "--jobs",
        type=jobs_count,
        default=2,
        metavar="N",
        help=f"with --sweep: processes and Dask workers (default 2, {JOBS_HELP})",
    )
    p.add_argument(
        "--peer-limit",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="with --peers: how long each checker may run on the ~1M-parameter "
        f"MLP before it is stopped, from 0 to {MAX_TIMEOUT:.0f} (a week; default "
        "600; 0 skips that measurement)",
    )
    p.add_argument(
        "--cold",
        type=whole("--cold", 1, 1000),
        nargs="?",
        const=5,
        metavar="PAIRS",
        help="instead: `gradparity validate examples/model_mlp.py:grads --case mlp` "
        "against a plain torch.autograd.gradcheck script, each in a fresh process, "
        "PAIRS times in alternating order (default 5, at most 1,000); writes "
        "cold_bench.csv and section 5 of bench.md, the rest left as it is",
    )
    p.add_argument(
        "--case",
        action="append",
        metavar="PATTERN",
        help="time these cases alone (a catalog name or pattern, or your own: "
        "path/to/file.py:NAME); writes into reports/cases/ by default",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a case option (with --case)"
    )
    add_limits(p, DEFAULT_CASE_TIMEOUT, "a case of your own, every backend's timing together,")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``bench`` on the ``gradparity`` parser."""
    p = sub.add_parser(
        "bench",
        help="time objective and gradient per backend; write bench.csv and bench.md",
        description="Cheap-gradient ratios, tape against torch, scaling in T, per-operation "
        "overhead and the cost of checking, measured side by side.",
    )
    add_arguments(p)
    p.set_defaults(func=cmd_bench)


def cuda_problem() -> str | None:
    """Why ``--device cuda`` cannot run here, or None when torch sees a GPU."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a dependency
        return f"--device cuda needs PyTorch ({e})"
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return (
            f"--device cuda: torch sees no CUDA device (torch {torch.__version__}, {build}); "
            "run on a machine with an NVIDIA GPU and a CUDA build of torch (and of jax), "
            "or leave out --device for the CPU bench"
        )
    return None


def full_plan_figures(folder: Path) -> bool:
    """Does ``folder`` hold the full plan's figures (the ones README cites)? Its
    bench_conditions.csv records the plan that measured them: "full", "quick" or "cases"."""
    from harness.bench.markdown import conditions, read_folder

    try:
        plan = conditions(read_folder(folder)["conditions"], "bench").get("plan")
    except (OSError, ValueError, KeyError):  # unreadable, or not ours: no figures of ours
        return False
    return plan == "full"


def check_out(args: argparse.Namespace) -> str:
    """The output folder as an absolute path, checked before anything is measured (and
    before a case's code runs): writable, free (``output_folder`` claims it), and never
    the full plan's figures overwritten by the quick plan."""
    from harness.selection import output_folder

    partial = (args.quick or bool(args.case)) and not getattr(args, "peers", False)
    default = CASES_OUT if args.case else QUICK_OUT if args.quick else FULL_OUT
    out = default if args.out is None else args.out
    if out and partial and full_plan_figures(Path(out)):
        which = "--case" if args.case else "--quick"
        raise UsageError(
            f"--out {out!r} holds the full plan's figures (bench.md by `gradparity bench`); "
            f"{which} would overwrite them: leave out --out (default {default}) or name "
            "another folder"
        )
    return str(output_folder(out))


def cmd_bench(args: argparse.Namespace) -> int:
    if args.peers and (args.quick or args.case or args.set or args.device != "cpu"):
        raise UsageError(
            "--peers runs the bug zoo on the CPU: it takes no --quick, --case, "
            "--set or --device (only --out, --threads and --quiet)"
        )
    if args.sweep and (args.peers or args.quick or args.case or args.set or args.device != "cpu"):
        raise UsageError(
            "--sweep runs its own grid on the CPU: it takes no --peers, --quick, "
            "--case, --set or --device (only --out, --jobs, --threads, --quiet)"
        )
    if args.jobs != 2 and not args.sweep:
        raise UsageError("--jobs belongs to --sweep (the bench times one process at a time)")
    if args.peer_limit != 600.0 and not args.peers:
        raise UsageError("--peer-limit belongs to --peers")
    if not 0 <= args.peer_limit <= MAX_TIMEOUT:  # false for nan too
        raise UsageError(
            f"--peer-limit takes seconds from 0 to {MAX_TIMEOUT:.0f} (a week; 0 "
            f"skips it), not {args.peer_limit:g}"
        )
    if args.cold is not None:
        return bench_cold(args)
    if args.device == "cuda" and (problem := cuda_problem()):
        raise UsageError(problem)
    if args.set and not args.case:
        raise UsageError("--set needs --case (the options belong to a case)")
    from harness.output import release
    from harness.selection import build_cases, parse_sets

    args.out = check_out(args)
    cases = (
        build_cases(args.case, parse_sets(args.set), limits(args), memory_budget(args))
        if args.case
        else []
    )
    if os.environ.get(PINNED) != str(args.threads):
        release(args.out)  # the run below claims it: it writes there, this process does not
        argv = ["--out", args.out, "--device", args.device, "--threads", str(args.threads)]
        argv += [a for c in args.case or [] for a in ("--case", c)]
        argv += [a for kv in args.set or [] for a in ("--set", kv)]
        argv += ["--timeout", repr(args.timeout)]
        argv += ["--memory", str(args.memory)] if args.memory_given else []
        argv += ["--no-memory-check"] if args.no_memory_check else []
        env = {**os.environ, **thread_environment(args.threads)}
        if args.device == "cuda":  # JAX would take 75% of the GPU's memory from torch
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        flags = [
            *(["--quick"] if args.quick else []),
            *(["--quiet"] if args.quiet else []),
            *(["--sweep", "--jobs", str(args.jobs)] if args.sweep else []),
            *(["--peers", "--peer-limit", str(args.peer_limit)] if args.peers else []),
        ]
        return subprocess.call(
            [sys.executable, "-m", "harness.cli", "bench", *argv, *flags], env=env
        )
    from harness.progress import Progress

    if args.sweep:  # its processes share the CPUs: no pinning, one thread each
        return bench_sweep(args)
    pin_cpus(args.threads)  # before jax or torch load: their thread pools follow it

    if args.peers:
        from harness.bench.peers import CHECKERS, big_model, peers_table, write
        from harness.report.files import machine
        from harness.zoo.selftest import entries

        big_steps = len(CHECKERS) if args.peer_limit else 0
        with Progress(2 * len(entries()) + big_steps, "peers", args.quiet) as bar:
            table = peers_table(progress=bar)
            big = big_model(limit_s=args.peer_limit, progress=bar) if big_steps else None
        peers = "gradparity bench --peers" + (
            "" if args.peer_limit == 600.0 else f" --peer-limit {args.peer_limit:g}"
        )
        written = write(args.out, table, {**machine(), "threads": args.threads}, peers, big)
        print(f"wrote {' and '.join(str(p) for p in written)}")
        return 0
    from harness.bench.measure import FULL, QUICK, cases_plan, run_bench

    plan = cases_plan(cases) if cases else QUICK if args.quick else FULL
    command: str | None = None
    if cases:
        chosen = " ".join(f"--case {c}" for c in args.case) + "".join(
            f" --set {kv}" for kv in args.set or []
        )
        command = f"gradparity bench {chosen}"
    with Progress(None, "bench", args.quiet) as bar:
        table = run_bench(
            args.out,
            plan,
            args.device,
            args.threads,
            progress=bar,
            quick=args.quick,
            command=command,
        )
    print(f"wrote {os.path.join(args.out, 'bench.csv')} and {os.path.join(args.out, 'bench.md')}")
    lost = table[table["case_failed"].eq(True)]
    for case in dict.fromkeys(lost["label"]):  # measured nothing there: not a success
        print(f"  ✗ {case}: {lost[lost['label'] == case]['note'].iloc[0]}")
    return 1 if len(lost) else 0


def bench_sweep(args: argparse.Namespace) -> int:
    """``gradparity bench --sweep``: ``harness.sweep.bench_executors`` on the issue's grid."""
    from harness import sweep
    from harness.backends import DEFAULT_BACKENDS
    from harness.escaping import write_csv
    from harness.output import staged
    from harness.progress import Progress
    from harness.report.files import machine

    fixed, swept = sweep.parse_grid(sweep.BENCH_GRID)
    points = sweep.grid(swept, sweep.parse_seeds(sweep.BENCH_SEEDS) or [0])
    job = sweep.Job(("elman",), tuple(fixed.items()), tuple(DEFAULT_BACKENDS))
    with Progress(3 * len(points), "sweep bench", args.quiet) as bar:
        rows = sweep.bench_executors(job, points, list(swept), args.jobs, bar)
    out = Path(args.out)
    what = (
        f"`--case elman {' '.join('--set ' + g for g in sweep.BENCH_GRID)} --seeds "
        f"{sweep.BENCH_SEEDS}` ({len(points)} points), backends {', '.join(DEFAULT_BACKENDS)}"
    )
    command = "gradparity bench --sweep" + (f" --jobs {args.jobs}" if args.jobs != 2 else "")
    text = sweep.bench_markdown(rows, {**machine(), "threads": args.threads}, command, what)
    with staged(out, "sweep_bench", SWEEP_BENCH_FILES) as stage:
        write_csv(rows.round({"wall_s": 2, "points_s": 2}), stage / "sweep_bench.csv")
        (stage / "sweep_bench.md").write_text(text, encoding="utf-8")
    print(f"wrote {out / 'sweep_bench.csv'} and {out / 'sweep_bench.md'}")
    return 0


def bench_cold(args: argparse.Namespace) -> int:
    """``gradparity bench --cold``: ``harness.bench.cold`` (no threads pinned: each side
    runs as a user would run it, with this environment)."""
    if (
        args.peers
        or args.sweep
        or args.quick
        or args.case
        or args.set
        or args.device != "cpu"
        or args.threads != 1
    ):
        raise UsageError(
            "--cold times two commands as a user runs them: it takes no --peers, "
            "--sweep, --quick, --case, --set, --device or --threads (only --out "
            "and --quiet)"
        )
    from harness.bench.cold import run_cold
    from harness.progress import Progress
    from harness.report.files import machine

    out = check_out(args)
    command = "gradparity bench --cold" + ("" if args.cold == 5 else f" {args.cold}")
    with Progress(None, "cold", args.quiet) as bar:
        rows = run_cold(
            out,
            args.cold,
            {**machine(), "command": command},
            progress=lambda what: bar("mlp", what),
        )
    print(
        f"{len(rows)} pairs: wrote {os.path.join(out, 'cold_bench.csv')} and section 5 of "
        f"{os.path.join(out, 'bench.md')}"
    )
    return 0
