"""The noise floor: how far rounding-sized changes move each gradient element.

A backend's gradient is computed again K times, each time on parameters and inputs moved
by independent random relative perturbations of one ulp, x·(1 + δ), δ ~ U(−ε, ε), seeded.
The spread of an element over those K + 1 runs (max − min) is its noise floor: what the
problem itself does to a rounding error there. This is Monte Carlo arithmetic (D. S.
Parker, "Monte Carlo Arithmetic: exploiting randomness in floating-point arithmetic",
UCLA 1997), the idea behind the significant-digit estimates of CADNA (Vignes; Jézéquel &
Chesneaux 2008) and Verificarlo (Denis, de Oliveira Castro & Petit 2016), applied here at
the inputs of a computation rather than at each operation.

In a well-conditioned computation the floor is a few ulps and changes nothing; where the
computation amplifies rounding (an exploding unroll: ×1.3 per step for 1000 steps) it is
large, and two correct libraries differ by about that much. The floor is measured on the
references only: a plug-in is never judged by its own noise.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

ULPS = 1.0  # the perturbation: up to this many ulps, relative, on every float element
DEFAULT_RUNS = 4  # K: the perturbed runs beside the unperturbed one
MAX_RUNS = 1000
"""The most K may be (``--noise``): the floor is the range of K + 1 samples, and the expected
range of n uniform samples covers (n − 1)/(n + 1) of their spread, 99.8% at n = 1001, so
more runs move the floor by less than 0.2% while each costs one more gradient."""


def perturbed(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A copy with every floating element moved by a random relative δ, |δ| ≤ ULPS·ε."""
    out = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if not np.issubdtype(a.dtype, np.floating):
            out[name] = a.copy()
            continue
        eps = np.finfo(a.dtype).eps
        out[name] = (a * (1 + rng.uniform(-ULPS, ULPS, a.shape) * eps)).astype(a.dtype)
    return out


def spread(
    backend: Any,
    case: Any,
    params: dict,
    inputs: dict,
    dtype: str,
    first: Any,
    seed: int = 0,
    runs: int = DEFAULT_RUNS,
    call: Any = None,
) -> dict[tuple[str, str], np.ndarray]:
    """Per tensor of ``first`` (the backend's Result on the unperturbed arrays): the spread
    of each element over it and ``runs`` perturbed runs (a run that fails is left out).
    ``call(case, params, inputs, dtype)`` makes a run (default ``backend.gradient``; the
    runner passes the backend's ``jvp`` or ``hvp`` along the case's direction)."""
    call = call or backend.gradient
    rng = np.random.default_rng(
        [seed, zlib.crc32(case.label.encode()), zlib.crc32(backend.name.encode())]
    )
    # the running least and greatest value of each element: two arrays per tensor however
    # many runs there are (the range of the values, exactly as if all were kept)
    low = {key: np.array(v, dtype=np.float64) for key, v in first.tensors().items()}
    high = {key: v.copy() for key, v in low.items()}
    counted = set()
    for _ in range(runs):
        try:
            result = call(case, perturbed(params, rng), perturbed(inputs, rng), dtype)
        except Exception:  # noqa: BLE001 - a run that fails tells nothing about the noise
            continue
        for key, v in result.tensors().items():
            if key in low and np.shape(v) == low[key].shape:
                v = np.asarray(v, dtype=np.float64)
                np.minimum(low[key], v, out=low[key])
                np.maximum(high[key], v, out=high[key])
                counted.add(key)
    return {key: high[key] - low[key] for key in low if key in counted}


__all__ = ["DEFAULT_RUNS", "ULPS", "perturbed", "spread"]
