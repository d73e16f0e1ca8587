"""SIGINT and SIGTERM: the command ends, and cleans up on its way out.

``handled()`` (around a command, on the main thread) turns both signals into
``Interrupted``, an exception that is not an ``Exception``: no ``except Exception`` of
the work in between swallows it, each ``finally`` and ``with`` on the way out runs (pools
killed, workers closed, a half-staged output folder removed), and the command ends with
one line and the shell's status for the signal (130, 143). A second signal while that
cleanup runs ends the process at once, after ``last_resort`` has run.

Only the standard library: the lowest layer, so that the sandbox's own ``call`` can let
an interrupt through instead of reporting it as the plug-in's fault.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The command was sent ``signum``; ``code`` is the status to end with (128 + it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.code = 128 + signum
        super().__init__(signal.Signals(signum).name)


class Pending:
    """The signal ``handled`` took, for a command to ask about once its work is done."""

    def __init__(self) -> None:
        self.first: list[int] = []

    def check(self) -> None:
        """Raise ``Interrupted`` for a signal whose exception Python swallowed: raised
        inside a weakref callback or a ``__del__``, it is printed and dropped, and the
        command would run on to a success it was told to abandon."""
        if self.first:
            raise Interrupted(self.first[0])


_active: list[list[int]] = []  # the signals taken by each ``handled`` block now open


def check() -> None:
    """Raise ``Interrupted`` if a signal was taken inside any open ``handled`` block and
    Python swallowed its exception (in a weakref or garbage-collector callback: XLA's
    "Exception ignored in: <function _xla_gc_callback>"): called before work that must not
    follow an interrupt, such as committing an output folder, and between steps of work."""
    for first in _active:
        if first:
            raise Interrupted(first[0])


@contextlib.contextmanager
def handled(last_resort: Callable[[], None] = lambda: None) -> Iterator[Pending]:
    """Within: SIGINT and SIGTERM raise ``Interrupted`` (once; a second one runs
    ``last_resort`` and ends the process with the first one's status). It gives a
    ``Pending``, whose ``check`` raises it again where Python swallowed it. The previous
    handlers are put back on the way out. Off the main thread, nothing changes."""
    pending = Pending()
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return
    first = pending.first

    def on_signal(signum: int, frame: object) -> None:
        if first:  # the cleanup itself is taking too long for the user
            with contextlib.suppress(BaseException):
                last_resort()
            os._exit(128 + first[0])
        first.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, on_signal) for s in SIGNALS}
    _active.append(first)
    try:
        yield pending
    finally:
        _active.remove(first)
        for s, handler in previous.items():
            signal.signal(s, handler)


__all__ = ["Interrupted", "Pending", "check", "handled"]
