"""The torch-function form: a ``torch.autograd.Function`` subclass, its backward called
directly with a context of gradparity's (``harness.validation.framework_stages``)."""

from __future__ import annotations

from typing import Any

from harness.validation.forms.custom_function import CustomFunction


class TorchFunction(CustomFunction):
    name = "torch-function"
    described = "a torch.autograd.Function"
    takes = "a torch.autograd.Function subclass"

    def detects(self, obj: Any) -> bool:
        from harness.validation.framework_stages import is_torch_function

        return is_torch_function(obj)

    def stage_of(self, obj: Any) -> Any:
        from harness.validation.framework_stages import TorchFunctionStage

        return TorchFunctionStage(obj)
