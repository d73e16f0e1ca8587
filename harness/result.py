"""What a backend returns: plain numpy data, nothing framework-specific."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

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
class Result:
    """One backend's answer for one case.

    ``grads`` holds dL/dθ per parameter; ``taps`` holds dL/dv per tapped value, stacked
    along a leading step axis for taps made inside a scan (``tap_steps[name]`` = T,
    ``None`` for a tap outside any scan). ``uncertainty`` (finite differences only) is an
    estimated bound on the error of each element, keyed like ``tensors()``. ``error`` is set when the backend
    failed on the case; ``skipped`` when the backend does not apply to it. In ``mode``
    "directional" (finite differences on a large case) ``grads`` and ``taps`` are empty
    and ``directional`` holds, per tensor, derivatives along random directions.
    """

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
    mode: str = "autodiff"
    error: str | None = None
    skipped: str | None = None
    unsupported: str | None = None  # the function the backend or engine lacks, named

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None and self.unsupported is None

    def tensors(self) -> dict[tuple[str, str], np.ndarray]:
        """Every compared tensor keyed by (kind, name): the loss, each grad, each tap."""
        out: dict[tuple[str, str], np.ndarray] = {("loss", "loss"): np.asarray(self.loss)}
        out.update({("param", k): v for k, v in self.grads.items()})
        out.update({("tap", k): v for k, v in self.taps.items()})
        return out
