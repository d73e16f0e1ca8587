"""One tensor computed in bfloat16 or float16, judged against what that precision allows.
Pure numpy.

Three tensors of the same shape come in:

- ``got``, g: the implementation under test (a fused kernel, say), run in the low dtype;
- ``truth``, r: float64 references on exactly the same quantized inputs, upcast, so no
  error of quantizing the inputs enters the comparison;
- ``baseline``, b: the same math run eagerly in the low dtype, what a straightforward
  implementation in this precision gets.

With e = g − r, e_b = b − r, and the rounding floor e_r = fl(r) − r (the truth rounded once
to the dtype: no implementation that returns the dtype does better), let
σ = max(rms(e_b), rms(e_r), u·rms(r)/√3) be the error scale of the problem in this dtype
(the last term, what one rounding of values of this size costs, u the unit roundoff, keeps
σ above zero where the truth happens to be exact in the dtype). Where the stick itself
breaks (an eager baseline that is not finite, a truth beyond the dtype's range) nothing
is judged and ``unjudged`` says why: never ok, never the implementation's fault. Three
tests:

- **magnitude**: ρ = rms(e) / σ ≤ K_MAGNITUDE. Measured on the CPU (torch 2.13,
  ``scaled_dot_product_attention``'s flash kernel against the eager math, B·H·S·D from
  1·2·64·16 to 1·2·512·128, 3 seeds, bfloat16 and float16): ρ ≤ 0.75; an implementation
  as accurate as the eager baseline has ρ = 1. K_MAGNITUDE = 2 passes what is as good as
  eager with a factor 2 to spare, and fails a missing term (ρ in the hundreds).
- **elements**: |e_i| > K_ELEMENT · λ_i, with λ_i = max(|e_b,i|, t·σ) and t = √(2 ln n)
  (the expected largest of n Gaussian errors, in units of their rms: the tail a large
  tensor has by chance). An element is held to the baseline's own error there, or to the
  tensor's typical error where the baseline happens to be close. Measured as above:
  max_i |e_i| / λ_i ≤ 3.8 on correct kernels; K_ELEMENT = 8. One element off by 5 % of
  the tensor's scale is 20–400 λ away: found, and named by index.
- **bias**: c = ⟨g, r⟩ / ⟨r, r⟩, the least-squares factor of g on the truth. Rounding
  moves c − 1 by about σ/‖r‖ if the errors are independent; they are not quite, so the
  noise of c is ν = max(σ/‖r‖, |c_b − 1|), the baseline's own factor included. Flagged
  where |c − 1| > K_BIAS · ν. Measured as above: |c − 1| ≤ 4.0 ν on correct kernels
  (|c_b − 1| up to 20 σ/‖r‖: correlated rounding); K_BIAS = 10. A scale error of 2⁻⁸ on a
  bfloat16 tensor of 131k elements is ≈ 80 ν: caught, though its ρ is ≈ 1.3 and no
  max- or norm-based rule sees it (measured on an H200 with torch 2.11 at B=2, H=8,
  S=1024, D=64: fused attention backwards keep |c − 1| ≤ 2e-5 in bfloat16 while
  dq·(1 + 2⁻⁸) gives 5.6e-3; the CPU's flash kernel here gives the same 5.6e-3).

The smallest bias it can see is K_BIAS · ν: on a small tensor that may be larger than a
bias one cares about, and ``bias_resolution`` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.precision import LOW_PRECISION, UNIT_ROUNDOFF, rounded

K_MAGNITUDE = 2.0
K_ELEMENT = 8.0
K_BIAS = 10.0
SHOWN = 5  # elements beyond named by index, at most


def _rms(x: np.ndarray) -> float:
    scale = float(np.max(np.abs(x), initial=0.0))
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    return scale * float(np.sqrt(np.mean((x / scale) ** 2)))


def _factor(x: np.ndarray, truth: np.ndarray, norm2: float) -> float:
    """⟨x, r⟩ / ⟨r, r⟩ − 1, computed on r / max|r| (no underflow for tiny gradients)."""
    return float(np.sum(x * truth) / norm2) - 1.0 if norm2 > 0 else math.nan


@dataclass(frozen=True)
class LowPrecision:
    """The facts of one tensor (module docstring): errors as rms and worst |e|, the
    elements beyond (count, the first few indices), the bias factors and their noise."""

    dtype: str
    size: int
    rms_error: float  # rms(e)
    rms_error_baseline: float  # rms(e_b)
    rms_rounding: float  # rms(fl(r) − r)
    worst_error: float  # max |e|
    worst_error_baseline: float  # max |e_b|
    worst_index: tuple[int, ...]  # the element furthest beyond its λ_i
    magnitude: float  # ρ = rms(e) / σ
    beyond: int  # elements of the implementation beyond K_ELEMENT · λ_i
    beyond_index: tuple[tuple[int, ...], ...]  # the first SHOWN of them, in index order
    beyond_baseline: int  # elements of the baseline beyond K_ELEMENT · t·σ: its own tail
    bias: float  # c − 1 (nan where the truth is zero)
    bias_baseline: float  # c_b − 1
    bias_noise: float  # ν
    unjudged: str = ""  # why nothing could be judged (the measuring stick broke), or ""

    @property
    def magnitude_ok(self) -> bool:
        return self.magnitude <= K_MAGNITUDE

    @property
    def elements_ok(self) -> bool:
        return self.beyond == 0

    @property
    def bias_ok(self) -> bool:
        return not abs(self.bias) > K_BIAS * self.bias_noise  # nan: nothing to measure

    @property
    def bias_resolution(self) -> float:
        """The smallest |c − 1| flagged on this tensor: K_BIAS · ν."""
        return K_BIAS * self.bias_noise

    @property
    def ok(self) -> bool:
        return not self.unjudged and self.magnitude_ok and self.elements_ok and self.bias_ok

    @property
    def accuracy(self) -> float:
        """rms(e) / rms(fl(r) − r): how far from the best the dtype allows (1 is the
        truth rounded once); beside ``accuracy_baseline``, where it sits."""
        return self.rms_error / self.rms_rounding if self.rms_rounding > 0 else math.nan

    @property
    def accuracy_baseline(self) -> float:
        return self.rms_error_baseline / self.rms_rounding if self.rms_rounding > 0 else math.nan


def judge_low_precision(got: Any, baseline: Any, truth: Any, dtype: str) -> LowPrecision:
    """The facts of ``got`` against ``truth`` and ``baseline`` in ``dtype`` ("bfloat16" or
    "float16"); the tensors of one shape, any float dtype (they are upcast). ``baseline``
    may be a list of several straightforward runs (torch's and jax's eager): their
    envelope is the measure, element by element the largest error of any of them, and
    their largest rms error and bias."""
    if dtype not in LOW_PRECISION:
        raise ValueError(f"dtype must be one of {', '.join(LOW_PRECISION)}, not {dtype!r}")
    g, r = (np.asarray(x, dtype=np.float64) for x in (got, truth))
    runs = baseline if isinstance(baseline, list | tuple) else [baseline]
    if not runs:
        raise ValueError("no baseline: the measure is an eager run in the low dtype")
    bs = [np.asarray(b, dtype=np.float64) for b in runs]
    if not all(g.shape == b.shape == r.shape for b in bs):
        shapes = ", ".join(str(b.shape) for b in bs)
        raise ValueError(f"shapes differ: got {g.shape}, baseline {shapes}, truth {r.shape}")
    # the envelope: per element, the baseline furthest from the truth
    far_b = np.stack([np.abs(b - r) for b in bs])
    pick = np.argmax(np.where(np.isnan(far_b), np.inf, far_b), axis=0)
    b = np.take_along_axis(np.stack(bs), pick[None], 0)[0]
    fl = rounded(r, dtype)
    held = np.isfinite(b) & np.isfinite(r) & np.isfinite(fl)  # where the stick measures
    for other in bs:
        held &= np.isfinite(other)
    unjudged = ""
    if not held.all():
        where = tuple(int(i) for i in np.argwhere(~held)[0])
        unjudged = (
            f"the truth is not finite at {where}"
            if not np.isfinite(r[where])
            else f"the truth {r[where]:.6g} at {where} does not fit in {dtype}"
            if not np.isfinite(fl[where])
            else f"the eager baseline is {b[where]} at {where}"
        ) + f" ({int(np.sum(~held))} of {r.size} elements): nothing is judged"
    e = g - r
    e_b, e_r = np.where(held, b - r, 0.0), np.where(held, fl - r, 0.0)
    n = r.size
    # the error scale of the problem: the baseline's, the rounding of the truth's, and at
    # least what one rounding of values of this size costs, u·rms(r)/√3 (a relative error
    # uniform within ±u), for a truth the dtype happens to hold exactly
    model = UNIT_ROUNDOFF[dtype] * _rms(np.where(held, r, 0.0)) / math.sqrt(3)
    sigma = max(_rms(e_b), _rms(e_r), model)
    tail = math.sqrt(2 * math.log(n)) if n > 1 else 1.0
    lam = np.maximum(np.abs(e_b), tail * sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.where(lam > 0, np.abs(e) / lam, np.where(e == 0, 0.0, np.inf))
    far = np.argwhere(reach > K_ELEMENT)
    worst = np.unravel_index(int(np.argmax(reach)), r.shape) if n else ()
    scale = float(np.max(np.abs(r), initial=0.0))
    unit = r / scale if scale > 0 else r
    norm2 = float(np.sum(unit * unit))
    c = _factor(g / scale if scale > 0 else g, unit, norm2)
    biases = [_factor(x / scale if scale > 0 else x, unit, norm2) for x in bs]
    c_b = max(biases, key=abs)  # the envelope's own factor would mix the runs' rounding
    noise = max(sigma / (scale * math.sqrt(norm2)), abs(c_b)) if norm2 > 0 else math.nan
    return LowPrecision(
        dtype=dtype,
        size=n,
        rms_error=_rms(e),
        rms_error_baseline=_rms(e_b),
        rms_rounding=_rms(e_r),
        worst_error=float(np.max(np.abs(e), initial=0.0)),
        worst_error_baseline=float(np.max(np.abs(e_b), initial=0.0)),
        worst_index=tuple(int(i) for i in worst),
        magnitude=_rms(e) / sigma if sigma > 0 else (0.0 if _rms(e) == 0 else math.inf),
        beyond=len(far),
        beyond_index=tuple(tuple(int(i) for i in idx) for idx in far[:SHOWN]),
        beyond_baseline=int(np.sum(np.abs(e_b) > K_ELEMENT * tail * sigma)),
        bias=c,
        bias_baseline=c_b,
        bias_noise=noise,
        unjudged=unjudged,
    )


__all__ = ["K_BIAS", "K_ELEMENT", "K_MAGNITUDE", "LowPrecision", "judge_low_precision"]
