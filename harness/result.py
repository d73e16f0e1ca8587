"""What a backend returns: plain numpy data, nothing framework-specific."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

DEFAULT_BASELINE = "torch"  # the backend the others are compared against unless told otherwise
BUILD = "(case)"  # the backend name of the one failed Result of a case that could not be built


@dataclass
class Directional:
    """Directional derivatives of the loss along k unit directions v_j of one tensor:
    ``values[j]`` ≈ ⟨dL/dθ, v_j⟩ with error estimate ``errors[j]``; ``directions`` has
    shape (k, *tensor shape)."""

    directions: np.ndarray
    values: np.ndarray
    errors: np.ndarray


@dataclass
class Identity:
    """One backend's two modes held against each other (``harness.modes``): ``lhs`` and
    ``rhs`` are equal in exact arithmetic; ``scale`` is the sum of the magnitudes of the
    terms that make them, the size their rounding is relative to."""

    name: str  # "transpose" (fwd against rev) or "symmetry" (H·v against H·w)
    lhs: float
    rhs: float
    scale: float


@dataclass
class Result:
    """One backend's answer for one case, in one mode (``harness.modes``).

    ``grads`` holds dL/dθ per parameter; ``taps`` holds dL/dv per tapped value, stacked
    along a leading step axis for taps made inside a scan (``tap_steps[name]`` = T,
    ``None`` for a tap outside any scan). ``uncertainty`` (finite differences only) is an
    estimated bound on the error of each element, keyed like ``tensors()``. ``error`` is set when the backend
    failed on the case; ``skipped`` when the backend does not apply to it. In ``mode``
    "directional" (finite differences on a large case) ``grads`` and ``taps`` are empty
    and ``directional`` holds, per tensor, derivatives along random directions.

    Two facts keep a tensor from its comparison, each keyed by (kind, name) as in
    ``tensors()``: ``withheld``, what the backend chose not to report (a plug-in's tap, its
    loss), which has no row; ``uncompared``, a tensor whose answer was faulty before any
    comparison (``harness.validation.faults.UNCOMPARED``: missing, not an array, of the
    wrong shape, not finite), whose row fails with that fault as its error.

    ``mode`` says which derivative the tensors are: "rev", the gradient (above); "fwd",
    the tangents along the case's direction u — ``tangent`` = J_L·u = ⟨∇L, u⟩ and
    ``taps[name]`` = J_name·u, the change of the tapped value; "hvp", ``grads[name]`` =
    (H·v)_name, the loss's Hessian times the case's direction v. ``loss`` is the loss
    itself in every mode; ``identity``, the backend's own modes held together.
    """

    judged: ClassVar[bool] = False  # the answer under judgement (a plug-in's): never a baseline
    # a derivation of its own (every backend's): False for an oracle of the plug-in's own
    # forward, which agrees with the plug-in's backward whenever the two are consistent,
    # and so never outvotes a reference (``harness.compare.pairs.odd_one_out``)
    independent: ClassVar[bool] = True
    case: str
    backend: str
    dtype: str
    loss: float = math.nan
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    taps: dict[str, np.ndarray] = field(default_factory=dict)
    tap_steps: dict[str, int | None] = field(default_factory=dict)
    uncertainty: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    directional: dict[tuple[str, str], Directional] = field(default_factory=dict)
    noise: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # see harness.noise
    seconds: float = math.nan
    compile_seconds: float = math.nan
    obtained_by: str = "autodiff"  # or the finite differences': "elementwise", "directional"
    mode: str = "rev"  # "rev", "fwd" or "hvp": which derivative (harness.modes)
    tangent: float = math.nan  # mode "fwd": J_L·u
    identity: Identity | None = None
    smooth: bool = True  # the case's loss has no kinks (``Case.smooth``): H·v exists everywhere
    error: str | None = None
    skipped: str | None = None
    unsupported: str | None = None  # the function the backend or engine lacks, named
    withheld: dict[tuple[str, str], str] = field(default_factory=dict)  # key -> why: no row
    uncompared: dict[tuple[str, str], str] = field(default_factory=dict)  # key -> its fault

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None and self.unsupported is None

    def tensors(self) -> dict[tuple[str, str], np.ndarray]:
        """Every compared tensor keyed by (kind, name): the loss, each grad, each tap — in
        mode "fwd" the loss's tangent and each tap's, in mode "hvp" each (H·v)_param."""
        if self.mode == "hvp":
            return {("param", k): v for k, v in self.grads.items()}
        loss = self.tangent if self.mode == "fwd" else self.loss
        out: dict[tuple[str, str], np.ndarray] = {("loss", "loss"): np.asarray(loss)}
        out.update({("param", k): v for k, v in self.grads.items()})
        out.update({("tap", k): v for k, v in self.taps.items()})
        return out
