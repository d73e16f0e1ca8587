"""A framework's custom function (``torch-function``, ``jax-custom-vjp``) as a form: the
function is adapted to a custom stage (``harness.validation.framework_stages``) and from then
on called, checked and handed to the peers as one. Its inputs come from a case of the
user's (``--case``) or from its own ``inputs(rng)``."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.validation.forms.stage import Stage, custom_stage_case


def has_inputs(stage: Any) -> bool:
    """Does a framework function bring example inputs (``inputs(rng)``) of its own?"""
    function = getattr(stage, "function", None)
    return callable(getattr(function, "inputs", None)) or callable(
        getattr(getattr(function, "fun", None), "inputs", None)
    )


class CustomFunction(Stage):
    """The shared part of the framework forms; a subclass names the framework's test."""

    needs: ClassVar[tuple[str, ...]] = ()
    framework = True
    takes: ClassVar[str]  # what ``--as NAME`` takes, as its error says

    def stage_of(self, obj: Any) -> Any:
        """The custom stage that stands for the function (``harness.validation.framework_stages``)."""
        raise NotImplementedError

    def adapt(self, obj: Any) -> Any:
        """The function as a custom stage; a TypeError that says what was expected."""
        from harness.validation.framework_stages import JaxCustomVJPStage, TorchFunctionStage

        if isinstance(obj, (TorchFunctionStage, JaxCustomVJPStage)):  # adapted already
            return obj
        if not self.detects(obj):
            raise TypeError(f"--as {self.name} takes {self.takes}, not {obj!r}")
        return self.stage_of(obj)

    def has_example_inputs(self, obj: Any) -> bool:
        return getattr(obj, "stage", None) == "custom" and has_inputs(obj)

    def for_peer(self, obj: Any, mode: str) -> Any:
        return self.adapt(obj)

    def checked_on(self, info, cases, problem, target, resolve):
        """The cases named (a plain forward of the same math, by argument name), each as a
        stage of it; else one custom stage on the function's own ``inputs(rng)``."""
        from harness.validation.stage_cases import StageVjpCase, UserCaseVjpCase

        user_cases = resolve(cases) if cases and problem is None else []
        if problem is None and not user_cases and "arrays" not in info:
            problem = {
                "fault_name": "missing attribute",
                "message": f"{target} needs inputs to run "
                "on: name a case that computes the same math (--case, its parameters "
                "and inputs named as the function's arguments) or give the function an "
                "inputs(rng) static method",
            }
        if user_cases:
            names = tuple(info["names"])
            return [UserCaseVjpCase(c, names, info.get("smooth")) for c in user_cases], problem
        if problem is None:
            return [custom_stage_case(info)], problem
        return [StageVjpCase("custom", names=tuple(info.get("names") or ()), smooth=True)], problem

    def references(self, info, references, chosen, notes):
        """Those asked for on a case of the user's; else none (finite differences of its
        own forward are the one reference)."""
        from harness.validation.stage_cases import UserCaseVjpCase

        return references if any(isinstance(c, UserCaseVjpCase) for c in chosen) else []
