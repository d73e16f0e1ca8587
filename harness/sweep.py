"""Sweeps: one check over a grid of case options and seeds, each point a task for an
executor — this process, local processes, or a Dask cluster.

A grid is the cartesian product of the values of each swept option (``--set KEY=V1,V2``,
in the order the keys were given) and of the seeds (``--seeds 0-9``), the seeds varying
fastest. Every point is checked exactly as one ``gradparity run`` (or ``validate``) of
those options and that seed would check it, in a process of its own or not, and its tidy
tables come back labelled: one column per swept option, and ``seed``. The points are put
back in grid order, so the same grid and seeds give the same tables however they were
spread (timings aside).

Executors are ``concurrent.futures`` executors, the one code path for all, started and
ended in ``harness.parallel`` (``local``: this process or N spawned processes; ``dask``:
a ``LocalCluster`` on this machine or the cluster at ``--scheduler``).

A point that raises is one failed row; a worker that dies is one failed row too. A point
whose worker was lost (a broken process pool takes every point in flight with it; a Dask
task is failed after its worker died twice, or lost with the worker that held its result)
is rerun by itself on one fresh worker: the one that kills its worker again is the failed
row, the others finish as if nothing had happened.
"""

from __future__ import annotations

import concurrent.futures as cf
import ipaddress
import itertools
import math
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness import parallel
from harness.parallel import EXECUTORS, process_pool
from harness.result import DEFAULT_BASELINE
from harness.selection import MAX_POINTS, SEED_LIMIT, UsageError

_RANGE = re.compile(r"^(-?\d+)-(-?\d+)(?::(\d+))?$")
SCHEDULER_TIMEOUT = 10.0
"""Seconds a Dask scheduler has to accept the connection, shake hands and say who it is:
on a network a live scheduler answers in milliseconds, so 10 s only waits out a slow
start, and a server that accepts and never answers is given up on then."""


# --- the grid -----------------------------------------------------------------------------


def _length(values: range | list[str]) -> int:
    """How many values: ``len``, also for a range longer than ``sys.maxsize``."""
    if isinstance(values, range):
        return max(0, (values.stop - values.start + values.step - 1) // values.step)
    return len(values)


def _values(option: str, text: str, given: str, limit: int = MAX_POINTS) -> list[str]:
    """``"0.5,0.7"`` -> ["0.5", "0.7"]; an integer range ``A-B`` or ``A-B:STEP`` is
    expanded (both ends included); an empty item is an error that names ``option``. The
    values are counted before any range is expanded: more than ``limit`` is an error that
    quotes the option as the user ``given`` it."""
    pieces: list[range | list[str]] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            raise UsageError(f"{option}: an empty value in {text!r} (values are comma-separated)")
        m = _RANGE.match(item)
        if m and not item.startswith("-"):
            lo, hi, step = int(m[1]), int(m[2]), int(m[3] or 1)
            if hi < lo or step < 1:
                raise UsageError(
                    f"{option}: the range {item!r} is empty (A-B:STEP needs A ≤ B, STEP ≥ 1)"
                )
            pieces.append(range(lo, hi + 1, step))
        else:
            pieces.append([item])
    count = sum(_length(piece) for piece in pieces)
    if count > limit:
        raise UsageError(
            f"{given} makes {count:,} values; a sweep takes at most {limit:,} "
            "points (--max-points N raises the limit)"
        )
    out = [str(v) for piece in pieces for v in piece]
    if len(set(out)) < len(out):
        raise UsageError(f"{option}: a value given twice in {text!r}")
    return out


def parse_grid(
    pairs: Sequence[str] | None, limit: int = MAX_POINTS
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``--set`` pairs -> (the options with one value, the swept ones with their values).

    ``T=1000`` is fixed; ``sigma=0.5,0.9`` and ``T=10-50:20`` (10, 30, 50) are swept. A
    key given twice is an error: a grid names each option once; so is an option with more
    than ``limit`` values (counted, never expanded)."""
    fixed: dict[str, str] = {}
    swept: dict[str, list[str]] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(
                f"--set takes KEY=VALUE or KEY=V1,V2,… (for example --set T=100 or "
                f"--set sigma=0.5,0.9), not {pair!r}"
            )
        if key in fixed or key in swept:
            raise UsageError(
                f"--set {key} is given twice; give its values once: --set {key}=V1,V2,…"
            )
        values = _values(f"--set {key}", text.strip(), f"--set {key}={text.strip()}", limit)
        if len(values) == 1:
            fixed[key] = values[0]
        else:
            swept[key] = values
    return fixed, swept


def parse_seeds(text: str | None, limit: int = MAX_POINTS) -> list[int] | None:
    """``--seeds 0-9`` (both ends), ``0,3,7`` or ``0-2,10`` -> the seeds; None without it.
    Each is a whole number from 0 to ``SEED_LIMIT`` − 1, and there are at most ``limit``."""
    if text is None:
        return None
    seeds = []
    for v in _values("--seeds", text, f"--seeds {text}", limit):
        try:
            seeds.append(int(v))
        except ValueError:
            raise UsageError(
                f"--seeds takes whole numbers and ranges (0-9, 0,3,7), not {v!r}"
            ) from None
        if not 0 <= seeds[-1] < SEED_LIMIT:
            raise UsageError(
                f"--seeds: a seed is a whole number from 0 to {SEED_LIMIT - 1:,}, not {v}"
            )
    return seeds


@dataclass(frozen=True)
class Point:
    """One point of a grid: its place in grid order, its swept options and its seed."""

    index: int
    options: tuple[tuple[str, str], ...]
    seed: int

    @property
    def label(self) -> str:
        return " ".join([*(f"{k}={v}" for k, v in self.options), f"seed={self.seed}"])


def grid(swept: dict[str, list[str]], seeds: Sequence[int], limit: int = MAX_POINTS) -> list[Point]:
    """The cartesian product of the swept values and the seeds, seeds fastest; more than
    ``limit`` points is an error, raised before any point is made."""
    keys = list(swept)
    sizes = [len(swept[k]) for k in keys] + [len(seeds)]
    if math.prod(sizes) > limit:
        raise UsageError(
            f"the grid {' × '.join([*keys, 'seed'])} has "
            f"{' × '.join(map(str, sizes))} = {math.prod(sizes):,} points; a sweep "
            f"takes at most {limit:,} (--max-points N raises the limit)"
        )
    combos: Iterable[tuple[Any, ...]] = itertools.product(*(swept[k] for k in keys), seeds)
    return [
        Point(i, tuple(zip(keys, c[:-1], strict=True)), int(c[-1])) for i, c in enumerate(combos)
    ]


# --- one point ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What every point of a sweep shares: the command and its options. ``validate`` holds
    the plug-in's options (target, form, references, baseline, timeout, memory, isolate)
    for a validate sweep, else None; ``limits``, those of the workers that run a case of
    the user's."""

    patterns: tuple[str, ...] | None
    fixed: tuple[tuple[str, str], ...]
    backends: tuple[str, ...] = ()
    dtype: str = "float64"
    baseline: str = DEFAULT_BASELINE
    noise: int | None = None
    modes: tuple[str, ...] | None = None
    validate: dict | None = None
    limits: Any = None  # harness.sandbox.case.Limits: the workers of the user's cases

    def cases(self, point: Point) -> list:
        from harness.selection import build_cases

        return build_cases(self.patterns, {**dict(self.fixed), **dict(point.options)}, self.limits)


TABLES = ("agreement", "runs", "magnitudes", "identities", "summaries", "faults")


@dataclass
class Outcome:
    """What one point gave: ok (exit 0), failed (exit 1: a disagreement, a fault) or error
    (it raised, or its worker died: no tables), with its tables and what to name."""

    point: Point
    status: str
    exit_code: int
    seconds: float = 0.0
    error: str = ""
    findings: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    cases: list[dict] = field(default_factory=list)  # label, family, cfg of each case


def _describe(case: Any) -> dict:
    cfg = {
        k: (v if isinstance(v, int | float | str | bool) else str(v))
        for k, v in getattr(case, "cfg", {}).items()
    }
    return {"label": case.label, "family": case.family, "cfg": cfg}


def run_point(job: Job, point: Point) -> Outcome:
    """Check one point (in whatever process the executor chose); whatever it raises is
    its failed row, never the sweep's end."""
    start = time.perf_counter()
    try:
        cases = job.cases(point)
        if job.validate is not None:
            return _validate_point(job, point, cases, start)
        from harness.runner import compare_backends
        from harness.theory import summaries

        c = compare_backends(
            cases,
            list(job.backends),
            job.dtype,
            point.seed,
            job.baseline,
            noise=job.noise,
            modes=job.modes,
        )
        code = c.exit_code
        tables = {
            "agreement": c.agreement,
            "runs": c.runs,
            "magnitudes": c.magnitudes,
            "identities": c.identities,
            "summaries": summaries(c.magnitudes, cases),
        }
        from harness import console

        findings = console.findings(c) if code else []
    except Exception as e:  # noqa: BLE001 - one point's failure is one row
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        return Outcome(point, "error", 1, time.perf_counter() - start, last)
    status = "ok" if code == 0 else "failed"
    return Outcome(
        point,
        status,
        code,
        time.perf_counter() - start,
        "",
        findings,
        tables,
        [_describe(k) for k in cases],
    )


def _validate_point(job: Job, point: Point, cases: list, start: float) -> Outcome:
    from harness.theory import summaries
    from harness.validation.validator import validate

    opts = dict(job.validate or {})
    v = validate(
        opts.pop("target"),
        cases=cases,
        dtype=job.dtype,
        seed=point.seed,
        noise=job.noise,
        modes=job.modes,
        **opts,
    )
    c = v.comparison
    tables = {
        "agreement": v.agreement,
        "runs": c.runs,
        "magnitudes": c.magnitudes,
        "identities": c.identities,
        "summaries": summaries(c.magnitudes, cases),
        "faults": v.fault_table,
    }
    findings = [f.line().strip() for f in v.findings if f.bad]
    return Outcome(
        point,
        "ok" if v.ok else "failed",
        0 if v.ok else 1,
        time.perf_counter() - start,
        "",
        findings,
        tables,
        [_describe(k) for k in cases],
    )


# --- the scheduler of a cluster of one's own ----------------------------------------------

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_ADDRESS_TAKES = "tcp://HOST:PORT (a host name or address, and a port from 1 to 65535)"


def scheduler_address(text: str) -> str:
    """``--scheduler``, checked as syntax alone (nothing is looked up or contacted):
    ``tcp://HOST:PORT`` with HOST a host name (RFC 1123 labels: letters, digits and inner
    hyphens), an IPv4 address or a bracketed IPv6 one, and PORT from 1 to 65535. Only
    ``tcp://``: a ``tls://`` cluster needs certificates gradparity does not pass. What is
    wrong is a ``UsageError`` that says what and what is allowed."""

    def bad(why: str) -> UsageError:
        return UsageError(f"--scheduler {text!r}: {why}; it takes {_ADDRESS_TAKES}")

    if not text.strip():
        raise bad("an empty address")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise bad("no scheme")
    if scheme != "tcp":
        raise bad(f"the scheme {scheme!r} is not accepted, only 'tcp'")
    host, colon, port = rest.rpartition(":") if not rest.endswith("]") else (rest, "", "")
    if not colon:
        raise bad("no port")
    if not host:
        raise bad("no host")
    if not port.isdigit() or not port.isascii():
        raise bad(f"the port {port!r} is not a number")
    if not 1 <= int(port) <= 65535:
        raise bad(f"the port {int(port)} is out of range")
    if not _is_host(host):
        raise bad(f"{host!r} is not a host name or address")
    return text


def _is_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            return bool(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            return False
    labels = host.split(".")
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def check_scheduler(address: str, timeout: float | None = None) -> None:
    """The scheduler at ``address`` answers, or a ``UsageError`` names the address and why
    not: bad syntax (``scheduler_address``, before any lookup), nothing listening, or a
    server that is no Dask scheduler. The whole attempt (name lookup, connection, Dask's
    handshake, and the scheduler's identity asked for and read) is bounded by ``timeout``
    (``SCHEDULER_TIMEOUT``): Dask bounds the connection but not the handshake, so a server
    that accepts and never answers would hold ``Client`` for ever. It runs on a thread of
    its own that is left behind, idle, if the deadline passes."""
    import asyncio

    scheduler_address(address)
    limit = SCHEDULER_TIMEOUT if timeout is None else timeout
    answer: list = []

    def ask() -> None:
        try:
            answer.append(asyncio.run(asyncio.wait_for(parallel.identity(address, limit), limit)))
        except BaseException as e:  # noqa: BLE001 - said below, in one line
            answer.append(e)

    thread = threading.Thread(target=ask, name="gradparity-scheduler-check", daemon=True)
    thread.start()
    thread.join(limit + 1)  # the lookup is not cancellable; the join bounds it too
    reply = answer[0] if answer else TimeoutError()
    if isinstance(reply, (TimeoutError, asyncio.TimeoutError)):
        why = f"nothing answered within {limit:g} s"
    elif isinstance(reply, BaseException):
        why = type(reply).__name__ + "".join(f": {line}" for line in str(reply).splitlines()[:1])
    elif not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        why = "what answers is not a Dask scheduler"
    else:
        return
    raise UsageError(f"--scheduler {address!r}: no Dask scheduler answers there ({why})")


# --- executors ----------------------------------------------------------------------------


@contextmanager
def executor(
    executor_name: str, jobs: int = 1, scheduler: str | None = None
) -> Iterator[cf.Executor]:
    """The executor of a sweep (``harness.parallel.executor``), a scheduler at an address
    checked first (Dask's ``Client`` alone can wait for ever on a mute server) and one
    that cannot be reached said as a usage error."""
    if executor_name == "dask" and scheduler:
        check_scheduler(scheduler)
    try:
        with parallel.executor(executor_name, jobs, scheduler, SCHEDULER_TIMEOUT) as ex:
            yield ex
    except parallel.SchedulerUnreachable as e:
        raise UsageError(
            f"--scheduler {scheduler!r}: no Dask scheduler answers there ({e.__cause__})"
        ) from None


@contextmanager
def _alone(executor_name: str, scheduler: str | None) -> Iterator[cf.Executor]:
    """An executor of one fresh worker, for a point rerun by itself: a process pool of one
    (never this process: the point may kill its worker), or one Dask worker."""
    if executor_name == "local":
        with process_pool(1) as pool:
            yield pool
    else:
        with executor(executor_name, 1, scheduler) as ex:
            yield ex


def _died(e: BaseException) -> str:
    return f"its worker died ({type(e).__name__}: {e})".strip()


def sweep(
    job: Job,
    points: list[Point],
    executor_name: str = "local",
    jobs: int = 1,
    scheduler: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """Every point through ``run_point`` on the executor named ``executor_name``; the outcomes in grid
    order. At most ``jobs`` points are in flight at once (or, on a cluster, as many as it
    takes), so that when a local worker dies the points it may have held are known."""
    done: dict[int, Outcome] = {}

    def finish(p: Point, outcome: Outcome) -> None:
        done[p.index] = outcome
        if progress:
            progress(p.label)

    todo = list(points)
    width = max(jobs, 1) if executor_name == "local" else len(points)
    suspects: list[Point] = []
    while todo:
        with executor(executor_name, jobs, scheduler) as ex:
            flying: dict[cf.Future, Point] = {}
            while todo or flying:
                while todo and len(flying) < width:
                    p = todo.pop(0)
                    flying[ex.submit(run_point, job, p)] = p
                ready, _ = cf.wait(flying, return_when=cf.FIRST_COMPLETED)
                broken = False
                for f in ready:
                    p = flying.pop(f)
                    try:
                        finish(p, f.result())
                    except Exception as e:  # noqa: BLE001 - run_point raises nothing: its worker died
                        suspects.append(p)  # (or held the task when another's worker died)
                        broken = broken or isinstance(e, cf.process.BrokenProcessPool)
                if broken:  # the pool is gone: what else was in flight is suspect too
                    suspects += flying.values()
                    break
        for p in sorted(suspects, key=lambda p: p.index):  # one at a time: the culprit is found
            with _alone(executor_name, scheduler) as alone:
                try:
                    finish(p, alone.submit(run_point, job, p).result())
                except Exception as e:  # noqa: BLE001 - it killed its worker again
                    finish(p, Outcome(p, "error", 1, error=_died(e)))
        suspects = []
    return [done[p.index] for p in points]


# --- the tables ---------------------------------------------------------------------------

POINT_COLUMNS = ["point", "seed", "status", "exit_code", "seconds", "why"]


def _labelled(table: pd.DataFrame, point: Point, keys: list[str]) -> pd.DataFrame:
    front = {"point": point.label, **{k: dict(point.options)[k] for k in keys}, "seed": point.seed}
    return pd.concat(
        [pd.DataFrame({k: [v] * len(table) for k, v in front.items()}, index=table.index), table],
        axis=1,
    )


def tables(outcomes: list[Outcome], keys: list[str]) -> dict[str, pd.DataFrame]:
    """Each tidy table of every point, one after the other in grid order, with the point's
    label, one column per swept option and ``seed`` first; and ``points``: one row per
    point, its status, exit code, seconds and error (a point without tables is there)."""
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        parts = [_labelled(o.tables[name], o.point, keys) for o in outcomes if name in o.tables]
        if parts:
            out[name] = pd.concat(parts, ignore_index=True)
    rows = [
        {
            "point": o.point.label,
            **dict(o.point.options),
            "seed": o.point.seed,
            "status": o.status,
            "exit_code": o.exit_code,
            "seconds": o.seconds,
            "why": _why(o),
        }
        for o in outcomes
    ]
    cols = ["point", *keys, *POINT_COLUMNS[1:]]
    out["points"] = pd.DataFrame(rows, columns=cols)
    return out


def families(outcomes: list[Outcome]) -> dict[str, str]:
    """Each case's label -> the name of its family (``harness.cases.family``), over every
    point: what the report reads to choose its landscapes' rows."""
    return {c["label"]: c["family"] for o in outcomes for c in o.cases}


def _why(o: Outcome) -> str:
    """Why a point failed: what it raised, else its first finding ("" where it agrees)."""
    if o.status == "ok":
        return ""
    return o.error or (o.findings[0].strip() if o.findings else "a disagreement")


def summary_lines(outcomes: list[Outcome], keys: list[str]) -> list[str]:
    """The sweep's verdict: how many points, how many failed, and which (each named)."""
    bad = [o for o in outcomes if o.status != "ok"]
    shape = " × ".join([*keys, "seed"])
    lines = [
        f"sweep: {len(outcomes)} points ({shape}); {len(outcomes) - len(bad)} agree, "
        f"{len(bad)} fail"
    ]
    lines += [f"  FAILED {o.point.label}: {_why(o)}" for o in bad]
    return lines


# --- what a sweep costs, per executor (``gradparity bench --sweep``) ----------------------

BENCH_GRID = ["sigma=0.5,0.7,0.9,1.1,1.3", "T=10,30,100,300"]
BENCH_SEEDS = "0-2"
BENCH_COLUMNS = ["executor", "jobs", "points", "failed", "wall_s", "points_s", "same_tables"]


def comparable(t: dict[str, pd.DataFrame]) -> dict[str, str]:
    """Each labelled table as CSV text without its timing columns: what must be equal
    however the points were spread."""
    timing = ("seconds", "compile_seconds")
    return {
        k: v.drop(columns=[c for c in timing if c in v.columns]).to_csv(index=False)
        for k, v in t.items()
    }


def bench_executors(
    job: Job,
    points: list[Point],
    keys: list[str],
    jobs: int = 2,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """The same sweep three ways — one by one in this process, ``jobs`` local processes, a
    Dask LocalCluster of ``jobs`` workers — with each one's wall time, the sum of its
    points' own seconds, and whether its tables equal the first's (timings aside)."""
    rows, first = [], None
    for executor_name, n in (("local", 1), ("local", jobs), ("dask", jobs)):
        start = time.perf_counter()
        outcomes = sweep(job, points, executor_name, n, None, progress)
        wall = time.perf_counter() - start
        t = tables(outcomes, keys)
        text = comparable(t)
        first = text if first is None else first
        rows.append({"executor": executor_name, "jobs": n, "points": len(points),
                     "failed": int((t["points"]["status"] != "ok").sum()), "wall_s": wall,
                     "points_s": float(t["points"]["seconds"].sum()),
                     "same_tables": text == first})  # fmt: skip
    return pd.DataFrame(rows, columns=BENCH_COLUMNS)


def bench_markdown(rows: pd.DataFrame, machine: dict, command: str, what: str) -> str:
    """sweep_bench.md: each executor's wall time against the sum of the points run one by
    one (the first row's points' own seconds), and the goal: at most 2× that sum. ``what``
    is markup (the sweep's options as a code span)."""
    from harness.escaping import code, lit
    from harness.report.render import Heading, Para, Table, to_markdown

    one_by_one = float(rows.iloc[0]["points_s"])
    on = ", ".join(f"{lit(k)} {lit(v)}" for k, v in machine.items())
    body = []
    for _, r in rows.iterrows():
        ratio = r["wall_s"] / one_by_one if one_by_one else math.nan
        body.append(
            (
                lit(r["executor"]),
                lit(r["jobs"]),
                lit(r["points"]),
                lit(r["failed"]),
                f"{r['wall_s']:.1f}",
                f"{r['points_s']:.1f}",
                f"{ratio:.2f}",
                "**met**" if ratio <= 2 else "**missed**",
                "yes" if r["same_tables"] else "**no**",
            )
        )
    header = (
        "executor",
        "jobs",
        "points",
        "failed",
        "wall s",
        "points' seconds summed",
        "wall / one-by-one sum",
        "goal ≤ 2×",
        "tables equal to the first",
    )
    return to_markdown(
        [
            Heading("What a sweep costs, per executor", 1),
            Para(
                f"Written by {code(command)} on {on}. The sweep: {what}. Run three ways: one "
                "point after another in one process (`--executor local --jobs 1`), on local "
                "processes and on a Dask LocalCluster (one thread per process, BLAS and XLA "
                "held to one thread by the environment). The sum of the points run one by "
                f"one: {one_by_one:.1f} s (each point's own seconds in the first run: "
                "imports and the process's start not counted)."
            ),
            Table(header, tuple(body)),
        ]
    )


__all__ = [
    "BENCH_GRID",
    "BENCH_SEEDS",
    "EXECUTORS",
    "bench_executors",
    "bench_markdown",
    "check_scheduler",
    "comparable",
    "Job",
    "Outcome",
    "Point",
    "executor",
    "families",
    "grid",
    "parse_grid",
    "parse_seeds",
    "run_point",
    "scheduler_address",
    "summary_lines",
    "sweep",
    "tables",
]
