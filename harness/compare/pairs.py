"""Which backends are compared with which: the baseline a case's rows are judged against,
the noise of the case (the problem's, so every pair is judged against it), one pair of
backends on one tensor, and the odd one out among three or more backends.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from harness.compare.metrics import compare_arrays, compare_directional
from harness.compare.verdicts import FLAGGED, Verdict
from harness.result import Result
from harness.tolerances import tolerance_for


def derivation_of(result: Result) -> str:
    """ "autodiff" or "numeric": which row of the tolerance table a Result is judged by."""
    return "autodiff" if result.obtained_by == "autodiff" else "numeric"


def pick_baseline(results: list[Result], baseline: str) -> Result | None:
    """The Result a case's rows are judged against: the baseline asked for where it ran
    and gave full tensors, else the first autodiff backend that did, else any — never a
    plug-in's (``Result.judged``): where the references failed, it is judged against what
    ran (finite differences), not made the measure of the others."""
    by_name = {r.backend: r for r in results if not r.judged}  # never the answer judged
    if baseline in by_name and by_name[baseline].ok and not by_name[baseline].directional:
        return by_name[baseline]
    usable = [r for r in results if r.ok and not r.directional and not r.judged]
    if not usable:  # an oracle that saw the tensors along directions only: judged that way
        usable = [r for r in results if r.ok and not r.judged]
    return next(
        (r for r in usable if derivation_of(r) == "autodiff"), usable[0] if usable else None
    )


def case_noise(results: list[Result]) -> dict[tuple[str, str], np.ndarray]:
    """The noise floor's spreads of one case, per tensor: the largest over the references
    that measured it (``harness.noise``; a plug-in's Result carries none). The noise is
    the problem's, not a backend's: every pair of backends is judged against it."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for r in results:
        for key, spread in r.noise.items():
            spread = np.asarray(spread, dtype=np.float64)
            if key not in out:
                out[key] = spread
            elif out[key].shape == spread.shape:
                out[key] = np.maximum(out[key], spread)
    return out


def pair(x: Result, y: Result, key, tolerances, noise: dict | None = None) -> dict[str, Any]:
    """Compare tensor ``key`` of x against y (y as the expected side), against the case's
    noise (``case_noise``) where it was measured."""
    spread = (noise or {}).get(key)
    tol = tolerance_for(derivation_of(x), derivation_of(y), y.dtype, tolerances)
    if key in x.directional or key in y.directional:
        full, probe = (y, x) if key in x.directional else (x, y)
        if key not in full.tensors():
            return {
                "verdict": Verdict.FAILED.value,
                "ok": False,
                "error": f"{full.backend} returned no {key[0]} {key[1]!r}",
            }
        out = compare_directional(full.tensors()[key], probe.directional[key], tol, y.dtype, spread)
        out.update(rtol=tol.rtol, atol=tol.atol)
        return out
    got, expected = x.tensors().get(key), y.tensors().get(key)
    if got is None:
        return {
            "verdict": Verdict.FAILED.value,
            "ok": False,
            "error": f"{x.backend} returned no {key[0]} {key[1]!r}",
        }
    unc = x.uncertainty.get(key)
    if unc is None:
        unc = y.uncertainty.get(key)
    stepped = key[0] == "tap" and (y.tap_steps or x.tap_steps).get(key[1]) is not None
    out = compare_arrays(got, expected, tol, y.dtype, unc, stepped, spread)
    out.update(rtol=tol.rtol, atol=tol.atol)
    return out


def odd_one_out(results: list[Result], key, tolerances, noise: dict | None = None) -> str:
    """With three or more backends: the one that disagrees with every other while all
    the others agree among themselves ("" if there is no such single backend)."""
    have = [
        r
        for r in results
        if r.ok and r.independent and (key in r.tensors() or key in r.directional)
    ]
    if len(have) < 3:
        return ""
    verdicts = {
        (x.backend, y.backend): pair(x, y, key, tolerances, noise).get("verdict", Verdict.FAILED)
        for x, y in combinations(have, 2)
    }
    for suspect in have:
        against = [v for (p, q), v in verdicts.items() if suspect.backend in (p, q)]
        others = [v for (p, q), v in verdicts.items() if suspect.backend not in (p, q)]
        if all(v == Verdict.DISAGREE for v in against) and not any(v in FLAGGED for v in others):
            return suspect.backend
    return ""
