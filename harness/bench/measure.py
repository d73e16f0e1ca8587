"""``gradparity bench``'s work: what is measured (a Plan), measuring it, writing the files.

One tidy table, ``bench.csv``, one row per measurement; the column ``experiment`` says
which: ``ratio`` (cases at small, medium and large sizes and ADBench's LSTM), ``scaling``
(an LSTM at growing T), ``per_op`` (a chain of tiny operations) and ``checking`` (the cost
of checking a 1M-parameter MLP). ``bench.md`` is written from that table alone.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.bench.markdown import (
    BENCH_CSV,
    BENCH_FILES,
    COLD_CSV,
    CONDITIONS_CSV,
    SCALING_LSTM,
)
from harness.bench.memory import page_faults, peak_memory, stored_memory, time_pair
from harness.bench.runners import BENCH_BACKENDS, GPU_BACKENDS, prepare
from harness.cases import CATALOG, Case, CaseError
from harness.cases.networks import MILLION
from harness.escaping import write_csv
from harness.output import staged

COLUMNS = [
    "experiment",
    "case",
    "size",
    "label",
    "params",
    "backend",
    "device",
    "dtype",
    "threads",
    "objective_s",
    "gradient_s",
    "ratio",
    "objective_cpu_s",
    "gradient_cpu_s",
    "ratio_cpu",
    "compile_s",
    "objective_compile_s",
    "peak_mem_bytes",
    "mem_method",
    "stored_bytes",
    "page_faults",
    "repeats",
    "T",
    "products_ratio",
    "forward_passes",
    "extrapolated",
    "note",
    "case_failed",  # the case itself failed in its worker: nothing of it was measured
]


@dataclass
class Plan:
    """What one bench run measures. ``ratio_cases``: (size, case, options); ``scaling``:
    the LSTM options and the T values for every backend, and the longer T values for the
    numpy backends only; ``checking``: the MLP options of the large and the small model."""

    ratio_cases: list[tuple[str, str | Case, dict]]  # a catalog name, or a Case of the user's
    scaling_options: dict = field(default_factory=lambda: dict(SCALING_LSTM))
    scaling_T: list[int] = field(default_factory=lambda: [10, 100, 1000])
    scaling_long_T: list[int] = field(default_factory=lambda: [10_000])
    long_T_backends: tuple[str, ...] = ("reference", "manual")
    per_op_n: int = 1000
    checking: tuple[dict, dict] | None = None
    repeats: int = 10
    min_repeats: int = 3
    budget_s: float = 4.0
    subprocess_memory: bool = True  # torch on the CPU: a fresh process per measurement


SMALL_MLP = {"depth": 4, "width": 8, "D": 8, "C": 4, "N": 16}


def noise_probe(runs: int = 20) -> str:
    """The same fixed numpy work timed ``runs`` times: how steady this machine is now."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((200, 200)), rng.standard_normal((200, 200))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(10):
            np.tanh(a @ b)
        times.append(time.perf_counter() - start)
    low, mid, high = np.percentile(times, [0, 50, 100]) * 1e3
    return f"min {low:.2f} ms, median {mid:.2f} ms, max {high:.2f} ms (max/min {high / low:.2f})"


FULL = Plan(
    ratio_cases=[
        ("small", "mlp", {}),
        ("medium", "mlp", {"width": 256, "D": 256, "C": 16, "N": 128}),
        ("large", "mlp", {"width": 1024, "D": 1024, "C": 64, "N": 512}),
        ("small", "lstm", {}),
        ("medium", "lstm", {"T": 100, "H": 128, "D": 64, "B": 16}),
        ("large", "lstm", {"T": 50, "H": 512, "D": 256, "B": 64}),
        ("adbench", "adbench_lstm", {}),
    ],
    checking=(MILLION, SMALL_MLP),
    long_T_backends=("reference", "manual", "torch", "jax"),  # 4 points for every exponent
    repeats=15,
    budget_s=8.0,
)
QUICK = Plan(
    ratio_cases=[
        ("small", "mlp", {}),
        ("medium", "mlp", {"width": 256, "D": 256, "C": 16, "N": 128}),
        ("small", "lstm", {}),
        ("adbench", "adbench_lstm", {"c": 64}),
    ],
    scaling_T=[10, 100],
    scaling_long_T=[1000],
    per_op_n=300,
    checking=({"depth": 4, "width": 64, "D": 64, "C": 10, "N": 64}, SMALL_MLP),
    repeats=5,
    min_repeats=2,
    budget_s=0.5,
    subprocess_memory=False,
)

Progress = Callable[[str], None]


def _build(name: str | Case, options: dict):
    """The case (a catalog name with options, or a Case of the user's) and its arrays.
    Where ADBench's input is missing (a broken install), the same sizes are drawn at random
    (timing is the same)."""
    case = name if isinstance(name, Case) else CATALOG[name](**options)
    try:
        params, inputs = case.build(0)
        note = ""
    except CaseError:
        if case.name != "adbench_lstm":
            raise
        case = type(case)(**{**case.cfg, "source": "random"})
        params, inputs = case.build(0)
        note = "ADBench's input file missing: random input of the same sizes"
    return case, params, inputs, note


def products_ratio(case) -> float:
    """R counted in the multiply-adds of the matrix products alone, the value R tends to
    where the products dominate the time (nan for a case without them).

    MLP, widths w_0 = D, …, w_L = C on N rows: the forward makes F_l = N·w_{l−1}·w_l per
    layer; the backward dW_l = h_{l−1}ᵀ dz_l (F_l) for every layer and dh_{l−1} = dz_l W_lᵀ
    (F_l) for l ≥ 2 (dL/dX is needed by no parameter), so R = 3 − F_1 / Σ F_l.
    LSTM, T steps of B rows: F_x = B·D·4H and F_h = B·H·4H per step forward; backward
    dW_x and dW_h every step and dh_{t−1} for t ≥ 2 (h_0 is an input); the readout
    h W_y (F_y = B·H·O, at the last step or at every step) costs F_y forward and 2 F_y
    backward (dW_y and dh)."""
    cfg = case.cfg
    if case.name == "mlp":
        widths = [cfg["D"]] + [cfg["width"]] * (cfg["depth"] - 1) + [cfg["C"]]
        flops = [cfg["N"] * a * b for a, b in zip(widths, widths[1:], strict=False)]
        return 3 - flops[0] / sum(flops)
    if case.name == "lstm":
        T, B, H = cfg["T"], cfg["B"], cfg["H"]
        fx, fh, fy = B * cfg["D"] * 4 * H, B * H * 4 * H, B * H * cfg["O"]
        readouts = T if cfg["objective"] == "sum" else 1
        forward = T * (fx + fh) + readouts * fy
        backward = T * (fx + fh) + (T - 1) * fh + 2 * readouts * fy
        return (forward + backward) / forward
    return math.nan


def measure_case(
    experiment: str,
    size: str,
    name: str | Case,
    options: dict,
    backends: list[str],
    device: str,
    plan: Plan,
    threads: int,
    progress: Progress,
) -> list[dict]:
    """One row per backend: timings, compile times, peak memory. A case of the user's is
    measured in its worker (``harness.sandbox.case``), every backend there, as here."""
    if getattr(name, "isolated", False):
        return _measure_isolated(experiment, size, name, backends, device, plan, threads, progress)
    case, params, inputs, note = _build(name, options)
    rows = []
    for backend in backends:
        progress(f"{experiment} {case.label} {backend}")
        row = {
            "experiment": experiment, "case": case.name, "size": size, "label": case.label,
            "params": int(sum(v.size for v in params.values())), "backend": backend,
            "device": device if backend in GPU_BACKENDS else "cpu", "dtype": "float64",
            "threads": threads, "T": case.cfg.get("T", case.cfg.get("c", math.nan)),
            "products_ratio": products_ratio(case), "note": note,
        }  # fmt: skip
        try:
            prepared = prepare(backend, case, params, inputs, row["device"])
            timing = time_pair(prepared, plan.repeats, plan.min_repeats, plan.budget_s)
            faults = page_faults(prepared.gradient)
            if backend == "torch" and device == "cpu" and not plan.subprocess_memory:
                memory, method = math.nan, "not measured (--quick)"
            else:
                memory, method = peak_memory(backend, case, prepared, row["device"], "float64")
        except Exception as e:  # noqa: BLE001 - one backend failing must not stop the bench
            rows.append({**row, "note": f"failed: {type(e).__name__}: {e}"})
            continue
        rows.append({
            **row, "objective_s": timing.objective_s, "gradient_s": timing.gradient_s,
            "objective_cpu_s": timing.objective_cpu_s, "gradient_cpu_s": timing.gradient_cpu_s,
            "compile_s": prepared.compile_s, "objective_compile_s": prepared.objective_compile_s,
            "peak_mem_bytes": memory, "mem_method": method, "repeats": timing.repeats,
            "stored_bytes": stored_memory(prepared) if experiment == "scaling" else math.nan,
            "page_faults": faults,
        })  # fmt: skip
    return rows


MEASURE_ISOLATED = "harness.bench.measure:measure_isolated"
CASE_FAILED = "failed: the case's worker"  # the note of a row whose case itself failed
PLAN_FIELDS = ("repeats", "min_repeats", "budget_s", "subprocess_memory")


def _measure_isolated(experiment, size, case, backends, device, plan, threads, progress):
    from harness.sandbox.case import CaseFault, ask, release
    from harness.sandbox.wire import Mapping, conforms

    for backend in backends:
        progress(f"{experiment} {case.label} {backend} (in its worker)")
    base = {
        "experiment": experiment,
        "case": case.name,
        "size": size,
        "label": case.label,
        "device": device,
        "dtype": "float64",
        "threads": threads,
    }
    try:
        reply = ask(
            case,
            {
                "op": MEASURE_ISOLATED,
                "experiment": experiment,
                "size": size,
                "backends": list(backends),
                "device": device,
                "threads": threads,
                "plan": {f: getattr(plan, f) for f in PLAN_FIELDS},
            },
        )
        miss = conforms(reply, {"rows": [Mapping(str, (float, str, bool, None))]})
        if miss:
            raise CaseFault({"fault_name": "malformed reply", "message": miss})
    except CaseFault as e:
        return [
            {**base, "backend": b, "note": f"{CASE_FAILED}: {e}", "case_failed": True}
            for b in backends
        ]
    finally:
        release(case)
    return [{**row, "label": case.label} for row in reply["rows"]]


def measure_isolated(worker, request: dict) -> dict:
    """``measure_case`` in a case's worker, with the bench's threads."""
    from harness.cases.base import rebuild
    from harness.sandbox import call
    from harness.sandbox.case import failed

    made = call(rebuild, request["case"])
    if made["error"] is not None:
        return failed(made)
    pin_threads(request["threads"])
    plan = Plan(ratio_cases=[], **request["plan"])
    done = call(
        measure_case,
        request["experiment"],
        request["size"],
        made["value"],
        {},
        request["backends"],
        request["device"],
        plan,
        request["threads"],
        lambda message: None,
    )
    return failed(done) if done["error"] is not None else {"rows": done["value"]}


def pin_threads(threads: int) -> dict[str, str]:
    """Ask every backend for ``threads`` threads; return what was set, for the record.
    BLAS and XLA read their variables when they load: ``gradparity bench`` sets them in a
    fresh process before anything loads (see ``harness.bench``)."""
    settings = {k: os.environ.get(k, "") for k in THREAD_VARIABLES}
    try:
        import torch

        torch.set_num_threads(threads)
        settings["torch.get_num_threads()"] = str(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return settings


THREAD_VARIABLES = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS"]


def environment(device: str, threads: int, settings: dict[str, str]) -> dict[str, str]:
    """The facts a reader needs to weigh the numbers."""
    import torch

    try:
        import jax

        jax_version = jax.__version__
    except ImportError:  # pragma: no cover
        jax_version = "missing"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:  # pragma: no cover - not Linux
        pass
    env = {
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "jax": jax_version,
        "threads per backend": str(threads),
        "CPUs this process may use (affinity)": (
            " ".join(map(str, sorted(os.sched_getaffinity(0))))
            if hasattr(os, "sched_getaffinity")
            else "?"
        ),
        **{f"  {k}": v or "(unset)" for k, v in settings.items()},
        "load average (1, 5, 15 min) at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    return env


def run_bench(
    out_dir: str | Path,
    plan: Plan = FULL,
    device: str = "cpu",
    threads: int = 1,
    backends: list[str] | None = None,
    progress: Progress | None = None,
    quick: bool = False,
    command: str | None = None,
) -> pd.DataFrame:
    """Measure ``plan`` and write ``bench.csv``, its conditions and ``bench.md`` into
    ``out_dir`` (``gradparity bench --cold``'s pairs and conditions kept as they were)."""
    from harness.bench.cold import VALIDATE_SHOWN
    from harness.bench.markdown import conditions, conditions_table, read_folder, render_folder

    progress = progress or (lambda message: None)
    started = time.perf_counter()
    settings = pin_threads(threads)
    env = environment(device, threads, settings)
    # Everything imported so far (torch, jax, pandas) is set aside from the garbage
    # collector: a collection during a timed run then walks only what the run made, as
    # it would in a program that loads one framework, not all of them.
    import harness.backends.jax_grad
    import harness.backends.torch_autograd  # noqa: F401

    gc.collect()
    gc.freeze()
    env["noise probe at start (10 products 200×200 + tanh, 20 times)"] = noise_probe()
    try:
        table = _measure(plan, device, threads, backends, progress)
    finally:
        gc.unfreeze()
    env["noise probe at end"] = noise_probe()
    env["load average (1, 5, 15 min) at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    env["bench wall time"] = f"{time.perf_counter() - started:.0f} s"
    env["plan"] = "full" if plan is FULL else "quick" if plan is QUICK else "cases"
    env["command"] = command or "gradparity bench" + (" --quick" if quick else "") + (
        f" --device {device}" if device != "cpu" else ""
    ) + (f" --threads {threads}" if threads != 1 else "")
    folder = Path(out_dir)  # section 5 (``gradparity bench --cold``) is kept as it was
    earlier = read_folder(folder)
    with staged(out_dir, "bench", BENCH_FILES) as stage:  # every file, or none
        write_csv(table, stage / BENCH_CSV)
        write_csv(
            conditions_table(env, conditions(earlier["conditions"], "cold")),
            stage / CONDITIONS_CSV,
        )
        if earlier["cold"] is not None:
            shutil.copyfile(folder / COLD_CSV, stage / COLD_CSV)
        # the page from the tables as written: what a reader of the CSVs sees
        (stage / "bench.md").write_text(
            render_folder(stage, VALIDATE_SHOWN, plan.scaling_options), encoding="utf-8"
        )
    return table


def _measure(plan: Plan, device: str, threads: int, backends, progress) -> pd.DataFrame:
    from harness.bench.costs import CHAIN_BACKENDS, checking_cost, per_op_overhead

    if backends is None:
        backends = GPU_BACKENDS if device == "cuda" else BENCH_BACKENDS
    rows: list[dict] = []
    for size, name, options in plan.ratio_cases:
        rows += measure_case(
            "ratio", size, name, options, backends, device, plan, threads, progress
        )
    for T in plan.scaling_T + plan.scaling_long_T:
        chosen = (
            backends if T in plan.scaling_T else [b for b in backends if b in plan.long_T_backends]
        )
        if chosen:
            options = {**plan.scaling_options, "T": T}
            rows += measure_case(
                "scaling", f"T={T}", "lstm", options, chosen, device, plan, threads, progress
            )
    if plan.per_op_n:
        progress("per-operation overhead")
        chain = [b for b in CHAIN_BACKENDS if device == "cpu" or b in GPU_BACKENDS]
        rows += [
            {**r, "threads": threads, "dtype": "float64"}
            for r in per_op_overhead(plan.per_op_n, chain, device, plan.repeats)
        ]
    if plan.checking and device == "cpu":
        progress("cost of checking")
        rows += [
            {**r, "threads": threads, "dtype": "float64"}
            for r in checking_cost(*plan.checking, plan.repeats)
        ]
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    table["ratio"] = table["gradient_s"] / table["objective_s"]
    table["ratio_cpu"] = table["gradient_cpu_s"] / table["objective_cpu_s"]
    table["case_failed"] = table["case_failed"].eq(True)  # a fact per row, never a blank
    return table


def cases_plan(cases: list[Case]) -> Plan:
    """``gradparity bench --case``: the cheap-gradient ratio of the cases named, alone."""
    return Plan(
        ratio_cases=[("yours", case, {}) for case in cases],
        scaling_T=[],
        scaling_long_T=[],
        per_op_n=0,
        checking=None,
        repeats=10,
        budget_s=4.0,
    )


__all__ = [
    "BENCH_CSV",
    "BENCH_FILES",
    "COLD_CSV",
    "COLUMNS",
    "CONDITIONS_CSV",
    "FULL",
    "QUICK",
    "Plan",
    "cases_plan",
    "products_ratio",
    "run_bench",
]
