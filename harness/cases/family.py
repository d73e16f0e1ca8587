"""What a case family declares, once, for the modules downstream of the cases.

A family is a kind of computation (a staged function, an MLP, an Elman, LSTM or GRU
unroll). The drift plot, the theory columns and the report's plots each need a fact
about it — is it an unroll over T steps, are its taps indexed by layer, which theory
states a bound for it — and read that fact here instead of naming families. A family
that is not declared (a user's case: "user") declares nothing.

The hand-derived backprop is not a family's: it follows one class's math, so a case
class declares it itself (``Case.manual``, ``harness.cases.manual_backprop``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """``unroll``: a recurrent unroll over ``T`` steps, its taps per step (the drift plot
    grows ``T``); ``layer_index``: its taps are per layer, indexed by this letter (the
    MLP's ``h[l]``), and plotted against it; ``theory``: the name of the theory in
    ``harness.theory.THEORIES`` that states how its gradients grow or decay (None: none
    is stated)."""

    name: str
    unroll: bool = False
    layer_index: str | None = None
    theory: str | None = None


# in the order cases are listed and run in
FAMILIES: dict[str, Family] = {}


def declare(family: Family) -> Family:
    """Add ``family`` to the declared ones (after those declared before it)."""
    FAMILIES[family.name] = family
    return family


def family_of(name: str) -> Family:
    """The declaration of family ``name``; an undeclared family declares nothing."""
    return FAMILIES.get(name) or Family(name)


STAGED = declare(Family("staged"))
MLP = declare(Family("mlp", layer_index="l", theory="mean-field"))
ELMAN = declare(Family("elman", unroll=True, theory="pascanu"))
LSTM = declare(Family("lstm", unroll=True))
GRU = declare(Family("gru", unroll=True))

__all__ = ["FAMILIES", "Family", "declare", "family_of"]
