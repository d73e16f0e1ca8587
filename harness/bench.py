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
import subprocess
import sys
from collections.abc import Sequence

PINNED = "GRADPARITY_BENCH_THREADS"  # set in the fresh process: the variables are in place


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
    p.add_argument("--out", default="reports", metavar="DIR",
                   help="folder for bench.csv and bench.md (default: reports/)")  # fmt: skip
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: torch and jax on the GPU (the numpy backends stay on the CPU)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads for every backend: BLAS, torch, XLA (default 1)")  # fmt: skip


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


def cmd_bench(args: argparse.Namespace) -> int:
    if args.threads < 1:
        print("gradparity: error: --threads takes a positive count", file=sys.stderr)
        return 2
    if args.device == "cuda" and (problem := cuda_problem()):
        print(f"gradparity: error: {problem}", file=sys.stderr)
        return 2
    if os.environ.get(PINNED) != str(args.threads):
        argv = ["--out", args.out, "--device", args.device, "--threads", str(args.threads)]
        env = {**os.environ, **thread_environment(args.threads)}
        if args.device == "cuda":  # JAX would take 75% of the GPU's memory from torch
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        return subprocess.call(
            [sys.executable, "-m", "harness.bench", *argv, *(["--quick"] if args.quick else [])],
            env=env,
        )
    pin_cpus(args.threads)  # before jax or torch load: their thread pools follow it
    from harness.bench_run import FULL, QUICK, run_bench

    def progress(message: str) -> None:
        print(f"  bench: {message}", file=sys.stderr, flush=True)

    plan = QUICK if args.quick else FULL
    run_bench(args.out, plan, args.device, args.threads, progress=progress, quick=args.quick)
    print(f"wrote {os.path.join(args.out, 'bench.csv')} and {os.path.join(args.out, 'bench.md')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gradparity bench")
    add_arguments(p)
    return cmd_bench(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
