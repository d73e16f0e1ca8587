"""Progress bars for long commands (report, validate, selftest, bench), drawn by tqdm.

A bar is shown on stderr only when stderr is a terminal and the user did not ask for
``--quiet``; anywhere else (a pipe, a CI log, a file) nothing is written, so logs hold
the results, not a line per step. The bar draws itself with carriage returns, so it
writes to the stream under the command line's escaping one (``escaping.Shown``), and
shows the control characters of what it names (a user case's name) itself.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from harness import interrupts
from harness.escaping import Shown, terminal


class Progress:
    """A callable bar: ``bar(case, backend)`` advances it by one and shows what runs.

    ``total`` may be None (a count without an end: the bench's steps)."""

    def __init__(
        self,
        total: int | None,
        what: str,
        quiet: bool = False,
        stream: TextIO | None = None,
        unit: str = "run",
    ) -> None:
        stream = stream or sys.stderr
        if isinstance(stream, Shown):  # the bar's own carriage returns must reach the terminal
            stream = stream.unescaped
        self.shown = not quiet and bool(getattr(stream, "isatty", lambda: False)())
        self.bar = (
            tqdm(
                total=total,
                desc=what,
                file=stream,
                leave=False,
                dynamic_ncols=True,
                unit=unit,
                smoothing=0.1,
            )
            if self.shown
            else None
        )

    def __call__(self, *doing: str) -> None:
        interrupts.check()  # each step: a signal a callback swallowed stops the work here
        if self.bar is not None:  # a redraw per step: steps are runs, never more than a few a ms
            self.bar.update(1)
            self.bar.set_postfix_str(terminal(" · ".join(doing))[:60], refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Progress"]
