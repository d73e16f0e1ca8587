"""The ``numeric`` backend: finite differences of the loss, in float64 — the oracle.

It evaluates the case's loss with its own forward-only numpy functions (sharing no code
with the tape, torch or jax) and differentiates by central differences, one element at
a time, with the stencils of ``harness.finite_differences`` (fourth order for a smooth
loss, second order where it has kinks; the step searched per element).

Each element also gets an error estimate, |D(h) − D(2h)| + 4ε·|f|/h, which the
comparison adds to its tolerance: finite differences can only vouch for a gradient
down to that size. Taps are differentiated the same way, by perturbing the tapped value.

Cost: per-element differences need 6 (smooth) or 4 evaluations of the loss per element.
A case with more than MAX_ELEMENTWISE parameter and tap elements is checked along
DIRECTIONS random unit directions v per tensor instead ("directional" mode): the same
stencil on t ↦ L(θ + t·v) gives ⟨dL/dθ, v⟩, compared with the other backends'
gradients projected on v — 6·DIRECTIONS evaluations per tensor, whatever its size.

Forward mode (``jvp``) is the same stencil along the case's direction u, applied to the
loss and to every tapped value at once: t ↦ L(θ + t·u) gives J_L·u, t ↦ v(θ + t·u) gives
J_v·u, each element with its own step search and error estimate (the evaluations are
shared: the loss and the taps come out of the same forward). H·v (``hvp``) is the
stencil on t ↦ ∇L(θ + t·v), the gradient taken by the reference tape, the only oracle of
second order that needs no second derivative of its own; a loss with kinks has no H·v
to approximate there (``harness.modes.NO_SECOND``), and is skipped. Each value is also
moved by one ulp of the parameters (``_settle``): where it changes by far more than its
slope explains, it varies on a scale no step can resolve, and nothing is known there.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import array_api_compat.numpy as np_xp
import numpy as np

from harness import noise
from harness.backends.base import Backend, NotApplicable
from harness.finite_differences import (
    EPS,
    KINK_STEP,
    MAX_ELEMENTWISE,
    SMOOTH_STEP,
    along_directions,
    per_element,
    stencil_each,
)
from harness.modes import NO_SECOND
from harness.namespace import Namespace
from harness.result import Directional, Result

ROUGH = 1e3  # forward mode and H·v: how far the ulp response may exceed what the slope explains


class NumpyNamespace(Namespace):
    """Forward-only ``xp`` on float64 numpy arrays (``array_api_compat.numpy``); a tap adds
    ``perturb[name]``."""

    name = "numeric"
    standard = np_xp

    def __init__(self, perturb: dict[str, np.ndarray] | None = None) -> None:
        super().__init__()
        self.perturb = perturb or {}
        self.values: dict[str, list[np.ndarray]] = {}  # what each tap saw, per step

    def _watch(self, name, x, step):
        x = np.asarray(x, dtype=np.float64)
        self.values.setdefault(name, []).append(x)
        if name not in self.perturb:
            return x
        return x + (self.perturb[name] if step is None else self.perturb[name][step])

    @staticmethod
    def sigmoid(x):
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x)))  # σ(x) = (1 + tanh(x/2)) / 2

    @staticmethod
    def relu(x):
        return np.where(np.asarray(x) > 0, x, 0.0)

    @staticmethod
    def logsumexp(x, axis=None, keepdims=False):
        m = np.max(x, axis=axis, keepdims=True)
        out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
        return out if keepdims else np.squeeze(out, axis=axis)

    def softmax_cross_entropy(self, logits, labels):
        z = logits - self.logsumexp(logits, axis=-1, keepdims=True)
        return -np.mean(z[np.arange(len(labels)), labels])


TAPS_ISOLATED = "harness.backends.numeric:taps_isolated"


def taps_of(case: Any, params: dict, inputs: dict) -> tuple[dict[str, tuple], dict[str, Any]]:
    """The case's taps, from a forward-only float64 run: {name: shape} (stacked over the
    steps of a scan: (T, *shape)) and {name: T, or None for a tap outside any scan}. A
    case of the user's runs that forward in its worker (``harness.sandbox.case``)."""
    if getattr(case, "definition", True) is None:  # a custom stage: no taps
        return {}, {}
    if getattr(case, "isolated", False):
        from harness.sandbox.case import CaseFault, ask
        from harness.sandbox.wire import Mapping, conforms

        reply = ask(case, {"op": TAPS_ISOLATED, "params": params, "inputs": inputs})
        miss = conforms(reply, {"shapes": Mapping(str, [int]), "steps": Mapping(str, (int, None))})
        if miss:
            raise CaseFault({"fault_name": "malformed reply", "message": miss})
        return {k: tuple(v) for k, v in reply["shapes"].items()}, dict(reply["steps"])
    probe = NumpyNamespace()
    case.loss(probe, {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}, inputs)
    shapes = {
        n: (v[0].shape if probe.tap_steps[n] is None else (len(v), *v[0].shape))
        for n, v in probe.values.items()
    }
    return shapes, dict(probe.tap_steps)


def _built_taps(case: Any, params: dict, inputs: dict) -> tuple[dict, dict]:
    case.build(0)  # a case made afresh is built once first, as before any run (a stage of
    return taps_of(case, params, inputs)  # a case learns there which arrays are which)


def taps_isolated(worker: Any, request: dict) -> dict:
    """``taps_of`` in a case's worker."""
    from harness.cases.base import rebuild
    from harness.sandbox import call
    from harness.sandbox.case import failed

    made = call(rebuild, request["case"])
    if made["error"] is not None:
        return failed(made)
    found = call(_built_taps, made["value"], request["params"], request["inputs"])
    if found["error"] is not None:
        return failed(found)
    shapes, steps = found["value"]
    return {"shapes": {k: list(v) for k, v in shapes.items()}, "steps": steps}


def _rounding(values: dict[str, np.ndarray], steps: dict[str, int | None]) -> np.ndarray:
    """4ε times each element's scale (its tensor's max |value|, per step for an unroll's
    tap), flattened in the order of ``values``: what rounding alone moves a value by."""
    out = []
    for name, v in values.items():
        a = np.abs(np.asarray(v, dtype=np.float64))
        if steps.get(name) is not None and a.ndim:
            scale = np.max(a.reshape(len(a), -1), axis=1, initial=0.0).reshape(
                -1, *[1] * (a.ndim - 1)
            )
        else:
            scale = np.max(a, initial=0.0)
        out.append(
            np.broadcast_to(4 * EPS * np.maximum(scale, np.finfo(np.float64).tiny), a.shape).ravel()
        )
    return np.concatenate(out) if out else np.zeros(0)


def _ulp_response(
    evaluate_at, P: dict[str, np.ndarray], base: np.ndarray, label: str
) -> tuple[np.ndarray, float]:
    """(how much each value — ``base`` at P, flattened — changes when every parameter moves
    by one ulp at random, the size η of that move): ``harness.noise.perturbed``, seeded by
    the case."""
    rng = np.random.default_rng(zlib.crc32(label.encode()))
    moved = noise.perturbed(P, rng)
    eta = float(np.sqrt(sum(float(np.sum((moved[k] - P[k]) ** 2)) for k in P)))
    with np.errstate(invalid="ignore"):
        change = np.abs(np.asarray(evaluate_at(moved), dtype=np.float64).ravel() - base)
    return np.nan_to_num(change, nan=np.inf), eta


def _settle(evaluate, evaluate_at, P, base, smooth, h, rounding, label, groups, confirm=False):
    """The stencil of every value along the direction, honest about two things the
    values' own rounding (4ε of their scale) does not show.

    Rounding as the values carry it: an unroll's state amplifies the rounding of every
    step (its tangent grows 1.3× per step at σ = 1.3), so the rounding term is at least
    4× the largest change in its group (below) under a one-ulp move of the parameters.

    Where the derivative cannot be resolved at all: a smooth value's change under the move
    is its gradient times the move, and its gradient along a random direction is within a
    factor √n of its slope along u; a value that changes by more than ROUGH·(|d|·η + 4ε
    of its scale) varies on a scale finer than any step (at σ = 1.3, T = 1000, h_t moves
    by 0.7 under one ulp while its tangent is 3e15), and the secant over the step is no
    derivative at all, however sound it looks. Roughness belongs to the computation at a
    step, not to one element: one rough element makes its group (a tensor; a step of an
    unroll's tap) unresolved, since its neighbours' secants are no better, only luckier
    under this one move."""
    change, eta = _ulp_response(evaluate_at, P, base, label)
    cuts = np.cumsum(groups)[:-1]

    def per_group(values: np.ndarray, reduce) -> np.ndarray:
        return np.repeat([reduce(g) for g in np.split(values, cuts)], groups)

    noise_level = per_group(change, lambda g: float(np.max(g, initial=0.0)))
    d, err = stencil_each(evaluate, smooth, h, np.maximum(rounding, 4 * noise_level), confirm)
    with np.errstate(invalid="ignore"):
        rough = ~(change <= ROUGH * (np.abs(d) * eta + rounding))
    return d, np.where(per_group(rough, lambda g: bool(g.any())), np.inf, err)


def _groups(values: dict[str, np.ndarray], steps: dict[str, int | None]) -> list[int]:
    """The sizes of the flattened groups of ``values``: a tensor, or one step of a tap in
    an unroll (in the order of ``_rounding`` and ``_unflatten``)."""
    out: list[int] = []
    for name, v in values.items():
        size = int(np.size(v))
        if steps.get(name) is not None and np.ndim(v):
            out += [size // len(v)] * len(v)
        else:
            out.append(size)
    return out


def _unflatten(flat: np.ndarray, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, v in like.items():
        size = int(np.size(v))
        out[name] = flat[start : start + size].reshape(np.shape(v))
        start += size
    return out


class NumericBackend(Backend):
    name = "numeric"
    derivation = "numeric"

    def gradient(self, case, params, inputs, dtype):
        P = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        X = {
            k: np.asarray(v, dtype=np.float64) if v.dtype.kind == "f" else v
            for k, v in inputs.items()
        }
        start = time.perf_counter()
        probe = NumpyNamespace()
        loss = float(case.loss(probe, P, X))
        base_step = SMOOTH_STEP if case.smooth else KINK_STEP
        rounding = 4 * EPS * max(abs(loss), np.finfo(np.float64).tiny)

        def on_directions(key, value: np.ndarray, evaluate) -> Directional:
            """⟨dL/dθ, v⟩ for DIRECTIONS unit directions v: moving θ by t·v costs one
            evaluation per stencil point, whatever the size of θ."""
            rng = np.random.default_rng(zlib.crc32(repr(key).encode()))
            h = base_step * max(1.0, float(np.max(np.abs(value), initial=0.0)))
            found = along_directions(
                lambda delta: evaluate(..., delta), value.shape, case.smooth, h, rounding, rng
            )
            return Directional(*found)

        tensors: dict[tuple[str, str], tuple[np.ndarray, Any]] = {}
        for name, value in P.items():

            def evaluate(i, t, name=name, value=value):
                moved = value.copy()
                moved[i] += t
                return float(case.loss(NumpyNamespace(), {**P, name: moved}, X))

            tensors[("param", name)] = (value, evaluate)
        for name, seen in probe.values.items():
            value = seen[0] if probe.tap_steps[name] is None else np.stack(seen)

            def evaluate(i, t, name=name, shape=value.shape):
                delta = np.zeros(shape)
                delta[i] = t
                return float(case.loss(NumpyNamespace({name: delta}), P, X))

            tensors[("tap", name)] = (value, evaluate)

        total = sum(value.size for value, _ in tensors.values())
        grads, taps, unc, directional = {}, {}, {}, {}
        for key, (value, evaluate) in tensors.items():
            if total <= MAX_ELEMENTWISE:
                grad, unc[key] = per_element(evaluate, value, case.smooth, base_step, rounding)
                (grads if key[0] == "param" else taps)[key[1]] = grad
            else:
                directional[key] = on_directions(key, value, evaluate)
        unc[("loss", "loss")] = np.asarray(rounding)
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,  # the run's dtype; the arithmetic here is always float64
            loss=loss,
            grads=grads,
            taps=taps,
            tap_steps=dict(probe.tap_steps),
            uncertainty=unc,
            seconds=time.perf_counter() - start,
            directional=directional,
            obtained_by="directional" if directional else "elementwise",
        )

    def _setup(self, case, params, inputs, direction):
        P = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        X = {
            k: np.asarray(v, dtype=np.float64) if v.dtype.kind == "f" else v
            for k, v in inputs.items()
        }
        D = {k: np.asarray(direction[k], dtype=np.float64) for k in P}
        scale = max([1.0, *(float(np.max(np.abs(v), initial=0.0)) for v in P.values())])
        step = (SMOOTH_STEP if case.smooth else KINK_STEP) * scale
        return P, X, D, step

    def jvp(self, case, params, inputs, dtype, tangent):
        """J_L·u and J_v·u per tap: the stencil along u on the loss and the taps."""
        P, X, U, h = self._setup(case, params, inputs, tangent)
        start = time.perf_counter()
        probe = NumpyNamespace()
        loss = float(case.loss(probe, P, X))
        steps = dict(probe.tap_steps)
        values = {"": np.asarray(loss)}
        values.update(
            {n: seen[0] if steps[n] is None else np.stack(seen) for n, seen in probe.values.items()}
        )

        def evaluate_at(p):
            ops = NumpyNamespace()
            parts = [np.asarray(case.loss(ops, p, X), dtype=np.float64).ravel()]
            for n, seen in ops.values.items():
                parts.append((seen[0] if steps[n] is None else np.stack(seen)).ravel())
            return np.concatenate(parts)

        def evaluate(t):
            return evaluate_at({k: P[k] + t * U[k] for k in P})

        base = np.concatenate([np.ravel(v) for v in values.values()])  # the values at P
        d, err = _settle(
            evaluate,
            evaluate_at,
            P,
            base,
            case.smooth,
            h,
            _rounding(values, steps),
            case.label,
            _groups(values, steps),
            confirm=True,
        )
        d, err = _unflatten(d, values), _unflatten(err, values)
        unc = {("loss", "loss"): err.pop("")}
        unc.update({("tap", n): e for n, e in err.items()})
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            mode="fwd",
            loss=loss,
            tangent=float(d.pop("")),
            taps=d,
            tap_steps=steps,
            uncertainty=unc,
            seconds=time.perf_counter() - start,
            obtained_by="elementwise",
        )

    def hvp(self, case, params, inputs, dtype, vector):
        """H·v: the stencil along v on the reference tape's gradient."""
        if not case.smooth:
            raise NotApplicable(NO_SECOND)
        from harness.backends.reference_tape import ReferenceBackend

        P, X, V, h = self._setup(case, params, inputs, vector)
        tape = ReferenceBackend()
        start = time.perf_counter()
        first = tape.gradient(case, P, X, "float64")

        def evaluate_at(p):
            return np.concatenate(
                [np.ravel(tape.gradient(case, p, X, "float64").grads[k]) for k in P]
            )

        def evaluate(t):
            return evaluate_at({k: P[k] + t * V[k] for k in P})

        base = np.concatenate([np.ravel(first.grads[k]) for k in P])  # the gradient at P
        d, err = _settle(
            evaluate,
            evaluate_at,
            P,
            base,
            True,
            h,
            _rounding(first.grads, {}),
            case.label,
            _groups(first.grads, {}),
        )
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            mode="hvp",
            loss=first.loss,
            grads=_unflatten(d, first.grads),
            uncertainty={("param", k): e for k, e in _unflatten(err, first.grads).items()},
            seconds=time.perf_counter() - start,
            obtained_by="elementwise",
        )
