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
- CSV: ``csv_cell`` puts a ``'`` before a text cell that a spreadsheet would run as a
  formula (one starting with ``= + - @``, a tab or a carriage return), as OWASP advises.
- The terminal: ``terminal`` shows control characters (ANSI escapes, a carriage return)
  as their ``\\x..`` escapes instead of sending them.
"""

from __future__ import annotations

import re
from typing import Any

# ``_`` between two letters or digits (``W_x``, ``dL/dh_t``) never delimits emphasis: left as is
_MARKUP = re.compile(r"([\\`*\[\]<>&#|~!]|(?<![^\W_])_|_(?![^\W_]))")
_BLOCK_START = re.compile(r"^([-+=>]|\d+[.)])")
_SPACE = re.compile(r"\s+")
_BACKTICKS = re.compile(r"`+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
    """A CSV cell a spreadsheet shows as text: a string that would start a formula gets
    a leading ``'``; anything else is returned as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_table(table: Any) -> Any:
    """A copy of a DataFrame with ``csv_cell`` applied to every text cell (numbers, bools
    and missing values untouched), ready for ``to_csv``."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    text_columns = [c for c in table.columns
                    if is_object_dtype(table[c]) or is_string_dtype(table[c])]  # fmt: skip
    if not text_columns:
        return table
    out = table.copy()
    for column in text_columns:
        out[column] = out[column].map(csv_cell)
    return out


def terminal(text: Any) -> str:
    """``text`` for a terminal: control characters other than line break and tab shown as
    ``\\x1b``-style escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


__all__ = ["code", "csv_cell", "csv_table", "fence", "lit", "terminal"]
