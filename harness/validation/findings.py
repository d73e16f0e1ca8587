"""A finding: one thing the diagnostics found, as data. It carries its facts (its kind,
the tensor, the worst element and its values, where an error starts in the taps, a
constant factor, the counts, the evidence it rests on) and renders its sentence from a
template over them; code that needs to know what was found reads the fields, never the
sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What a finding is about, where it is not one of the plug-in's faults (a fault's
    finding is of the fault's kind, ``harness.validation.faults.KINDS``)."""

    FORWARD = "forward"  # the loss differs: the gradients below come from other values
    INCONCLUSIVE = "inconclusive"  # an oracle could not judge a tensor
    DISAGREES = "disagrees"  # a tensor of the plug-in's disagrees
    PATTERN = "pattern"  # what the disagreeing tensors have in common
    BASELINE_ODD = "baseline odd one out"  # the baseline, not the plug-in, is wrong there
    ODD_ONE_OUT = "odd one out"  # the plug-in disagrees with references that agree
    REFERENCES = "references"  # whether the references agree among themselves
    LOCALISED = "localised"  # where, along the taps, the plug-in's error starts
    CASE_FAILED = "case failed"  # the case could not be built
    IDENTITY = "identity"  # an identity between the plug-in's modes is broken


# what the diagnostics read from the comparison's tables, as opposed to how the plug-in behaved
FROM_TABLES = frozenset(
    {
        Kind.DISAGREES,
        Kind.ODD_ONE_OUT,
        Kind.LOCALISED,
        Kind.PATTERN,
        Kind.FORWARD,
        Kind.BASELINE_ODD,
    }
)

# a line's mark: held against the plug-in, a caution that is not, or a plain note
BAD, CAUTION, NOTE = "✗", "!", "·"


@dataclass(frozen=True)
class Finding:
    """One finding of one case (and mode). ``template`` is a ``str.format`` string over the
    fields and ``facts``; ``bad``: it counts against the plug-in; ``caution``: it does
    not, but the user should weigh it (the references disagree among themselves)."""

    case: str
    kind: str  # a Kind, or a fault's kind
    template: str
    bad: bool
    tensor: str = ""
    backend: str = ""
    element: str = ""  # the worst element's index
    values: tuple[float, float] | None = None  # (got, expected) there
    first_bad: str = ""  # where, along the taps, the error starts: "t = 10", "s[3]"
    factor: float | None = None  # the one constant the plug-in is off by
    counts: tuple[int, int] | None = None  # (bad elements, elements)
    evidence: str = ""  # what it rests on: "faults", "agreement", "identities", "build"
    caution: bool = False
    short: str = ""  # the few words the selftest's table gives it, where it has them
    facts: dict[str, Any] = field(default_factory=dict)  # the template's other words

    @property
    def what(self) -> str:
        return str(self.kind)

    @property
    def text(self) -> str:
        """The finding's sentence."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "facts"}
        return self.template.format_map({**own, **self.facts})

    @property
    def mark(self) -> str:
        return BAD if self.bad else CAUTION if self.caution else NOTE

    def line(self) -> str:
        return f"  {self.mark} {self.case}: {self.text}"


__all__ = ["BAD", "CAUTION", "FROM_TABLES", "Finding", "Kind", "NOTE"]
