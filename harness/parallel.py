"""Where work is spread: this process, local processes or a Dask cluster, all behind one
``concurrent.futures`` interface, started and ended here.

``process_pool`` is a ``concurrent.futures.ProcessPoolExecutor`` of spawned processes
(fresh interpreters: no framework state is shared). On a normal exit it waits for its
work, as the executor does; on any exception — an interrupt above all — it does not wait:
it kills its processes and cancels what had not started, so a pool never keeps a command
alive, nor outlives it. The runner (``--jobs``), validate (``--jobs``) and sweeps take
their pools from here.

``executor(executor_name, jobs)`` is the executor of a sweep's points:

- ``local`` with one job: this process (``Inline``, a future per point run at submit);
- ``local`` with N > 1 jobs: ``process_pool(N)``;
- ``dask``: ``Client.get_executor()`` of a ``LocalCluster`` on this machine (N worker
  processes, one thread each, bound to 127.0.0.1) or of the cluster at ``scheduler``; a
  task is failed after its worker died twice, and workers are not daemons (a check may
  start processes of its own).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from harness.interrupts import Interrupted

EXECUTORS = ("local", "dask")


def pool(
    jobs: int, initializer: Callable | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned processes (close it with ``end``, or use ``process_pool``)."""
    return ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=initargs,
    )


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
def process_pool(
    jobs: int, initializer: Callable | None = None, initargs: tuple = ()
) -> Iterator[ProcessPoolExecutor]:
    """``pool(jobs)`` for the block: waited for when the block ends, killed when it raises."""
    executor = pool(jobs, initializer, initargs)
    try:
        yield executor
    except BaseException:
        kill(executor)
        raise
    executor.shutdown(wait=True, cancel_futures=True)


class Inline(cf.Executor):
    """A ``concurrent.futures`` executor that runs each call in this process, at submit."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Interrupted:  # the command's, not the call's
            raise
        except BaseException as e:  # noqa: BLE001 - handed to the future, as a pool does
            future.set_exception(e)
        return future


class SchedulerUnreachable(ConnectionError):
    """Dask's client could not connect to the scheduler at an address (the cause says why)."""


async def identity(address: str, timeout: float) -> Any:
    """What the server at ``address`` says it is, asked as a Dask client asks (a scheduler
    says ``{"type": "Scheduler", ...}``)."""
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


@contextlib.contextmanager
def executor(
    executor_name: str, jobs: int = 1, scheduler: str | None = None, timeout: float = 10.0
) -> Iterator[cf.Executor]:
    """The executor named ``executor_name``, of ``jobs`` workers (see the module doc), closed on the way
    out: a local pool killed, not waited for, when the way out is an exception. ``timeout``:
    seconds the client has to connect to ``scheduler``."""
    if executor_name == "local":
        if jobs == 1:
            yield Inline()
        else:
            with process_pool(jobs) as local:
                yield local
        return
    import dask
    from dask.distributed import Client, LocalCluster

    with dask.config.set(
        {"distributed.scheduler.allowed-failures": 1, "distributed.worker.daemon": False}
    ):
        if scheduler:
            try:
                client = Client(scheduler, timeout=f"{timeout}s")
            except OSError as e:
                raise SchedulerUnreachable(scheduler) from e
            cluster = None
        else:
            cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


__all__ = [
    "EXECUTORS",
    "Inline",
    "SchedulerUnreachable",
    "executor",
    "identity",
    "kill",
    "pool",
    "process_pool",
]
