"""The verdict policy: how a tensor's element-wise errors become one verdict. The table's
tolerance (``harness.tolerances``), tightened or widened by the problem's own noise floor
(``harness.noise``); elements an oracle cannot resolve; and, from the elements, the
verdict (``Verdict``) and the reason a row gives for it. Pure numpy.
"""

from __future__ import annotations

import math

import numpy as np

from harness.compare.verdicts import Verdict

# The noise floor (harness.noise) against the table. TIGHTEN: where the floor is measured,
# the absolute term of the tolerance is at most 100 floors. Over the default catalog two
# correct backends differ by at most 3.5 floors (float64, adbench_lstm's extra, manual vs
# torch; 0.42 on the median tensor) and 3.0 (float32), so 100 leaves a factor 28, and an
# error of 1e-9 in an element 6.7e-4 of the scale (invisible to atol 1e-10·s) is caught.
# WITHIN_NOISE: a difference of up to 3 floors is the problem's own rounding noise where
# that noise exceeds the table; on elman_exploding (σ = 1.3) at T ∈ {100, 300, 1000},
# H ∈ {16, 64}, seeds 0-2, correct libraries differ by at most 1.38 floors (float64) and
# 1.48 (float32). A gradient off by 1e-2 there is still flagged at the late steps of its
# tap h, where the floor is small (see harness.tolerances).
TIGHTEN = 100.0
WITHIN_NOISE = 3.0

# An oracle resolves an element when its error estimate u_i is at most this fraction of
# the element's scale s (the tensor's, or the step's, max|b|). Above it, finite
# differences vouch for fewer than 4 digits there, too few to call the element right or
# wrong; on the default catalog u_i/s stays below 2e-7 wherever the gradient is not
# vanishingly small (measured: deep_chain 1.2e-7, everything else below 1e-8).
RESOLVE = 1e-4


def noise_terms(diff, fixed, extra, tol, floor, scale, abs_b) -> tuple:
    """(allowed, within, threshold) where the noise floor f (relative to ``scale``) is
    measured: the absolute term of the tolerance is min(atol·s, TIGHTEN·f·s); an element
    beyond that but within WITHIN_NOISE·f·s, where f·s exceeds the fixed tolerance, agrees
    within noise; ``threshold``, the difference above which an element is flagged."""
    absolute = np.minimum(tol.atol * scale, TIGHTEN * floor * scale)
    allowed = tol.rtol * abs_b + absolute + extra
    noisy = floor * scale > fixed
    band = WITHIN_NOISE * floor * scale + extra
    within = (diff > allowed) & (diff <= band) & noisy
    return allowed, within, np.where(noisy, np.maximum(allowed, band), allowed)


def digits_of(floor: float, eps: float) -> float:
    """The significant digits a noise floor f leaves: −log10 f, between 0 and the dtype's
    own, −log10 ε (15.7 in float64, 6.9 in float32)."""
    return float(min(max(-math.log10(max(floor, eps)), 0.0), -math.log10(eps)))


def decide(bad, unresolved, within) -> Verdict:
    """A tensor's verdict from its elements: "disagree" when a judged element lies outside
    the tolerance and the noise, else "inconclusive" when some element is unresolved, else
    "agree within noise" when some element needed the noise to pass, else "agree"."""
    if bad.any():
        return Verdict.DISAGREE
    if unresolved.any():
        return Verdict.INCONCLUSIVE
    return Verdict.WITHIN_NOISE if within.any() else Verdict.AGREE


def within_reason(n_within: int, n: int, floor: float, digits: float) -> str:
    """The reason a row agrees only within noise, as ``agreement.csv`` gives it."""
    good = (
        f"the references are good to {digits:.1f} digits there"
        if digits >= 1
        else "the references have no significant digit there: nothing can be checked"
    )
    return (
        f"{n_within}/{n} elements differ beyond the tolerance, within {WITHIN_NOISE:g}× the "
        f"problem's own rounding noise ({floor:.1e} of the scale): the problem, not a backend, "
        f"limits the agreement; {good}"
    )
