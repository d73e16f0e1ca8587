"""Tolerances: data, one row per (derivation of the backend, dtype).

An element of a candidate ``a`` agrees with the baseline ``b`` when

    |a_i − b_i| ≤ rtol·|b_i| + atol·s + u_i + tiny/ε

where s is the scale of the baseline tensor (max |b|, taken per step for taps stacked
over the steps of an unroll, never smaller than the dtype's smallest normal number) and
u_i is the finite-difference backend's own error estimate (0 for autodiff). One absolute
floor is added: tiny/ε (≈ 1e-292 in float64, 1e-31 in float32). Below it the terms that
make a value are subnormal, and backends that flush subnormals to zero (XLA on the CPU:
seen as 0 against torch's 9.7e-308 at T = 1000) differ there legitimately. The atol
term is relative to s, never absolute: a gradient whose true size is 1e-20 is judged
against 1e-20. A pair of backends uses the looser of their two rows.

Why these numbers:
- autodiff, float64: two exact-derivative implementations differ only by rounding
  (summation order, a formula written differently): about ε = 2.2e-16 times the
  condition of the computation. Measured max_rel_err (relative to s): ≤ 5e-15 on the
  default catalog (reference, manual, jax vs torch), ≤ 4.4e-14 through T = 1000 unrolls
  (LSTM and Elman, H = 64); 1e-10 leaves more than three orders of margin, while a wrong
  rule (errors of order 1e-2 to 1) is still caught by eight orders.
- autodiff, float32: ε = 1.2e-7; long products and sums accumulate O(√n·ε) to O(n·ε):
  measured ≤ 2e-6 on the default catalog, so rtol 1e-4 and atol 1e-5·s leave a factor 5
  and more.
- numeric, float64: the stencil's truncation and rounding error is carried by u_i; the
  rows only absorb what the estimate misses (it is itself an estimate). Over the catalog
  u_i bounds |FD − autodiff| on 100% of elements and directions, and is 19× it on the
  median one (16× on float32-rounded inputs); an element with no trustworthy step has
  u_i = ∞ and is unresolved (``harness.finite_differences.stencil``).

The table is what holds where nothing else is known. Where the problem's own rounding
noise is measured (``harness.noise``: the spread of each element over runs on inputs
moved by one ulp; f, its largest spread relative to s, per step for unroll taps) it
adjusts the table in both directions (``harness.compare.compare_arrays``):

    |a_i − b_i| ≤ rtol·|b_i| + min(atol·s, TIGHTEN·f·s) + u_i + tiny/ε      agree
    otherwise, where f·s > rtol·|b_i| + atol·s and |a_i − b_i| ≤ WITHIN_NOISE·f·s + u_i + tiny/ε
                                                                          agree within noise

- TIGHTEN = 100: correct backends differ by at most 3.5 floors over the float64 catalog
  (0.42 on the median tensor; 3.0 in float32), so an error in an element 6.7e-4 of the scale is caught at
  1e-9 relative (the table alone needs 1e-5 there).
- WITHIN_NOISE = 3: on elman_exploding (σ = 1.3), T ∈ {100, 300, 1000}, H ∈ {16, 64},
  seeds 0–2, correct libraries differ by at most 1.38 floors in float64 and 1.48 in
  float32: a factor 2 of margin. At T = 1000, H = 64 the floor is 2e-3 to 2e-2 of the
  scale: the references are good to 1.8–2.7 digits, and no fixed table can say so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float  # relative to the tensor's (or the step's) scale s = max |b|

    def __or__(self, other: Tolerance) -> Tolerance:
        """The looser of two tolerances, element by element."""
        return Tolerance(max(self.rtol, other.rtol), max(self.atol, other.atol))


TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("autodiff", "float64"): Tolerance(rtol=1e-10, atol=1e-10),
    ("autodiff", "float32"): Tolerance(rtol=1e-4, atol=1e-5),
    ("numeric", "float64"): Tolerance(rtol=1e-7, atol=1e-8),
    ("numeric", "float32"): Tolerance(rtol=1e-4, atol=1e-5),
}


def tolerance_for(derivation_a: str, derivation_b: str, dtype: str, table=None) -> Tolerance:
    """The tolerance for comparing a backend of ``derivation_a`` with one of ``derivation_b``."""
    table = TOLERANCES if table is None else {**TOLERANCES, **table}
    return table[(derivation_a, dtype)] | table[(derivation_b, dtype)]
