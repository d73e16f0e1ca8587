"""A dtype problem, as one fault: which tensors came back in which dtype, in a run of
which dtype, and the likely cause.

A tensor in another dtype is still compared: its values are cast to the run's dtype
(float64 → float32 rounds each value once, half an ulp of float32, far inside float32's
tolerance; float32 → float64 is exact) and judged at the run's tolerance, so a dtype
problem never hides what the values show. It still fails the run (a fault, exit 1): the
plug-in did not answer in the dtype it was given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.compare import counted

# the likely cause, by (what came back, the run's dtype): a short key and its hint
CAUSES = {
    ("float64", "float32"): (
        "numpy promotion",
        "NumPy 2 promotes a float32 array to float64 through any float64 operand: an "
        "np.float64 scalar (np.sqrt, np.exp or np.float64 of a Python number), an array made "
        "without dtype= (np.zeros, np.ones, np.eye, np.full, np.arange); give those "
        "dtype=x.dtype, or use Python floats",
    ),
    ("float32", "float64"): (
        "float32 arithmetic",
        "part of the computation is done in float32 (an array, a constant or an astype); "
        "the values carry float32's rounding",
    ),
}
INTEGER = (
    "integer result",
    "an integer or boolean array: a cast to int, or a gradient made "
    "of integer arithmetic (np.sign, a count, an index)",
)


def cause(got: str, run: str) -> tuple[str, str]:
    """(key, hint) of the likely cause of ``got`` answers in a ``run`` run."""
    if np.dtype(got).kind in "iub":
        return INTEGER
    return CAUSES.get((got, run), ("another precision", f"somewhere the arithmetic is in {got}"))


def as_run_dtype(array: np.ndarray, run: str) -> np.ndarray:
    """The values cast to the run's dtype, for the comparison (the answer itself is kept
    as returned for every other check)."""
    return array if array.dtype == np.dtype(run) else array.astype(run)


def dtype_fault(came_back: dict[str, str], run: str) -> tuple[str, dict[str, Any]]:
    """(message, facts) of the one fault for every tensor that came back in another dtype
    (``came_back``: tensor -> its dtype)."""
    tensors = list(came_back)
    got = list(dict.fromkeys(came_back.values()))
    key, hint = cause(got[0], run)
    names = ", ".join(tensors[:8]) + (f" and {len(tensors) - 8} more" if len(tensors) > 8 else "")
    message = (
        f"{counted(len(tensors), 'tensor')} came back as {' or '.join(got)} in a {run} run "
        f"({names}); their values were still compared, cast to {run}. Likely cause: "
        f"{hint}"
    )
    return message, {"tensors": tensors, "got": got, "run": run, "cause": key}


__all__ = ["as_run_dtype", "cause", "dtype_fault"]
