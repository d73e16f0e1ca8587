"""The jax-custom-vjp form: a function decorated with ``jax.custom_vjp``, its ``bwd``
called directly (``harness.validation.framework_stages``)."""

from __future__ import annotations

from typing import Any

from harness.validation.forms.custom_function import CustomFunction


class JaxCustomVJP(CustomFunction):
    name = "jax-custom-vjp"
    described = "a jax.custom_vjp function"
    takes = "a function decorated with jax.custom_vjp"

    def detects(self, obj: Any) -> bool:
        from harness.validation.framework_stages import is_jax_custom_vjp

        return is_jax_custom_vjp(obj)

    def stage_of(self, obj: Any) -> Any:
        from harness.validation.framework_stages import JaxCustomVJPStage

        return JaxCustomVJPStage(obj)
