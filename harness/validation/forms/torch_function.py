"""The torch-function form: a ``torch.autograd.Function`` subclass, its backward called
directly with a context of gradparity's (``harness.validation.frameworks``)."""

from __future__ import annotations

from typing import Any

from harness.validation.forms.custom_function import CustomFunction


class TorchFunction(CustomFunction):
    name = "torch-function"
    described = "a torch.autograd.Function"

    def detects(self, obj: Any) -> bool:
        from harness.validation.frameworks import is_torch_function

        return is_torch_function(obj)
