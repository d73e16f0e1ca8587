"""gradparity's pytest plugin: assert your own backprop against the references in one line.

    def test_my_mlp_backprop(gradparity_check):
        gradparity_check(my_grads, case="mlp")    # AssertionError with the diagnostics

    def test_the_implementation_named_on_the_command_line(gradparity_check):
        gradparity_check(case="mlp")              # pytest --gradparity-impl pkg.mod:grads

Registered under ``[project.entry-points.pytest11]`` as ``gradparity``. Everything heavy
(numpy, pandas, the worker) is imported only when a test calls the fixture.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "gradparity", "gradparity: check your own backprop against the references"
    )
    group.addoption(
        "--gradparity-impl",
        metavar="TARGET",
        default=None,
        help="the implementation gradparity_check validates when a test names none: "
        "package.module:attr or path/to/file.py:attr",
    )
    from harness.validation.forms import form_names

    group.addoption(
        "--gradparity-as",
        choices=form_names(),
        default=None,
        help="its form (default: guessed from the object)",
    )
    group.addoption(
        "--gradparity-reference",
        action="append",
        default=None,
        metavar="NAME",
        help="a reference backend, repeatable; all: every backend of gradparity run "
        "(default: those of gradparity validate)",
    )
    group.addoption(
        "--gradparity-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds one case may take in the implementation (default 60)",
    )


@pytest.fixture(scope="session")
def _gradparity_worker():
    """One worker process for the session's checks (restarted after a crash or timeout)."""
    from harness.sandbox.channel import Isolated

    worker = Isolated()
    yield worker
    worker.close()


@pytest.fixture
def gradparity_impl(request: pytest.FixtureRequest) -> str:
    """The TARGET given with --gradparity-impl (the test is skipped without one)."""
    target = request.config.getoption("gradparity_impl")
    if target is None:
        pytest.skip("no implementation named: run pytest --gradparity-impl TARGET")
    return target


@pytest.fixture
def gradparity_check(request: pytest.FixtureRequest, _gradparity_worker):
    """``gradparity_check(impl=None, case=None, form=None, dtype="float64", **options)``:
    validate ``impl`` (a TARGET string or the function/engine/stage itself; default:
    --gradparity-impl) and raise an AssertionError with the diagnostics unless it agrees
    with the references. Returns the Validation. Options as ``harness.validate``."""
    config = request.config

    def check(
        impl: Any = None,
        case: Any = None,
        form: str | None = None,
        dtype: str = "float64",
        **options: Any,
    ):
        __tracebackhide__ = True
        from harness.validation.validator import validate

        target = impl if impl is not None else config.getoption("gradparity_impl")
        if target is None:
            pytest.fail(
                "gradparity_check needs an implementation: pass one, or run pytest "
                "--gradparity-impl TARGET",
                pytrace=False,
            )
        cases = [case] if case is not None and not isinstance(case, (list, tuple)) else case
        options.setdefault("references", config.getoption("gradparity_reference"))
        options.setdefault("timeout", config.getoption("gradparity_timeout"))
        options.setdefault("channel", _gradparity_worker)
        result = validate(
            target,
            form=form or config.getoption("gradparity_as"),
            cases=cases,
            dtype=dtype,
            **options,
        )
        if not result.ok:
            raise AssertionError(
                f"gradparity: the implementation {result.headline}\n" + result.text()
            )
        return result

    return check
