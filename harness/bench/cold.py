"""A verdict, cold, against a gradcheck script: ``gradparity bench --cold N``.

What a user waits for: ``gradparity validate examples/model_mlp.py:grads --case mlp`` in a
fresh process (interpreter start, imports, the plug-in's worker, the default references,
the comparison, the verdict) against ``python harness/bench/gradcheck_mlp.py``, a plain
``torch.autograd.gradcheck`` script on the same MLP, also in a fresh process. Each pair
runs the two one after the other, in alternating order (the validation first in even
pairs), so a change of the machine's load reaches both sides of a pair alike; the
figure is the median over the pairs of validate_s / gradcheck_s (paired), beside the
median of each side. Between the two, the same validation with ``--reference all`` (torch
and jax too) says what those references cost, cold; it has no goal.

The rows go to ``cold_bench.csv``, the conditions to ``bench_conditions.csv``, and
``bench.md`` is written again from the folder's tables (``harness.bench.markdown``): its
other sections from ``bench.csv`` as it is, and a full ``gradparity bench`` keeps this
section's tables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from harness.bench.markdown import summary

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("gradcheck_mlp.py")
TARGET = "examples/model_mlp.py:grads"
VALIDATE = ["validate", TARGET, "--case", "mlp", "--quiet"]
VALIDATE_SHOWN = "gradparity " + " ".join(VALIDATE[:-1])  # as bench.md names it
EVERY_REFERENCE = ["--reference", "all"]  # the same with torch and jax: what they cost
DEFAULT_PAIRS = 5
COLUMNS = ["pair", "first", "validate_s", "gradcheck_s", "ratio", "validate_all_s", "ratio_all"]


def commands() -> dict[str, list[str]]:
    """The commands, as run (from the repository's root): ``gradparity`` is
    ``python -m harness.cli``; ``validate_all`` is ``validate`` with ``--reference all``."""
    return {
        "validate": [sys.executable, "-m", "harness.cli", *VALIDATE],
        "validate_all": [sys.executable, "-m", "harness.cli", *VALIDATE, *EVERY_REFERENCE],
        "gradcheck": [sys.executable, str(SCRIPT)],
    }


def timed(command: list[str]) -> float:
    """Wall seconds of ``command`` in a fresh process, its output discarded; an exit
    status other than 0 is an error (a failed run is no timing)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def measure(pairs: int, progress=None) -> pd.DataFrame:
    """One row per pair: validate_s, gradcheck_s, their ratio and which of the two ran
    first; validate_all_s (``--reference all``, run between them) and its ratio."""
    run = commands()
    rows = []
    for pair in range(pairs):
        order = ["validate", "validate_all", "gradcheck"]
        order = order if pair % 2 == 0 else order[::-1]
        row: dict = {"pair": pair + 1, "first": order[0]}
        for side in order:
            if progress:
                progress(f"pair {pair + 1}/{pairs}: {side}")
            row[f"{side}_s"] = timed(run[side])
        row["ratio"] = row["validate_s"] / row["gradcheck_s"]
        row["ratio_all"] = row["validate_all_s"] / row["gradcheck_s"]
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def run_cold(out: str, pairs: int, env: dict[str, str], progress=None) -> pd.DataFrame:
    """Measure ``pairs`` pairs and write cold_bench.csv, its conditions and bench.md's
    section 5 into ``out`` (bench.csv, its conditions and bench.md's other sections as
    they were; every file, or none)."""
    from harness.bench.markdown import (
        BENCH_CSV,
        BENCH_FILES,
        COLD_CSV,
        CONDITIONS_CSV,
        conditions,
        conditions_table,
        read_folder,
        render_folder,
    )
    from harness.escaping import write_csv
    from harness.output import staged

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = measure(pairs, progress)
    env = {
        **env,
        "load average (1, 5, 15 min) at start": load_before,
        "load average (1, 5, 15 min) at end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    folder = Path(out)
    earlier = read_folder(folder)
    with staged(folder, "bench", BENCH_FILES) as stage:
        write_csv(rows.round(dict.fromkeys(COLUMNS[2:], 3)), stage / COLD_CSV)
        write_csv(
            conditions_table(conditions(earlier["conditions"], "bench"), env),
            stage / CONDITIONS_CSV,
        )
        if earlier["bench"] is not None:  # this kind's other file, kept as it is
            shutil.copyfile(folder / BENCH_CSV, stage / BENCH_CSV)
        # the page from the tables as written (bench.csv's sections as they were)
        (stage / "bench.md").write_text(render_folder(stage, VALIDATE_SHOWN), encoding="utf-8")
    return rows


__all__ = [
    "COLUMNS",
    "DEFAULT_PAIRS",
    "VALIDATE_SHOWN",
    "commands",
    "measure",
    "run_cold",
    "summary",
]
