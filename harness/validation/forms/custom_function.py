"""A framework's custom function (``torch-function``, ``jax-custom-vjp``) as a form: the
function is adapted to a custom stage (``harness.validation.frameworks``) and from then
on called, checked and handed to the peers as one. Its inputs come from a case of the
user's (``--case``) or from its own ``inputs(rng)``."""

from __future__ import annotations

from typing import Any

from harness.validation.forms.stage import Stage


def has_inputs(stage: Any) -> bool:
    """Does a framework function bring example inputs (``inputs(rng)``) of its own?"""
    function = getattr(stage, "function", None)
    return callable(getattr(function, "inputs", None)) or callable(
        getattr(getattr(function, "fun", None), "inputs", None)
    )


class CustomFunction(Stage):
    """The shared part of the framework forms; a subclass names the framework's test."""

    needs = ()
    framework = True

    def adapt(self, obj: Any) -> Any:
        from harness.validation.frameworks import JaxCustomVJPStage, TorchFunctionStage, adapt

        if isinstance(obj, (TorchFunctionStage, JaxCustomVJPStage)):  # adapted already
            return obj
        return adapt(obj, self.name)

    def has_example_inputs(self, obj: Any) -> bool:
        return getattr(obj, "stage", None) == "custom" and has_inputs(obj)

    def for_peer(self, obj: Any, mode: str) -> Any:
        return self.adapt(obj)
