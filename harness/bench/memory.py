"""Timing and peak memory of one prepared backend, as ``gradparity bench`` measures them.

Time: one warm-up run of each callable, then objective and gradient runs alternate (so
both see the same load on a shared machine) until ``repeats`` pairs are done, or the time
budget is spent after at least ``min_repeats``; the minimum of each is kept, wall clock
(``perf_counter``) and CPU time of the process (``process_time``), as ADBench does. The
garbage collector stays on (the tape's graph is made of Python objects and pays for it);
it is made to collect once before the timed runs, not before each (a forced collection
walks every object of torch and jax and leaves the caches cold for a short run).

Stored memory (numpy backends): what the recording forward keeps for the backward, by
tracemalloc. Peak memory of one gradient, the bytes it allocates beyond what existed before:
- reference, manual (numpy only): ``tracemalloc``'s peak (numpy reports its arrays to it),
  in this process;
- jax: XLA's ``memory_analysis()`` of the compiled gradient (temporaries + outputs);
- torch on the CPU: a fresh subprocess per measurement (``python -m harness.bench.memory``):
  build, run the objective once (lazy initialisation), reset the kernel's high-water mark
  (``/proc/self/clear_refs``), run the gradient once; VmHWM − VmRSS before. Where the
  reset is refused, ``ru_maxrss`` after − before (the high-water mark since start);
- torch on a GPU: ``torch.cuda.max_memory_allocated()`` − allocated before.

Peak memory of a whole check (``check_peak``: what ``Case.footprint`` estimates): a fresh
subprocess, as for torch, warmed up by the check of the case with its default options
(every library loaded, their first-call buffers made), then one check of the case.
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass

from harness.bench.runners import Prepared, prepare
from harness.cases import Case
from harness.cases.base import rebuild

MEMORY_METHOD = {
    "reference": "tracemalloc",
    "manual": "tracemalloc",
    "jax": "xla-memory-analysis",
    "torch": "rss-subprocess",
}


@dataclass
class Timing:
    objective_s: float
    gradient_s: float
    objective_cpu_s: float
    gradient_cpu_s: float
    repeats: int


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_pair(prepared: Prepared, repeats: int = 10, min_repeats: int = 3, budget_s: float = 5.0):
    """Warm-up, then alternate objective and gradient; minimum of each (see module doc)."""
    prepared.objective()
    prepared.gradient()
    gc.collect()  # once, before: a collection evicts the caches, and a short run then pays
    runs: list[tuple[float, float, float, float]] = []
    start = time.perf_counter()
    while len(runs) < repeats and (
        len(runs) < min_repeats or time.perf_counter() - start < budget_s
    ):
        runs.append((*_timed(prepared.objective), *_timed(prepared.gradient)))
    o_wall, o_cpu, g_wall, g_cpu = (min(column) for column in zip(*runs, strict=True))
    return Timing(o_wall, g_wall, o_cpu, g_cpu, len(runs))


def page_faults(fn) -> int:
    """Minor page faults of the process during one ``fn()``: fresh pages the kernel maps
    (and zeroes) because freed memory went back to it after the last run."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    result = fn()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del result
    return faults


def _traced(fn) -> tuple[float, float]:
    """(bytes held, peak bytes) that ``fn()`` allocates beyond what was allocated before,
    by tracemalloc: held is measured while its result is still alive."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        held, peak = (m - before for m in tracemalloc.get_traced_memory())
        del result
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return float(held), float(peak)


def traced_peak(fn) -> float:
    """Bytes ``fn()`` allocates at its peak beyond what was allocated before (tracemalloc)."""
    return _traced(fn)[1]


def stored_memory(prepared: Prepared) -> float:
    """Bytes the forward keeps for the backward (the tape's graph, manual's cache), by
    tracemalloc: allocated and still held once the recording forward has returned."""
    if prepared.record is None:
        return math.nan
    return _traced(prepared.record)[0]


def peak_memory(
    backend: str, case: Case, prepared: Prepared, device: str, dtype: str, seed: int = 0
) -> tuple[float, str]:
    """(bytes, method) for one gradient of ``case`` on ``backend`` (see the module doc)."""
    if backend in ("reference", "manual"):
        return traced_peak(prepared.gradient), "tracemalloc"
    if backend == "jax":
        return prepared.memory_bytes, "xla-memory-analysis"
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        result = prepared.gradient()
        peak = torch.cuda.max_memory_allocated() - before
        del result
        return float(peak), "cuda-max-allocated"
    from harness.sandbox.case import spec_of

    made = spec_of(case)
    if made is None:
        return math.nan, "not measured: the case cannot be made in a fresh process"
    spec = {"case": made, "backend": backend, "device": device, "dtype": dtype, "seed": seed}
    done = subprocess.run(
        [sys.executable, "-m", "harness.bench.memory", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        return math.nan, f"failed: {done.stderr.strip().splitlines()[-1:]}"
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return float(answer["bytes"]), answer["method"]


def _status_kib() -> dict[str, int]:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])
    return fields


def _high_water(fn) -> dict:
    """The bytes of resident memory one ``fn()`` adds at its peak to what the process
    held before: the kernel's high-water mark reset first (``/proc/self/clear_refs``), or
    where the reset is refused, ``ru_maxrss`` after − before."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM to the current RSS
        before = _status_kib()["VmRSS"]
        result = fn()
        peak, method = _status_kib()["VmHWM"] - before, "rss-subprocess (VmHWM reset)"
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = fn()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak, method = after - before, "rss-subprocess (ru_maxrss delta)"
    del result
    return {"bytes": max(peak, 0) * 1024, "method": method}


def measure_in_this_process(spec: dict) -> dict:
    """The subprocess's side: build, warm up with the objective, reset, one gradient; or
    for a check (``check_peak``), one check of the case's defaults, reset, one check."""
    case = rebuild(spec["case"])
    if spec.get("check"):
        from harness.runner import compare_backends

        compare_backends([type(case)()], seed=spec["seed"])
        return _high_water(lambda: compare_backends([case], seed=spec["seed"]))
    params, inputs = case.build(spec["seed"], spec["dtype"])
    prepared = prepare(spec["backend"], case, params, inputs, spec["device"])
    prepared.objective()
    return _high_water(prepared.gradient)


CHECK_ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}
"""glibc's malloc, told to give every freed block of 64 KiB or more back to the system: the
high-water mark then counts what the check holds, not what the allocator kept from the
warm-up."""


def check_peak(case: Case, seed: int = 0) -> float:
    """Bytes the default check of a catalog ``case`` (``compare_backends``: the default
    backends, the noise floor on the baseline) adds to its process's resident memory at
    its peak, in a fresh process warmed up on the case's defaults (module doc), with one
    thread for BLAS and XLA; what ``Case.footprint`` estimates."""
    from harness.bench.threads import thread_environment

    spec = {"case": case.spec(), "check": True, "seed": seed}
    env = {**os.environ, **thread_environment(1), **CHECK_ENVIRONMENT}
    done = subprocess.run(
        [sys.executable, "-m", "harness.bench.memory", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the check of {case.label} failed: {done.stderr.strip()[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["bytes"])


if __name__ == "__main__":  # the fresh process of one torch-on-CPU measurement
    print(json.dumps(measure_in_this_process(json.loads(sys.argv[1]))))
