"""What a backend is: something that runs a Case and returns a Result, and prepares the
loss and its gradient of a Case for the bench to time (``Prepared``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.cases.base import Arrays, Case
from harness.result import Result

CHAIN_START = 0.5  # the one element the per-op chain (``Backend.prepare_chain``) starts from


class BackendUnavailable(RuntimeError):
    """The framework a backend needs is not installed (the message says how to get it)."""


class NotApplicable(Exception):
    """This backend has nothing to say about this case (e.g. no hand-derived backward)."""


@dataclass
class Prepared:
    """One backend's loss and gradient of one case, as ``gradparity bench`` times them: two
    zero-argument callables, built once per case.

    - ``objective()``: the loss alone, computed the way the backend computes it without
      recording anything for a gradient.
    - ``gradient()``: the loss and its gradient with respect to every parameter.

    Taps are off in both (a tap is gradparity's instrumentation, not part of the loss's
    gradient). GPU work is finished before a callable returns.
    """

    objective: Callable[[], Any]
    gradient: Callable[[], Any]
    compile_s: float = math.nan  # jax: compiling loss + gradient
    objective_compile_s: float = math.nan  # jax: compiling the loss alone
    memory_bytes: float = math.nan  # jax: XLA's own count of the gradient's buffers
    record: Callable[[], Any] | None = None  # numpy backends: the forward, keeping what
    # the backward will need (the tape's graph, manual's cache), returned to hold it alive


class Untapped:
    """Mixed in before a backend's namespace: a tap is the value itself and records
    nothing, so that what runs is the loss (and its gradient) alone."""

    def _watch(self, name, x, step):
        return x


class Backend:
    """Subclasses set ``name`` and ``derivation`` and implement ``gradient`` (reverse mode),
    and where they can, ``jvp`` (forward mode, along ``tangent`` u) and ``hvp`` (H·v, along
    ``vector`` v); see ``harness.modes``. A backend without one says NotApplicable.
    ``prepare`` is the same computation, taps off, as the bench times it (``Prepared``);
    ``prepare_chain``, the bench's chain of one-element operations, in the backend's way.

    ``derivation`` says how the backend derives: "autodiff" for exact-derivative
    implementations, "numeric" for finite differences. The comparison reads the same fact
    from each Result's ``obtained_by`` ("autodiff", or the finite differences' way) to pick a
    tolerance row.
    """

    name: ClassVar[str]
    derivation: ClassVar[str] = "autodiff"
    gpu: ClassVar[bool] = False  # whether ``prepare`` takes a device other than "cpu"

    def gradient(self, case: Case, params: Arrays, inputs: Arrays, dtype: str) -> Result:
        raise NotImplementedError

    def jvp(
        self, case: Case, params: Arrays, inputs: Arrays, dtype: str, tangent: Arrays
    ) -> Result:
        """Mode "fwd": ``Result.tangent`` = J_L·u and ``taps`` = J_v·u per tap."""
        raise NotApplicable(f"{self.name} has no forward mode")

    def hvp(self, case: Case, params: Arrays, inputs: Arrays, dtype: str, vector: Arrays) -> Result:
        """Mode "hvp": ``Result.grads`` = H·v per parameter."""
        raise NotApplicable(f"{self.name} has no Hessian-vector product")

    def prepare(self, case: Case, params: Arrays, inputs: Arrays, device: str = "cpu") -> Prepared:
        """The loss and the gradient of ``case`` as two callables to time (``Prepared``),
        on ``device`` ("cpu", or a GPU where ``gpu`` is set)."""
        raise NotApplicable(f"{self.name} prepares nothing to time")

    def prepare_chain(self, n_ops: int, device: str = "cpu") -> Prepared:
        """The per-operation overhead's workload, as the bench times it: tanh applied
        ``n_ops`` times to one float64 element (0.5), eagerly, op by op; ``objective()``
        the value, ``gradient()`` its derivative (``harness.bench.costs``)."""
        raise NotApplicable(f"{self.name} prepares no chain of operations")

    def __repr__(self) -> str:
        return f"<backend {self.name}>"
