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
σ = max(rms(e_b), rms(e_r)) be the error scale of the problem in this dtype. Three tests:

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

from harness.tolerances import LOW_PRECISION

K_MAGNITUDE = 2.0
K_ELEMENT = 8.0
K_BIAS = 10.0
SHOWN = 5  # elements beyond named by index, at most


def rounded(x: Any, dtype: str) -> np.ndarray:
    """``x`` rounded to nearest (ties to even) in ``dtype``, back in float64."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "bfloat16":
        import ml_dtypes  # numpy's extension dtypes, as jax uses them

        return x.astype(ml_dtypes.bfloat16).astype(np.float64)
    return x.astype(np.dtype(dtype)).astype(np.float64)


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
        return self.magnitude_ok and self.elements_ok and self.bias_ok

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
    "float16"); the three tensors of one shape, any float dtype (they are upcast)."""
    if dtype not in LOW_PRECISION:
        raise ValueError(f"dtype must be one of {', '.join(LOW_PRECISION)}, not {dtype!r}")
    g, b, r = (np.asarray(x, dtype=np.float64) for x in (got, baseline, truth))
    if not g.shape == b.shape == r.shape:
        raise ValueError(f"shapes differ: got {g.shape}, baseline {b.shape}, truth {r.shape}")
    e, e_b, e_r = g - r, b - r, rounded(r, dtype) - r
    n = r.size
    sigma = max(_rms(e_b), _rms(e_r))
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
    c_b = _factor(b / scale if scale > 0 else b, unit, norm2)
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
    )


__all__ = ["K_BIAS", "K_ELEMENT", "K_MAGNITUDE", "LowPrecision", "judge_low_precision", "rounded"]
