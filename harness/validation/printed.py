"""What a plug-in printed: kept as data, shown fenced and labelled as the plug-in's.

A plug-in that prints (to debug its backward) is shown what it printed, on the terminal
and in ``diagnostics.md``, never mixed with the command's own lines:

- the worker keeps the first ``HEAD`` and last ``TAIL`` characters of each stream of a
  call and counts the rest (``harness.sandbox.worker.Capture``): that is what travels, as
  data, and what ``diagnostics.md`` shows, verbatim in a code block;
- the terminal shows the first ``SHOWN`` streams, each as the first ``HEAD_LINES`` and
  last ``TAIL_LINES`` lines of what was kept, with the exact count of the lines left out
  (the worker counts the lines of all it printed), each line behind a ``│`` rule under a header that names
  the plug-in, the case and the stream — so nothing it prints can pass for a line of the
  command's own (a verdict, a table row) — and with its control characters shown, not
  sent (``harness.escaping.terminal``).

Only the first call of each case is shown (every case is called twice; the second
prints the same, or the repeat check says why not), and the import's output once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.compare.text import counted
from harness.escaping import terminal
from harness.sandbox.worker import HEAD, TAIL

HEAD_LINES, TAIL_LINES = 20, 5  # lines of each stream shown on the terminal
SHOWN = 4  # streams shown on the terminal; the rest are counted (all are in diagnostics.md)
RULE = "  │ "
COLUMNS, ROWS = 80, 4  # a line behind a rule: folded to COLUMNS, at most ROWS rows of it shown
STREAMS = {  # what a call record says it printed, each stream as its header names it
    "stdout": "printed on stdout",
    "stderr": "printed on stderr",
    "fd": "wrote to file descriptors 1 and 2 (os.write, C code or a subprocess)",
}


@dataclass(frozen=True)
class Printed:
    """One stream of one call: ``text`` as kept (its ends), ``chars`` all it printed."""

    case: str  # "(load)" for what importing the plug-in printed
    backend: str
    stream: str  # "stdout", "stderr", or "fd": below Python's streams (``STREAMS``)
    text: str
    chars: int
    lines: int | None = None  # all it printed, as its worker counted them (None: count ``text``)

    @property
    def title(self) -> str:
        what = "importing it" if self.case == "(load)" else f"case {self.case}"
        return f"{self.backend} {STREAMS.get(self.stream, self.stream)} ({what}), {self.chars:,} characters{self.kept}"

    @property
    def kept(self) -> str:
        """What of it was kept, where not all of it was."""
        return "" if self.chars <= HEAD + TAIL else f" (the first {HEAD:,} and last {TAIL:,} kept)"

    def terminal_lines(self) -> list[str]:
        """The header, the bounded lines behind the rule, and a closing rule. Where the
        worker cut the stream (``kept``), the lines shown come from the ends it kept, and
        the line between them counts what the terminal shows nothing of: the characters
        the worker left out, and the lines of all it printed not one character of which
        is shown."""
        if self.chars <= HEAD + TAIL:
            lines = self.text.rstrip("\n").split("\n")
            if len(lines) > HEAD_LINES + TAIL_LINES:
                cut = len(lines) - HEAD_LINES - TAIL_LINES
                lines = [*lines[:HEAD_LINES], f"[… {cut:,} lines left out …]", *lines[-TAIL_LINES:]]
        else:  # the first HEAD and last TAIL characters kept, by their known lengths
            head = self.text[:HEAD].split("\n")[:HEAD_LINES]  # its last line may run on
            tail = self.text[-TAIL:].rstrip("\n").split("\n")[-TAIL_LINES:]  # its first too
            total = self.lines if self.lines is not None else len(self.text.split("\n"))
            unseen = max(0, total - len(head) - len(tail))  # none where one line spans the cut
            lines = [
                *head,
                f"[… {self.chars - HEAD - TAIL:,} characters left out"
                f"{f', {unseen:,} lines left out' if unseen else ''} …]",
                *tail,
            ]
        return [f"  ┌ {self.title}:", *(RULE + row for line in lines for row in fold(line)), "  └"]


_UNITS = re.compile(
    r"\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|.", re.S
)  # ``terminal``'s escapes, or a character


def fold(line: str) -> list[str]:
    """One line of a plug-in's text as the terminal shows it behind a rule: escaped
    (``terminal``), folded to ``COLUMNS`` columns, at most ``ROWS`` rows of it and then how
    many characters more there were, so that a line of a megabyte is a few rows."""
    shown = terminal(line)
    if len(shown) <= COLUMNS:
        return [shown]
    rows, row, used = [], "", 0
    for match in _UNITS.finditer(shown):  # an escape is never cut in two
        unit = match.group()
        if len(row) + len(unit) > COLUMNS:
            rows.append(row)
            row = ""
            if len(rows) == ROWS:
                break
        row += unit
        used += len(unit)
    else:
        rows.append(row)
    if used < len(shown):
        rows.append(f"[… {len(shown) - used:,} more characters]")
    return rows


def bounded(line: str) -> str:
    """One line of a plug-in's text (an exception's message, a line of its traceback) at
    most ``COLUMNS * ROWS`` characters long, and then how many more there were."""
    if len(line) <= COLUMNS * ROWS:
        return line
    return f"{line[: COLUMNS * ROWS]}[… {len(line) - COLUMNS * ROWS:,} more characters]"


def terminal_lines(printed: list[Printed]) -> list[str]:
    """The first ``SHOWN`` streams as the terminal shows them, and a count of the rest."""
    lines = [line for p in printed[:SHOWN] for line in p.terminal_lines()]
    if len(printed) > SHOWN:
        rest = printed[SHOWN:]
        cases = len(dict.fromkeys(p.case for p in rest))
        lines.append(
            f"  · and on {counted(len(rest), 'more stream')} ({counted(cases, 'more case')}), "
            "each in diagnostics.md (--out)"
        )
    return lines


def printed_by(record: dict[str, Any], case: str, backend: str) -> list[Printed]:
    """The streams a worker's call record (``harness.sandbox.worker.call``) printed on."""
    return [
        Printed(
            case,
            backend,
            stream,
            str(record.get(stream) or ""),
            int(record[f"{stream}_chars"]),
            _count(record.get(f"{stream}_lines")),
        )
        for stream in STREAMS
        if record.get(f"{stream}_chars")
    ]


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


__all__ = [
    "COLUMNS",
    "HEAD_LINES",
    "ROWS",
    "SHOWN",
    "TAIL_LINES",
    "Printed",
    "bounded",
    "fold",
    "printed_by",
    "terminal_lines",
]
