"""Central finite differences in float64: the one place their stencils, steps and limits live.

The smooth stencil is fourth order,

    D(h) = [f(x−2h) − 8 f(x−h) + 8 f(x+h) − f(x+2h)] / 12h,      error ≈ h⁴ f⁽⁵⁾/30,

with h = ε^(1/5)·max(1, |x|) ≈ 7.4e-4·max(1, |x|) (ε = 2.2e-16 the float64 machine
epsilon: it balances truncation h⁴ against rounding ε|f|/h). A function with kinks (relu)
takes the second-order stencil [f(x+h) − f(x−h)] / 2h with h = ε^(1/3)·max(1, |x|)
≈ 6.1e-6·max(1, |x|), small enough that a kink is rarely inside [x−2h, x+2h]. Each
estimate comes with its error, |D(h) − D(2h)| plus the rounding term 4ε·|f|/h.

Two users: the ``numeric`` backend (``harness.backends.numeric``: the case's loss, the
step searched per element by ``stencil``, ``per_element`` and ``along_directions``) and
the check of a stage plug-in's backward against finite differences of its own forward
(``arguments_per_element``, at one step, and ``arguments_along_directions``, run in the
plug-in's worker). Past MAX_ELEMENTWISE differentiated elements
both go along DIRECTIONS random unit directions v instead: ⟨dL/dx, v⟩ from the same
stencil on t ↦ f(x + t·v), 6·DIRECTIONS evaluations per tensor, whatever its size.

numpy only: the plug-in's worker imports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

EPS = float(np.finfo(np.float64).eps)
SMOOTH_STEP = EPS ** (1 / 5)
KINK_STEP = EPS ** (1 / 3)
MAX_ELEMENTWISE = 600  # more differentiated elements than this: along random directions
DIRECTIONS = 3  # random unit directions per tensor past MAX_ELEMENTWISE
MAX_SHRINKS = 12  # the step may shrink to h/4^12 ≈ 6e-8·h where the loss is too curved at h
SOUND = 0.1  # an estimate within this fraction of its value is sound enough to stop on


def stencil_once(f: Any, smooth: bool, h: float) -> tuple[float, float]:
    """(D(h), |D(h) − D(2h)|) for the directional function f(t) around t = 0."""
    # Differences of values at ±t first: nearby values subtract exactly (Sterbenz), and a
    # value that does not move gives exactly 0, as it must.
    if smooth:
        fp1, fm1, fp2, fm2, fp4, fm4 = (f(s * h) for s in (1, -1, 2, -2, 4, -4))
        d_h = (8 * (fp1 - fm1) - (fp2 - fm2)) / (12 * h)
        d_2h = (8 * (fp2 - fm2) - (fp4 - fm4)) / (24 * h)
    else:
        fp1, fm1, fp2, fm2 = (f(s * h) for s in (1, -1, 2, -2))
        d_h = (fp1 - fm1) / (2 * h)
        d_2h = (fp2 - fm2) / (4 * h)
    return d_h, abs(d_h - d_2h)


def stencil(
    f: Any, smooth: bool, h: float, rounding: float, confirm: bool = False
) -> tuple[float, float]:
    """(derivative, error estimate) of f at 0, shrinking the step where it is too coarse.

    From h, the step is cut by 4 (up to MAX_SHRINKS times) until the estimate's error is
    at most 1e-8 of its size. A loss that is strongly curved at the scale of h (an
    exploding unroll amplifies a perturbation by 1.3 per step, so at T = 45 its features
    are ~1e-5 wide) needs a much smaller step; the truncation estimate may even grow at
    first, while h is still wider than those features. The search stops early where
    smaller steps can only be worse: once the truncation estimate is below the rounding
    term rounding/h (at h/4 the rounding term alone is 4× larger: a derivative that is
    zero or tiny is settled there, at its rounding level), or once rounding/(h/4) exceeds
    the bound of a sound estimate (one within SOUND of its value). Kept: the estimate
    whose bound (truncation plus rounding/h) is smallest *relative to the derivative it
    found* — a step far wider than the features averages them away, and then both its
    value and its bound are small, the bound as large as the value; judged by the
    absolute bound alone, that step would win.

    The derivative is not known at all, and its error estimate is infinite (the
    comparison can then neither confirm nor contradict anything with it: it is
    unresolved), where every step is still dominated by truncation and none gives a sound
    estimate, or where a smaller step's value lies outside the kept one's bound plus its
    own: the kept one was a coincidence of its step. That is a loss curved at every scale
    tried — a chaotic forward: at T = 1000, σ = 1.3 its features are ~1.3^-1000 wide, and
    D(h) grows like 1/h as the step shrinks. ``confirm`` (forward mode, whose values are
    an unroll's states, with tangents of 2e8 at step 534 of that unroll: features 4e-9
    wide): where the search stopped at its best step, one smaller step is tried too, and
    the error is bounded through every smaller step as well, |D(h) − D(h/4)| + err(h/4)
    by the triangle inequality — out of the asymptotic regime |D(h) − D(2h)| alone can
    miss most of it (there D(h) ≈ D(2h) by coincidence, 2% off; 61 against 27 at another
    element), and the bound then says how little is known.
    """
    found: list[tuple[float, float]] = []  # (D, its bound) at each step tried
    best, best_rank, settled = 0, (math.inf, math.inf), False
    for _ in range(MAX_SHRINKS + 1):
        d, truncation = stencil_once(f, smooth, h)
        err = truncation + rounding / h
        found.append((d, err))
        rank = (err / abs(d) if d else math.inf, err)
        if rank < best_rank:
            best, best_rank = len(found) - 1, rank
        if err <= 1e-8 * abs(d) or truncation <= rounding / h:  # converged, or at rounding
            settled = True
            break
        if best_rank[0] < SOUND and rounding / (h / 4) > found[best][1]:  # a sound estimate
            break  # that a smaller step could only blur with rounding
        h /= 4
    d, err = found[best]
    if not settled and best_rank[0] >= SOUND:  # curved at every step tried
        return d, math.inf
    if any(abs(d_j - d) > err + err_j for d_j, err_j in found[best + 1 :]):
        return d, math.inf  # a smaller step contradicts it: it was a coincidence of its step
    if confirm and best == len(found) - 1:  # no smaller step was tried: try one
        d_j, truncation = stencil_once(f, smooth, h / 4)
        found.append((d_j, truncation + rounding / (h / 4)))
    if confirm:  # and bound it through the smaller step: |D(h) − D'| ≤ |D(h) − D(h/4)| + err(h/4)
        err = max([err, *(abs(d_j - d) + err_j for d_j, err_j in found[best + 1 :])])
    return d, err


def stencil_each(
    evaluate: Any, smooth: bool, h: float, rounding: np.ndarray, confirm: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``stencil`` for every element of the vector function ``evaluate(t)`` (a float64
    array): one step search per element, the evaluations at each t computed once."""
    cache: dict[float, np.ndarray] = {}

    def at(t: float) -> np.ndarray:
        if t not in cache:
            cache[t] = np.asarray(evaluate(t), dtype=np.float64).ravel()
        return cache[t]

    found = [
        stencil(lambda t, i=i: float(at(t)[i]), smooth, h, float(rounding[i]), confirm)
        for i in range(len(rounding))
    ]
    derivative, error = (np.array(c, dtype=np.float64) for c in zip(*found, strict=True))
    return derivative, error


def unit_directions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """DIRECTIONS random directions of ``shape``, each of unit (Frobenius) norm, stacked."""
    vs = rng.standard_normal((DIRECTIONS, *shape))
    vs /= np.linalg.norm(vs.reshape(DIRECTIONS, -1), axis=1).reshape(-1, *[1] * len(shape))
    return vs


def along_directions(
    move: Callable[[np.ndarray], float],
    shape: tuple[int, ...],
    smooth: bool,
    h: float,
    rounding: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the unit directions v, ⟨dL/dx, v⟩ for each, their error estimates): ``stencil`` on
    t ↦ move(t·v), where ``move(δ)`` is the loss with x moved by δ (an array of ``shape``)."""
    vs = unit_directions(rng, shape)
    found = [stencil(lambda t, v=v: move(t * v), smooth, h, rounding) for v in vs]
    values, errors = (np.array(column) for column in zip(*found, strict=True))
    return vs, values, errors


def per_element(
    move: Callable[[tuple[int, ...], float], float],
    value: np.ndarray,
    smooth: bool,
    base_step: float,
    rounding: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(dL/dx, its error estimate) element by element: ``stencil`` on t ↦ move(i, t), the
    loss with element i of x moved by t, from the step base_step·max(1, |x_i|)."""
    grad, err = np.zeros(value.shape), np.zeros(value.shape)
    for i in np.ndindex(value.shape):
        h = base_step * max(1.0, abs(float(value[i])))
        grad[i], err[i] = stencil(lambda t, i=i: move(i, t), smooth, h, rounding)
    return grad, err


def arguments_per_element(
    f: Callable[[list[np.ndarray]], float], args: list[np.ndarray], which: list[int], smooth: bool
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """dL/d(args[i]) for i in ``which`` by central differences of ``f`` in float64 at one
    step (no search), with an error estimate per element. Smooth: the fourth-order stencil,
    h = ε^(1/5)·max(1, |x|), error |D(h) − D(2h)|. With kinks: the second-order stencil,
    h = ε^(1/3)·max(1, |x|), and the error covers both one-sided slopes, so at a kink any
    value between the left and right derivative (a subgradient) is accepted."""
    args = [np.array(a, dtype=np.float64) if i in which else a for i, a in enumerate(args)]
    f0 = f(args)
    rounding = 4 * EPS * max(abs(f0), 1e-300)
    grads, errors = [], []
    for i in which:
        x = args[i]
        g, e = np.zeros(x.shape), np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            h = (SMOOTH_STEP if smooth else KINK_STEP) * max(1.0, abs(float(x[idx])))
            base = x[idx]

            def at(t, idx=idx, base=base, x=x):
                x[idx] = base + t
                try:
                    return f(args)
                finally:
                    x[idx] = base

            if smooth:
                fp1, fm1, fp2, fm2, fp4, fm4 = (at(s * h) for s in (1, -1, 2, -2, 4, -4))
                d_h = (fm2 - 8 * fm1 + 8 * fp1 - fp2) / (12 * h)
                d_2h = (fm4 - 8 * fm2 + 8 * fp2 - fp4) / (24 * h)
                err = abs(d_h - d_2h)
            else:
                fp1, fm1 = at(h), at(-h)
                d_h = (fp1 - fm1) / (2 * h)
                right, left = (fp1 - f0) / h, (f0 - fm1) / h
                err = abs(right - left) / 2  # the one-sided slopes' spread
            g[idx], e[idx] = d_h, err + rounding / h
        grads.append(g)
        errors.append(e)
    return grads, errors


def arguments_along_directions(
    f: Callable[[list[np.ndarray]], float],
    args: list[np.ndarray],
    which: list[int],
    smooth: bool,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each args[i], i in ``which``: DIRECTIONS unit directions v (seeded), ⟨dL/dx, v⟩
    by ``stencil`` on t ↦ f(x + t v) from the step h·max(1, max |x|), and its error
    estimate — 6 · DIRECTIONS evaluations per argument, whatever its size."""
    args = [np.array(a, dtype=np.float64) if i in which else a for i, a in enumerate(args)]
    rounding = 4 * EPS * max(abs(f(args)), 1e-300)
    rng = np.random.default_rng(seed)
    found = []
    for i in which:
        x = args[i]
        h = (SMOOTH_STEP if smooth else KINK_STEP) * max(1.0, float(np.max(np.abs(x), initial=0.0)))

        def move(delta, i=i, x=x):
            return f([*args[:i], x + delta, *args[i + 1 :]])

        found.append(along_directions(move, x.shape, smooth, h, rounding, rng))
    return found
