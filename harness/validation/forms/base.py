"""A plug-in form: one way of writing your own backprop that ``gradparity validate`` takes.

A form says four things, each in one place (its subclass, one module per form):

- what it is recognised by (``detects``) and the attributes it needs (``needs``);
- what the worker calls (``call``; ``calling`` where it depends on the mode asked for);
- which cases and references it is checked on (``modes``: the derivatives it may supply;
  ``own_forward``: also against finite differences of its own forward; ``framework``: a
  framework's custom function, adapted to a custom stage, its cases the user's);
- how a peer checker is handed it (``peer``: the kind of Pair ``harness.bench.peers``
  builds of it, None where the peers take no such form; ``for_peer``: the object it is
  built from).

The registry (``harness.validation.forms.FORMS``) lists them in the order they are tried
on an object; the CLI, the pytest option, the validator, the worker, the peers and the
zoo read it. Everything here runs in the plug-in's worker too: numpy and nothing heavy.
"""

from __future__ import annotations

from typing import Any, ClassVar


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

    def for_peer(self, obj: Any, mode: str) -> Any:
        """The object a peer's Pair is built from (a class is instantiated)."""
        return obj() if isinstance(obj, type) else obj

    def __repr__(self) -> str:
        return f"<form {self.name}>"
