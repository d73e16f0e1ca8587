"""The three derivatives gradparity compares, and the identities that tie each backend's
modes together.

- ``rev``, reverse mode: the gradient ∇L (and dL/dv per tap): the cotangent 1 of the
  loss pulled back, ∇L = Jᵀ·1, every direction at once.
- ``fwd``, forward mode: the tangents along one seeded direction u of the parameters:
  J_L·u = ⟨∇L, u⟩ for the loss and J_v·u = d/dε v(θ + ε·u) per tapped value v.
- ``hvp``, second order: H·v = ∇_θ⟨∇L(θ), v⟩ along one seeded direction v.

The directions are random, unit-norm over all parameters together, and seeded by the
case's label and the run's seed, so every backend (and every run) sees the same ones.

Each autodiff backend is also held against itself:

    transpose   ⟨1, J_L·u⟩ = ⟨Jᵀ·1, u⟩:  its forward mode's J_L·u against its own
                gradient projected on u (HIPS autograd's check of a JVP against a VJP);
    symmetry    ⟨w, H·v⟩ = ⟨v, H·w⟩:    its H·v against its H·w, a second direction w.

Both sides are the same number in exact arithmetic; in floating point each is a sum of
terms whose magnitudes add to ``scale`` (Σ_i |g_i u_i| for ⟨g, u⟩), and rounding moves a
sum by about ε·scale. An identity holds when |lhs − rhs| ≤ rtol·scale + tiny/ε, rtol the
autodiff row of ``harness.tolerances`` (1e-10 in float64, 1e-4 in float32): the same
margin over the dtype's rounding that the tensors are judged with. A backend that breaks
an identity has a forward mode and a reverse mode (or an H·v) that cannot both be right:
it is named, and the run fails.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

from harness.result import Identity
from harness.tolerances import tolerance_for

MODES = ("rev", "fwd", "hvp")
DEFAULT_MODES = ("rev",)
NO_SECOND = "the loss has kinks (relu): its second derivative does not exist at them"


class UnknownMode(ValueError):
    pass


def parse_modes(values: Iterable[str] | None) -> tuple[str, ...]:
    """``["fwd,hvp", "rev"]`` -> ("rev", "fwd", "hvp"), in MODES' order; None: ("rev",)."""
    chosen: list[str] = []
    for value in values or []:
        for mode in (m.strip() for m in str(value).split(",")):
            if mode not in MODES:
                raise UnknownMode(f"no mode {mode!r}; modes: {', '.join(MODES)} (several: fwd,hvp)")
            chosen.append(mode)
    return tuple(m for m in MODES if m in chosen) or DEFAULT_MODES


def direction(
    label: str, seed: int, params: dict[str, np.ndarray], which: str
) -> dict[str, np.ndarray]:
    """A random direction over the parameters, unit norm over all of them together, the
    same for every backend: seeded by the case ``label``, the run's ``seed`` and ``which``
    ("u" for fwd, "v" and "w" for hvp); each array in its parameter's dtype."""
    rng = np.random.default_rng([seed, zlib.crc32(label.encode()), zlib.crc32(which.encode())])
    raw = {k: rng.standard_normal(np.shape(p)) for k, p in params.items()}
    norm = float(np.sqrt(sum(float(np.sum(r * r)) for r in raw.values()))) or 1.0
    return {k: (r / norm).astype(np.asarray(params[k]).dtype) for k, r in raw.items()}


def dot(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[float, float]:
    """(Σ_k ⟨a_k, b_k⟩, Σ_k Σ_i |a_ki b_ki|): the inner product over the parameters, and
    the sum of its terms' magnitudes, in float64."""
    value = scale = 0.0
    for k in b:
        x = np.asarray(a[k], dtype=np.float64).ravel()
        y = np.asarray(b[k], dtype=np.float64).ravel()
        value += float(x @ y)
        scale += float(np.abs(x) @ np.abs(y))
    return value, scale


def transpose(tangent: float, grads: dict[str, np.ndarray], u: dict[str, np.ndarray]) -> Identity:
    """⟨1, J_L·u⟩ (``tangent``, forward mode) against ⟨∇L, u⟩ (``grads``, reverse mode)."""
    value, scale = dot(grads, u)
    return Identity("transpose", float(tangent), value, max(scale, abs(float(tangent))))


def symmetry(hv: dict, hw: dict, v: dict, w: dict) -> Identity:
    """⟨w, H·v⟩ against ⟨v, H·w⟩."""
    lhs, s1 = dot(hv, w)
    rhs, s2 = dot(hw, v)
    return Identity("symmetry", lhs, rhs, max(s1, s2))


def judge(identity: Identity, dtype: str, tolerances: dict | None = None) -> dict:
    """The identity's row: its relative error |lhs − rhs| / scale, the tolerance, and
    whether it holds (``ok``; the comparison turns that into the row's verdict)."""
    rtol = tolerance_for("autodiff", "autodiff", dtype, tolerances).rtol
    tiny = float(np.finfo(dtype).tiny / np.finfo(dtype).eps)
    diff = abs(identity.lhs - identity.rhs)
    finite = np.isfinite(identity.lhs) and np.isfinite(identity.rhs)
    ok = finite and diff <= rtol * identity.scale + tiny
    rel = diff / identity.scale if identity.scale > 0 else (0.0 if diff == 0 else np.inf)
    return {
        "identity": identity.name,
        "lhs": identity.lhs,
        "rhs": identity.rhs,
        "scale": identity.scale,
        "rel_err": rel if finite else np.nan,
        "rtol": rtol,
        "ok": bool(ok),
    }


__all__ = [
    "DEFAULT_MODES",
    "MODES",
    "NO_SECOND",
    "UnknownMode",
    "direction",
    "dot",
    "judge",
    "parse_modes",
    "symmetry",
    "transpose",
]
