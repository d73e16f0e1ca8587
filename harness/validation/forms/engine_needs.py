"""Which array functions an engine needs for each catalog case, found by running the case
on a recording namespace (numpy underneath): the standard's functions it calls itself,
the extras it calls (``sigmoid``, ``logsumexp``, …: the engine's own where it has them),
and the standard's functions those extras are built from where it has not.

    python -m harness.validation.forms.engine_needs   # the README's table, regenerated
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import array_api_compat.numpy as np_xp

from harness.cases import CATALOG, Case
from harness.namespace import EXTRAS, Namespace

BUILDABLE = tuple(e for e in EXTRAS if e not in ("tap", "scan"))  # tap, scan: the harness's


@dataclass(frozen=True)
class Needs:
    """What one case calls on ``xp``, each set in the order first called."""

    case: str
    functions: tuple[str, ...]  # the standard's functions, called by the case itself
    extras: tuple[str, ...]  # the extras it calls
    building_blocks: tuple[str, ...]  # what those extras are built from, where not its own


class _Recorder:
    """The standard's namespace, noting each function asked for (into ``into``)."""

    def __init__(self, standard: Any, owner: RecordingNamespace) -> None:
        self._standard, self._owner = standard, owner

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            into = self._owner.blocks if self._owner.inside else self._owner.functions
            into.setdefault(name, None)
        return getattr(self._standard, name)


class RecordingNamespace(Namespace):
    """``xp`` on numpy that records what a case calls: the standard's functions, the
    extras, and the functions the extras are built from."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.functions: dict[str, None] = {}
        self.extras: dict[str, None] = {}
        self.blocks: dict[str, None] = {}
        self.inside = 0  # > 0 while an extra runs: what it calls builds it
        self.standard = _Recorder(np_xp, self)
        for extra in BUILDABLE:
            setattr(self, extra, self._recorded(extra, getattr(self, extra)))

    def _recorded(self, extra: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not self.inside:
                self.extras.setdefault(extra, None)
            self.inside += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self.inside -= 1

        return call


def needs(case: Case) -> Needs:
    """What ``case`` calls on ``xp``, from one run of its loss."""
    params, inputs = case.build(seed=0)
    xp = RecordingNamespace()
    case.loss(xp, params, inputs)
    return Needs(case.label, tuple(xp.functions), tuple(xp.extras), tuple(xp.blocks))


def catalog_needs() -> list[Needs]:
    """``needs`` of every catalog case, with its default options."""
    return [needs(make()) for make in CATALOG.values()]


def table(rows: list[Needs] | None = None) -> str:
    """The README's table: per case, what an engine must have."""

    def names(xs: tuple[str, ...]) -> str:
        return " ".join(f"`{x}`" for x in sorted(xs)) or "none"

    lines = [
        "| case | the standard's functions it calls | extras (the engine's own, or built "
        "from the functions after them) |",
        "| --- | --- | --- |",
    ]
    for n in rows if rows is not None else catalog_needs():
        extras = names(n.extras) + (f" ← {names(n.building_blocks)}" if n.building_blocks else "")
        lines.append(f"| `{n.case}` | {names(n.functions)} | {extras if n.extras else 'none'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
