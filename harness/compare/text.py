"""Numbers in words, for the findings the console, the report and the diagnostics print:
two values to the digits where they part, a row's worst element, a list of names."""

from __future__ import annotations

import math
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
