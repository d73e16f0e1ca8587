"""``gradparity bench``: how fast each implementation computes gradients, and what
checking them costs. Its options here; its work (``harness.bench_run``) imported only
when it runs, so ``gradparity list`` stays instant.

BLAS (OpenBLAS/MKL, read through ``OMP_NUM_THREADS`` and friends) and XLA read their
thread counts when they load, before any code of ours could set them; so the command
sets them and runs the bench in a fresh Python process (``python -m harness.bench``),
which also confines itself to that many CPUs (XLA's CPU client sizes its pool from them).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.selection import UsageError

PINNED = "GRADPARITY_BENCH_THREADS"  # set in the fresh process: the variables are in place
FULL_OUT = "reports"
QUICK_OUT = os.path.join("reports", "quick")


def thread_environment(threads: int) -> dict[str, str]:
    """The variables that give every backend ``threads`` threads."""
    eigen = "true" if threads > 1 else "false"
    xla = f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"
    flags = os.environ.get("XLA_FLAGS", "")
    return {
        "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads), "VECLIB_MAXIMUM_THREADS": str(threads),
        "XLA_FLAGS": f"{flags} {xla}".strip(), PINNED: str(threads),
    }  # fmt: skip


def pin_cpus(threads: int) -> None:
    """Confine this process to ``threads`` CPUs: libraries that size their thread pools
    from the machine rather than from the variables (XLA's CPU client does) get no more."""
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - not Linux
        return
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes only (under a minute)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for bench.csv and bench.md (default: reports/ for the full "
                   "plan, reports/quick/ for --quick)")  # fmt: skip
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: torch and jax on the GPU (the numpy backends stay on the CPU)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads for every backend: BLAS, torch, XLA (default 1)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register ``bench`` on the ``gradparity`` parser."""
    p = sub.add_parser(
        "bench", help="time objective and gradient per backend; write bench.csv and bench.md",
        description="Cheap-gradient ratios, tape against torch, scaling in T, per-operation "
        "overhead and the cost of checking, measured side by side.",
    )  # fmt: skip
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
    """Does ``folder`` hold bench.md written by the full plan (the figures README cites)?"""
    md = folder / "bench.md"
    if not md.is_file():
        return False
    head = md.read_text(encoding="utf-8", errors="replace")[:2000]
    written = re.search(r"Written by `(gradparity bench[^`]*)`", head)
    return bool(written) and "--quick" not in written[1]


def check_out(args: argparse.Namespace) -> str:
    """The output folder, checked before anything is measured: writable, and never the
    full plan's figures overwritten by the quick plan."""
    from harness.selection import output_folder

    out = args.out or (QUICK_OUT if args.quick else FULL_OUT)
    if args.quick and full_plan_figures(Path(out)):
        raise UsageError(
            f"--out {out!r} holds the full plan's figures (bench.md by `gradparity bench`); "
            f"--quick would overwrite them: leave out --out (default {QUICK_OUT}) or name "
            "another folder"
        )
    output_folder(out)
    return out


def cmd_bench(args: argparse.Namespace) -> int:
    if args.threads < 1:
        raise UsageError(f"--threads takes a positive count, not {args.threads}")
    if args.device == "cuda" and (problem := cuda_problem()):
        raise UsageError(problem)
    args.out = check_out(args)
    if os.environ.get(PINNED) != str(args.threads):
        argv = ["--out", args.out, "--device", args.device, "--threads", str(args.threads)]
        env = {**os.environ, **thread_environment(args.threads)}
        if args.device == "cuda":  # JAX would take 75% of the GPU's memory from torch
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        flags = [*(["--quick"] if args.quick else []), *(["--quiet"] if args.quiet else [])]
        return subprocess.call([sys.executable, "-m", "harness.bench", *argv, *flags], env=env)
    pin_cpus(args.threads)  # before jax or torch load: their thread pools follow it
    from harness.bench_run import FULL, QUICK, run_bench
    from harness.progress import Progress

    plan = QUICK if args.quick else FULL
    with Progress(None, "bench", args.quiet) as bar:
        run_bench(args.out, plan, args.device, args.threads, progress=bar, quick=args.quick)
    print(f"wrote {os.path.join(args.out, 'bench.csv')} and {os.path.join(args.out, 'bench.md')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gradparity bench")
    add_arguments(p)
    try:
        return cmd_bench(p.parse_args(argv))
    except UsageError as e:
        print(f"gradparity: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
