"""The one executor layer: what each kind of executor is, and how a call's failure and an
interrupt leave it."""

import concurrent.futures as cf

import pytest

from harness import parallel
from harness.interrupts import Interrupted


def test_one_local_job_runs_in_this_process_and_keeps_a_failure_in_its_future():
    with parallel.executor("local", 1) as ex:
        assert isinstance(ex, parallel.Inline)
        assert ex.submit(divmod, 7, 2).result() == (3, 1)
        failed = ex.submit(divmod, 1, 0)
    assert isinstance(failed.exception(), ZeroDivisionError)


def test_an_interrupt_in_this_process_is_the_commands_not_the_calls():
    def interrupted():
        raise Interrupted(2)

    with pytest.raises(Interrupted), parallel.executor("local", 1) as ex:
        ex.submit(interrupted)


def test_more_local_jobs_are_a_pool_of_spawned_processes():
    with parallel.executor("local", 2) as ex:
        assert isinstance(ex, cf.ProcessPoolExecutor)
        assert ex.submit(divmod, 7, 2).result() == (3, 1)
