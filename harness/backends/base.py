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
    """Subclasses set ``name`` and ``kind`` and implement ``run`` (reverse mode), and where
    they can, ``jvp`` (forward mode, along ``tangent`` u) and ``hvp`` (H·v, along
    ``vector`` v); see ``harness.modes``. A backend without one says NotApplicable.

    ``kind`` says what the backend is: "autodiff" for exact-derivative implementations,
    "numeric" for finite differences. The comparison reads the same fact from each
    Result's ``mode`` ("autodiff", or the finite-difference mode) to pick a tolerance row.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "autodiff"

    def run(self, case: Case, params: Arrays, inputs: Arrays, dtype: str) -> Result:
        raise NotImplementedError

    def jvp(
        self, case: Case, params: Arrays, inputs: Arrays, dtype: str, tangent: Arrays
    ) -> Result:
        """Mode "fwd": ``Result.tangent`` = J_L·u and ``taps`` = J_v·u per tap."""
        raise NotApplicable(f"{self.name} has no forward mode")

    def hvp(self, case: Case, params: Arrays, inputs: Arrays, dtype: str, vector: Arrays) -> Result:
        """Mode "hvp": ``Result.grads`` = H·v per parameter."""
        raise NotApplicable(f"{self.name} has no Hessian-vector product")

    def __repr__(self) -> str:
        return f"<backend {self.name}>"
