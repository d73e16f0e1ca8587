"""What a backend is: something that runs a Case and returns a Result."""

from __future__ import annotations

from typing import ClassVar

from harness.cases.base import Arrays, Case
from harness.result import Result


class BackendUnavailable(RuntimeError):
    """The framework a backend needs is not installed (the message says how to get it)."""


class NotApplicable(Exception):
    """This backend has nothing to say about this case (e.g. no hand-derived backward)."""


class Backend:
    """Subclasses set ``name`` and ``kind`` and implement ``run``.

    ``kind`` picks the tolerance row: "autodiff" for exact-derivative implementations,
    "numeric" for finite differences.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "autodiff"

    def run(self, case: Case, params: Arrays, inputs: Arrays, dtype: str) -> Result:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<backend {self.name}>"
