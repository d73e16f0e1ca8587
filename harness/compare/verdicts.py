"""The verdicts: every compared tensor ends in exactly one. A verdict owns its name as
written in the tables (``agreement.csv``'s ``verdict`` column), its mark on the terminal
and in the report, the sentence of the legends that explains the mark, whether it fails
the run (exit 1) and whether it counts as agreement. Every output reads them from here.

"inconclusive": an oracle (finite differences) whose own error estimate is too large to
judge some elements, and no element it can judge disagrees; "failed": nothing to compare
(a backend failed, a tensor is missing).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """One verdict. Its value is its name in the tables; a member is that string too, so a
    table's ``verdict`` column compares equal to it."""

    mark: str
    meaning: str
    fails_run: bool
    agrees: bool
    compared: bool

    def __new__(
        cls, name: str, mark: str, meaning: str, fails_run: bool, agrees: bool, compared: bool
    ) -> Verdict:
        member = str.__new__(cls, name)
        member._value_ = name
        member.mark = mark  # the cell's first character on the terminal and in the report
        member.meaning = meaning  # the legend's words after the mark
        member.fails_run = fails_run  # a run with one such row exits 1
        member.agrees = agrees  # the row is ``ok``
        member.compared = compared  # numbers were compared (the row has metrics)
        return member

    AGREE = (
        "agree",
        "✓",
        "within the tolerance (for numeric, widened by its own error estimate)",
        False,
        True,
        True,
    )
    WITHIN_NOISE = (
        "agree within noise",
        "≈",
        "beyond it but within the problem's own rounding noise",
        False,
        True,
        True,
    )
    DISAGREE = ("disagree", "✗", "outside both", True, False, True)
    INCONCLUSIVE = ("inconclusive", "?", "finite differences cannot resolve it", False, False, True)
    UNSUPPORTED = (
        "unsupported",
        "–",
        "the backend lacks a function the case needs",
        False,
        False,
        False,
    )
    FAILED = (
        "failed",
        "✗",
        "failed: nothing to compare (a backend failed, a tensor is missing)",
        True,
        False,
        False,
    )

    @property
    def style(self) -> str:
        """How a cell of this verdict is shown where colour is drawn (the report's HTML):
        "ok" for an agreement within the tolerance, "bad" for one that fails the run,
        "" for the rest (within noise, inconclusive, unsupported: said, not coloured)."""
        return "ok" if self is Verdict.AGREE else "bad" if self.fails_run else ""

    @property
    def legend(self) -> str:
        """This verdict's part of a legend: its mark and what the mark says."""
        return f"{self.mark} {self.meaning}"

    @classmethod
    def of(cls, name: Any) -> Verdict:
        """The verdict a table's cell names."""
        return cls(str(name))  # type: ignore[call-arg]  # an Enum found by its value


def legend() -> str:
    """Every verdict's mark and meaning, in order: the legend under which a table's marks
    are read (the terminal's grid, the report's tables)."""
    return ", ".join(v.legend for v in Verdict)


VERDICTS = tuple(v.value for v in Verdict)
FLAGGED = tuple(v.value for v in Verdict if v.fails_run)  # inconclusive alone does not fail
AGREEING = tuple(v.value for v in Verdict if v.agrees)
COMPARED = tuple(v.value for v in Verdict if v.compared)  # the rows where numbers were compared


def flagged(table: Any) -> Any:
    """The rows that fail a run: a disagreement or a failure."""
    return table["verdict"].isin(FLAGGED)


def compared(table: Any) -> Any:
    """The rows whose numbers were compared (agree, within noise, disagree, inconclusive);
    a skipped, unsupported or failed backend compared nothing, and neither does a tensor
    with no elements (its agreement is vacuous)."""
    numbers = table["verdict"].isin(COMPARED)
    if "n_elements" in table:
        numbers &= table["n_elements"] != 0
    return numbers


def baseline_odd(table: Any) -> Any:
    """The disagreeing rows where the baseline itself is the odd one out (``pairs.odd_one_out``):
    it disagrees with every other backend while they agree among themselves, so the fault
    is the baseline's, not the backend's compared with it."""
    return (table["verdict"] == Verdict.DISAGREE) & (table["odd_one_out"] == table["baseline"])
