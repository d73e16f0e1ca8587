"""The low-precision floating-point dtypes as data: their unit roundoff, and how a value
is rounded to one. numpy alone (and ``ml_dtypes``, numpy's bfloat16, as jax uses it).

bfloat16 keeps 8 significant bits and float16 11 (IEEE 754-2008 binary16; bfloat16 as
Google's TPUs and ``ml_dtypes`` define it): a value is rounded to within a relative
u = 2^-p, the unit roundoff.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LOW_PRECISION = ("bfloat16", "float16")  # judged by ``harness.compare.low_precision``
UNIT_ROUNDOFF: dict[str, float] = {
    "float64": 2.0**-53,
    "float32": 2.0**-24,
    "float16": 2.0**-11,
    "bfloat16": 2.0**-8,
}


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype called ``dtype`` (bfloat16: ``ml_dtypes``')."""
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def rounded(x: Any, dtype: str) -> np.ndarray:
    """``x`` rounded to nearest (ties to even) in ``dtype``, back in float64 (±inf where
    it is beyond the dtype's range)."""
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float64).astype(numpy_dtype(dtype)).astype(np.float64)


__all__ = ["LOW_PRECISION", "UNIT_ROUNDOFF", "numpy_dtype", "rounded"]
