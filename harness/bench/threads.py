"""Thread counts for the bench: every backend gets the same number.

BLAS (OpenBLAS/MKL, read through ``OMP_NUM_THREADS`` and friends) and XLA read their
thread counts when they load, before any code of ours could set them; so the bench runs
in a fresh Python process whose environment has them set (``PINNED`` says it has), and
which confines itself to that many CPUs (XLA's CPU client sizes its pool from them).
"""

from __future__ import annotations

import os

PINNED = "GRADPARITY_BENCH_THREADS"  # set in the fresh process: the variables are in place


def thread_environment(threads: int) -> dict[str, str]:
    """The variables that give every backend ``threads`` threads, and JAX's compilation
    cache off (``harness.compile_cache``): the bench times compilation."""
    eigen = "true" if threads > 1 else "false"
    xla = f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"
    flags = os.environ.get("XLA_FLAGS", "")
    return {
        "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads), "VECLIB_MAXIMUM_THREADS": str(threads),
        "XLA_FLAGS": f"{flags} {xla}".strip(), PINNED: str(threads),
        "JAX_ENABLE_COMPILATION_CACHE": "false",
    }  # fmt: skip


def cpus() -> int:
    """How many CPUs this process may run on (its affinity, where the system says)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


def pin_cpus(threads: int) -> None:
    """Confine this process to ``threads`` CPUs: libraries that size their thread pools
    from the machine rather than from the variables (XLA's CPU client does) get no more."""
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - not Linux
        return
    allowed = sorted(os.sched_getaffinity(0))
    if threads < len(allowed):
        os.sched_setaffinity(0, allowed[:threads])


__all__ = ["PINNED", "cpus", "pin_cpus", "thread_environment"]
