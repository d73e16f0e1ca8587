"""Processes that share work: one way to start a pool, and one way to end it.

``process_pool`` is a ``concurrent.futures.ProcessPoolExecutor`` of spawned processes
(fresh interpreters: no framework state is shared). On a normal exit it waits for its
work, as the executor does; on any exception — an interrupt above all — it does not wait:
it kills its processes and cancels what had not started, so a pool never keeps a command
alive, nor outlives it. The runner (``--jobs``), validate (``--jobs``) and sweeps
(``--executor local --jobs``) take their pools from here.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def pool(
    jobs: int, initializer: Callable | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned processes (close it with ``end``, or use ``process_pool``)."""
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer, initargs=initargs)  # fmt: skip


def kill(executor: ProcessPoolExecutor) -> None:
    """Kill the pool's processes now and cancel the work not yet started."""
    processes: dict[Any, Any] = dict(getattr(executor, "_processes", None) or {})
    for process in processes.values():
        with contextlib.suppress(Exception):
            process.kill()
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        with contextlib.suppress(Exception):
            process.join(timeout=5)


@contextlib.contextmanager
def process_pool(jobs: int, initializer: Callable | None = None,
                 initargs: tuple = ()) -> Iterator[ProcessPoolExecutor]:  # fmt: skip
    """``pool(jobs)`` for the block: waited for when the block ends, killed when it raises."""
    executor = pool(jobs, initializer, initargs)
    try:
        yield executor
    except BaseException:
        kill(executor)
        raise
    executor.shutdown(wait=True, cancel_futures=True)


__all__ = ["kill", "pool", "process_pool"]
