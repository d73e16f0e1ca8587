"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

from harness import compile_cache

compile_cache.enable()  # the test processes are gradparity's own, as the command's are


@pytest.fixture(scope="module")
def worker(request):
    """One plug-in worker process for a test module, shared by its validations (the
    ``channel`` of ``validate``), closed after the module. Its data-segment limit is the
    module's ``WORKER_MEMORY`` where it sets one, else the sandbox's default."""
    from harness.sandbox.channel import DEFAULT_MEMORY, Isolated

    w = Isolated(memory=getattr(request.module, "WORKER_MEMORY", DEFAULT_MEMORY))
    yield w
    w.close()


@pytest.fixture
def refuse_work(monkeypatch) -> None:
    """Make any comparison, validation, sweep or bench fail loudly: a command under test
    must stop before it starts one."""
    import harness.bench.measure
    import harness.drift  # binds compare_backends when imported: before the stub, not after
    import harness.runner
    import harness.sweep
    import harness.validation.validator

    def no(*args, **kwargs):
        raise AssertionError("the work started before the input was checked")

    for module in (harness.runner, harness.drift):
        monkeypatch.setattr(module, "compare_backends", no)
    monkeypatch.setattr(harness.validation.validator, "validate", no)
    monkeypatch.setattr(harness.sweep, "sweep", no)
    monkeypatch.setattr(harness.bench.measure, "run_bench", no)
    monkeypatch.setattr("subprocess.call", no)  # bench runs itself again in a fresh process
