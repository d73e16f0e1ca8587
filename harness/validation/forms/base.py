"""A plug-in form: one way of writing your own backprop that ``gradparity validate`` takes.

A form says four things, each in one place (its subclass, one module per form):

- what it is recognised by (``detects``) and the attributes it needs (``needs``);
- what the worker calls (``call``; ``calling`` where it depends on the mode asked for);
- which cases and references it is checked on (``checked_on``, ``references``; ``modes``:
  the derivatives it may supply; ``own_forward``: also against finite differences of its
  own forward; ``framework``: a framework's custom function, adapted to a custom stage);
- how a peer checker is handed it (``peer``: the kind of Pair ``harness.bench.peers``
  builds of it, None where the peers take no such form; ``for_peer``: the object it is
  built from).

The registry (``harness.validation.forms.FORMS``) lists them in the order they are tried
on an object; the CLI, the pytest option, the validator, the worker, the peers and the
zoo read it. The worker imports every form (``detects``, ``adapt``, ``call``): a form
module imports numpy and nothing heavy, and what only the parent needs (``checked_on``,
``references``: the stage catalog, the cases) is imported where it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

Problem = dict[str, Any]  # a fault of the plug-in as a whole: {"fault_name", "message", …}
Resolve = Callable[[list | None], list]  # case names or patterns -> Cases (None: the catalog)


class NeedCases(ValueError):
    """A model plug-in without cases: it fits one case's parameters (bad usage)."""


def type_name(x: Any) -> str:
    """The type of ``x`` as a message names it: ``dict``, ``torch.Tensor``."""
    t = type(x)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


class Form:
    """One plug-in form (subclass it, and add an instance to the registry)."""

    name: ClassVar[str]
    described: ClassVar[str]  # how "… is neither …" names it: "a callable (model)"
    needs: ClassVar[tuple[str, ...]] = ()  # attributes it must have (checked after loading)
    modes: ClassVar[tuple[str, ...]] = ("rev",)  # the derivatives it may supply
    may_lack: ClassVar[bool] = False  # runs a case's math on its functions: may lack one
    own_forward: ClassVar[bool] = False  # also checked against FD of its own forward
    framework: ClassVar[bool] = False  # a framework's custom function, as a custom stage
    peer: ClassVar[str | None] = None  # the kind of Pair the peers build of it

    def detects(self, obj: Any) -> bool:
        """Is ``obj`` written in this form? (The first form in the registry that says yes.)"""
        raise NotImplementedError

    def adapt(self, obj: Any) -> Any:
        """What the worker calls, once loaded: the object itself, or an adapter of it."""
        return obj

    def has_example_inputs(self, obj: Any) -> bool:
        """Does it bring the arrays it runs on (a custom stage's ``inputs(rng)``)?"""
        return False

    def call(self, obj: Any, case: Any, params: dict, inputs: dict) -> Any:
        """One call of the plug-in on a case (in the worker): what it returned."""
        raise NotImplementedError

    def calling(
        self, obj: Any, mode: str, modes: tuple[str, ...], direction: Any
    ) -> tuple[Any, Any, str]:
        """(what is called, the call, "") for ``mode``; (None, None, why) where the plug-in
        supplies no such derivative (the case is then skipped, not failed)."""
        return obj, self.call, ""

    def checked_on(
        self,
        info: dict,
        cases: list | None,
        problem: Problem | None,
        target: str,
        resolve: Resolve,
    ) -> tuple[list, Problem | None]:
        """(the cases it runs on, the problem that stops it, if any), from what its worker
        said on loading it (``info``) and the cases asked for: by default those, or the
        plug-in's own ``cases``, or the whole catalog."""
        return named_cases(info, cases, problem, resolve), problem

    def references(self, info: dict, references: list[str], chosen: list, notes: list[str]):
        """The references it is held against, of those asked for (a note says why where
        one is left out)."""
        return references

    def for_peer(self, obj: Any, mode: str) -> Any:
        """The object a peer's Pair is built from (a class is instantiated)."""
        return obj() if isinstance(obj, type) else obj

    def __repr__(self) -> str:
        return f"<form {self.name}>"


def named_cases(info: dict, cases: list | None, problem: Problem | None, resolve: Resolve) -> list:
    """The cases asked for, else the plug-in's own ``cases``, else the catalog; where the
    plug-in did not load and none was named, none (one fault row, not one per case)."""
    wanted = list(cases or []) or list(info.get("cases") or [])
    return resolve(wanted or None) if wanted or problem is None else []
