"""A reference run aside: with ``jobs=1``, the jax reference in a process of its own,
beside this one.

A cold validation spends most of its time loading frameworks: torch's import, jax's
import and its XLA compile, one after the other in one interpreter. They are independent,
so a ``Helper`` — a sandbox worker (``harness.sandbox.channel.Isolated``: a fresh
``python -m harness.sandbox.worker``, which never runs the caller's ``__main__`` again, as
a spawned pool would) — starts before the plug-in is loaded and imports jax at once; then
it runs the jax reference of each catalog case (``harness.runner.run_isolated``: the case
made again from its name and options, the same seed, the same arrays, the same
``run_case``), while this process runs the other references and the plug-in. Its Results
come back as data and are put back in their place (``merged``), so the tables are those of
a run in one process. Where it cannot — a case that is not the catalog's, jax alone among
the references or loaded here already, a helper that fails or times out — the reference
runs here, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from harness.cases import Case
from harness.cases.base import catalog_spec
from harness.result import BUILD, Result

ASIDE = "jax"  # its import and compile are the costliest after torch's, and need none of it
WARM = "harness.validation.aside:warm"
TIMEOUT = 600.0  # seconds for one case there, as for a case of the user's in its worker


_started = False  # has this process started a helper already?


def wanted(references: list[str] | None, jobs: int) -> bool:
    """Is a helper worth starting, before the plug-in is even loaded: one process
    (``jobs=1``), the jax reference asked for beside another, and a cold start — jax not
    loaded here, and no helper started before. A program that validates again and again
    (``selftest``, a notebook) has its first validation helped; from the second on, jax
    loads here once, rather than in a helper each time."""
    from harness.backends import references_asked

    asked = references_asked(references)
    return (
        jobs == 1
        and ASIDE in asked
        and len(set(asked)) > 1
        and "jax" not in sys.modules
        and not _started
    )


def aside(names: list[str], references: list[Any]) -> bool:
    """Does the jax reference go aside, of the references the plug-in's form kept: made
    here without an error, and beside at least one other (which then loads here while
    jax loads there)?"""
    made = dict(zip(names, references, strict=False))  # names: the references', then the plug-in's
    return (
        ASIDE in made and not isinstance(made[ASIDE], Exception) and any(n != ASIDE for n in made)
    )


def warm(worker: Any, request: dict) -> dict:
    """In the helper, first: jax imported while this process loads the plug-in and the
    other references."""
    from harness.backends.jax_grad import _jax

    _jax()
    return {}


class Helper:
    """The helper's worker and one thread here that talks to it: each request is sent at
    once and answered as a future."""

    def __init__(self) -> None:
        from harness.sandbox.channel import Isolated

        self.channel = Isolated(0)  # the references here have no memory limit either
        self.closed = False
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="jax aside")
        self.thread.submit(self._ask, {"op": WARM})

    def _ask(self, request: dict) -> dict:
        """The worker's reply, in the thread; after ``close``, a fault and no worker (one
        started by a request that raced the close is closed after it)."""
        if self.closed:
            return {"fault": {"fault_name": "closed", "message": "the helper was closed"}}
        try:
            return self.channel.request(request, TIMEOUT)
        finally:
            if self.closed:
                self.channel.close()

    def submit(
        self, case: Case, dtype: str, seed: int, noise: tuple, modes: tuple[str, ...]
    ) -> Future | None:
        """The jax reference on ``case``, there; None for a case that is not the catalog's,
        or once the helper is closed."""
        from harness.runner import RUN_ISOLATED

        spec = catalog_spec(case)
        if spec is None or self.closed:
            return None
        noise_on, runs = noise
        request = {
            "op": RUN_ISOLATED,
            "case": spec,
            "backends": [ASIDE],
            "dtype": dtype,
            "seed": seed,
            "noise_on": [n for n in noise_on if n == ASIDE],
            "noise_runs": runs,
            "modes": list(modes),
        }
        return self.thread.submit(self._ask, request)

    def close(self) -> None:
        """The worker killed (a request still out is answered at once, with a fault) and
        what was not sent, cancelled; nothing here waits for the thread."""
        self.closed = True
        self.channel.close()
        self.thread.shutdown(wait=False, cancel_futures=True)


@contextmanager
def helper(start: bool) -> Iterator[Helper | None]:
    """A Helper for the block, started now, or None."""
    global _started
    if not start:
        yield None
        return
    _started = True
    made = Helper()
    try:
        yield made
    finally:
        made.close()


def submit(
    made: Helper | None, case: Case, dtype: str, seed: int, noise: tuple, modes: tuple[str, ...]
) -> Future | None:
    """The jax reference on ``case`` in the helper, or None where it runs here."""
    return None if made is None else made.submit(case, dtype, seed, noise, modes)


def collected(future: Future | None, label: str) -> list[Result] | None:
    """The helper's Results on the case labelled ``label``, or None where it failed (the
    reference then runs here)."""
    from harness.runner import _RUN_REPLY, _result
    from harness.sandbox.wire import conforms

    if future is None:
        return None
    try:
        reply = future.result()
    except Exception:  # noqa: BLE001 - the reference runs here instead
        return None
    if conforms(reply, _RUN_REPLY) or "results" not in reply:
        return None
    return [_result(r, label) for r in reply["results"]]


def merged(
    here: list[Result], there: list[Result], names: list[str], modes: tuple[str, ...]
) -> list[Result]:
    """The Results in ``run_case``'s order — mode by mode, backend by backend in the
    order of ``names`` — from those made here and those made aside; a case that could not
    be built is its one BUILD Result."""
    if any(r.backend == BUILD for r in here):
        return [r for r in here if r.backend == BUILD]

    def place(r: Result) -> tuple[int, int]:
        return (
            modes.index(r.mode) if r.mode in modes else len(modes),
            names.index(r.backend) if r.backend in names else len(names),
        )

    return sorted([*here, *there], key=place)  # stable: each side's own order kept


__all__ = ["ASIDE", "Helper", "aside", "collected", "helper", "merged", "submit", "wanted"]
