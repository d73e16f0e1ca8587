"""Numbers in words, for the findings the console, the report and the diagnostics print:
two values to the digits where they part, a row's worst element, a list of names; and the
Finding: one thing found, as data. A finding carries its facts (its topic, the tensor, the
worst element and its values, where an error starts in the taps, a constant factor, the
counts, the evidence it rests on) and renders its sentence from a template over them;
code that needs to know what was found reads the fields, never the sentence."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


def parting_digits(got: float, expected: float) -> int:
    """The significant digits it takes to see two numbers part: at least 6, at most 17."""
    return next((p for p in range(6, 18) if f"{got:.{p}g}" != f"{expected:.{p}g}"), 17)


def parted(got: float, expected: float) -> str:
    """ "got …, expected …" with the digits it takes to see where the two part, and their
    difference."""
    if not (math.isfinite(got) and math.isfinite(expected)) or got == expected:
        return f"got {got:.6g}, expected {expected:.6g}"
    p = parting_digits(got, expected)
    return f"got {got:.{p}g}, expected {expected:.{p}g} (off by {got - expected:.2g})"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 case", "2 cases", "0 cases"; ``plural`` where adding an s is wrong
    ("broken identities")."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def listing(names: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b and c'."""
    return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]])) if names else ""


def worst_at(row: Any) -> str:
    """ "worst at (4, 1): got …, expected … (off by …), 1.17e+00 of the scale 0.394": the
    element a row names as its worst (``compare_arrays``), its values to the digits where
    they part, and its own error relative to its scale, |got − expected| / scale — the
    numbers on the line give one another."""
    return (
        f"worst at {row['worst_index']}: {parted(row['worst_got'], row['worst_expected'])}, "
        f"{row['worst_rel_err']:.2e} of the scale {row['worst_scale']:.3g}"
    )


class Topic(StrEnum):
    """What a finding is about, where it is not one of the plug-in's faults (a fault's
    finding's topic is the fault's name, ``harness.validation.faults.FAULT_MEANINGS``)."""

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
    # the console's, over a whole run
    RUN_FAILED = "run failed"  # a backend's run failed: the tensors it left, said once
    FAILED = "failed"  # a tensor not compared, for a reason of its own
    WITHIN_NOISE = "within noise"  # a case's tensors agree within the problem's noise
    IDENTITIES_HELD = "identities held"  # how many identities held
    UNSUPPORTED = "unsupported"  # a backend lacks a function some cases need
    SKIPPED = "skipped"  # a backend does not apply to some cases


# a line's mark: held against the plug-in, a caution that is not, or a plain note
BAD, CAUTION, NOTE = "✗", "!", "·"


@dataclass(frozen=True)
class Finding:
    """One finding of one case (and mode). ``template`` is a ``str.format`` string over the
    fields and ``facts``; ``bad``: it counts against the plug-in; ``caution``: it does
    not, but the user should weigh it (the references disagree among themselves)."""

    case: str
    topic: str  # a Topic, or a fault's name
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
    mode: str = "rev"  # the derivative it is about (``harness.modes``), named beside the case
    sign: str | None = None  # the line's mark where not its own: a verdict's; "" for none

    @property
    def what(self) -> str:
        return str(self.topic)

    @property
    def text(self) -> str:
        """The finding's sentence."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "facts"}
        return self.template.format_map({**own, **self.facts})

    @property
    def mark(self) -> str:
        if self.sign is not None:
            return self.sign
        return BAD if self.bad else CAUTION if self.caution else NOTE

    @property
    def label(self) -> str:
        """The case, with its mode where that is not reverse: "lstm (fwd)"."""
        return self.case if self.mode == "rev" else f"{self.case} ({self.mode})"

    def line(self) -> str:
        """ "  ✗ case: sentence"; without a case (about a backend, or the whole run), the
        sentence alone after the mark."""
        head = f"{self.mark} " if self.mark else ""
        return f"  {head}{self.label + ': ' if self.case else ''}{self.text}"
