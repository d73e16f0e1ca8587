"""Text that came from outside (a plug-in's tensor names, its exception messages, its
printed output) made inert in every format it is shown in.

- Markdown (the report's own markup: ``code``, **bold**): ``lit`` backslash-escapes the
  characters that make inline markup (HTML tags and entities, code spans, emphasis,
  links and images, table pipes, strikethrough) and a leading one that would start a block
  (a heading, a quote, a list item), and folds line breaks, so a name cannot open a block
  of its own. CommonMark lets any ASCII punctuation be escaped, and an escaped character
  is never markup; the rest are left as they are, for a readable .md. ``code`` wraps text
  in a code span whose backtick fence is longer than any run of backticks inside it;
  ``fence`` does the same for a code block.
- CSV: ``write_csv`` writes every table: each text cell (and column name) through
  ``csv_cell``, which shows its control characters (``terminal``) and puts a ``'`` before
  the cell, and before any line inside it, that a spreadsheet would run as a formula (one
  starting with ``= + - @``, a tab or a carriage return), as OWASP advises; a cell holding
  a line break, a quote or a comma is quoted.
- Control characters: ``terminal`` shows every C0 and C1 control character and DEL except
  line break and tab (ANSI escapes, OSC-8 hyperlinks, a bell, a carriage return) as its
  ``\\x..`` escape instead of sending it, and the line separators and bidi controls
  (U+2028, U+2029, U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) as ``\\u....``. ``console`` applies it to everything the command
  line prints (``Shown`` streams in place of ``sys.stdout`` and ``sys.stderr``); the
  report's renderers apply it to the whole .md and .html they produce.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

# ``_`` between two letters or digits (``W_x``, ``dL/dh_t``) never delimits emphasis: left as is
_MARKUP = re.compile(r"([\\`*\[\]<>&#|~!]|(?<![^\W_])_|_(?![^\W_]))")
_BLOCK_START = re.compile(r"^([-+=>]|\d+[.)])")
_SPACE = re.compile(r"\s+")
_BACKTICKS = re.compile(r"`+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# not control characters, but as hidden: U+2028 and U+2029 end a line in many viewers, and
# the bidi controls (U+202A-U+202E, U+2066-U+2069, the marks U+200E, U+200F, U+061C)
# reorder what follows them, so that a line can read as other than it is
_INVISIBLE = re.compile("[\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# the start of the cell, or of a line inside it, where a spreadsheet would start a formula
_FORMULA_LINE = re.compile(r"(\A|\n)(?=[=+\-@\t\r])")


def lit(text: Any) -> str:
    """``text`` as literal Markdown on one line: every run of whitespace (line breaks
    included) one space, the markup characters escaped, and a leading block marker too."""
    text = _MARKUP.sub(r"\\\1", _SPACE.sub(" ", str(text)))
    return _BLOCK_START.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], text)


def _fence_for(text: str, least: int) -> str:
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    return "`" * max(least, longest + 1)


def code(text: Any) -> str:
    """``text`` as a Markdown code span (shown as code, never as markup), on one line."""
    text = _SPACE.sub(" ", str(text))
    fence = _fence_for(text, 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fence(text: str) -> str:
    """A fenced Markdown code block holding ``text`` verbatim, whatever backticks it has."""
    mark = _fence_for(text, 3)
    return f"{mark}\n{text}\n{mark}"


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string with its control characters shown
    (``terminal``; line breaks and tabs kept) and a leading ``'`` where it, or a line
    inside it, would start a formula; anything else is returned as it is."""
    if not isinstance(value, str):
        return value
    return _FORMULA_LINE.sub(r"\1'", terminal(value))


_GUARDED_LINE = re.compile(r"(\A|\n)'(?=[=+\-@\t\r])")


def csv_text(value: Any) -> Any:
    """A text cell of a CSV this project wrote, as it was before ``csv_cell`` guarded it:
    the ``'`` put before a line that would start a formula taken away (a value of ours
    that itself began with ``'`` and a formula character would lose its ``'``: none does).
    The control characters ``terminal`` showed stay shown."""
    if not isinstance(value, str):
        return value
    return _GUARDED_LINE.sub(r"\1", value)


def csv_table(table: Any) -> Any:
    """A copy of a DataFrame with ``csv_cell`` applied to every text cell and column name
    (numbers, bools and missing values untouched); ``write_csv`` writes it."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    text_columns = [
        c for c in table.columns if is_object_dtype(table[c]) or is_string_dtype(table[c])
    ]
    names = {c: csv_cell(c) for c in table.columns if csv_cell(c) != c}
    if not text_columns and not names:
        return table
    out = table.copy()
    for column in text_columns:
        out[column] = out[column].map(csv_cell)
    return out.rename(columns=names) if names else out


def write_csv(table: Any, path: str | Path) -> None:
    """Write a DataFrame as CSV (no index, ``\\n`` line ends) with every cell as text a
    spreadsheet or a line-by-line reader cannot misread: ``csv_table``'s cells hold no
    control character but line break and tab, and the writer quotes a cell that holds a
    line break (the line terminator), a quote or a comma, so every row parses back whole.
    Every CSV the package writes goes through here."""
    csv_table(table).to_csv(path, index=False, lineterminator="\n")


def terminal(text: Any) -> str:
    """``text`` with every C0/C1 control character and DEL but line break and tab shown as
    its ``\\x1b``-style escape, and every line separator and bidi control as its
    ``\\u202e``-style one: safe to send to a terminal or to keep in a file. Applying
    it twice changes nothing more (it leaves backslashes as they are)."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Shown(io.TextIOBase):
    """A text stream that writes everything on to ``unescaped`` through ``terminal``: what
    a command prints is shown, its control characters never sent. ``unescaped`` stays at
    hand for the one writer that must send its own (a progress bar's carriage returns)."""

    def __init__(self, unescaped: TextIO) -> None:
        self.unescaped = unescaped

    def write(self, text: str) -> int:
        self.unescaped.write(terminal(text))
        return len(text)

    def flush(self) -> None:
        self.unescaped.flush()

    def close(self) -> None:
        """Leaves ``unescaped`` open: it is the process's own stream."""

    def fileno(self) -> int:
        return self.unescaped.fileno()

    def isatty(self) -> bool:
        return self.unescaped.isatty()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.unescaped, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.unescaped, "errors", None)


@contextmanager
def console() -> Iterator[None]:
    """For the duration, ``sys.stdout`` and ``sys.stderr`` are ``Shown`` streams over the
    ones in place (not wrapped twice), so nothing printed (a case's name, a plug-in's
    output or error, an error message) can send a control character."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (s if isinstance(s, Shown) else Shown(s) for s in saved)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


__all__ = [
    "Shown",
    "code",
    "console",
    "csv_cell",
    "csv_text",
    "csv_table",
    "fence",
    "lit",
    "terminal",
    "write_csv",
]
