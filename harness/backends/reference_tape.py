"""The ``reference`` backend: the hand-written numpy tape in ``reference/``."""

from __future__ import annotations

import time

import numpy as np

import reference
import reference.forward
import reference.xp as tape_xp
from harness.backends.base import CHAIN_START, Backend, Prepared, Untapped
from harness.namespace import Namespace
from harness.result import Result
from reference.forward import Dual


class ReferenceNamespace(Namespace):
    """``xp`` on reference Tensors: the tape's array API namespace (``reference.xp``) and
    its primitives for the extras. A tap is an identity node whose gradient is kept."""

    name = "reference"
    standard = tape_xp

    def __init__(self) -> None:
        super().__init__()
        self.watched: dict[str, list[reference.Tensor]] = {}

    def _watch(self, name, x, step):
        x = reference.engine.as_tensor(x)
        watched = (
            reference.apply("add", x, 0)
            if x.requires_grad
            else reference.Tensor(x.value, requires_grad=True)
        )
        self.watched.setdefault(name, []).append(watched.retain_grad())
        return watched

    sigmoid = staticmethod(reference.sigmoid)
    relu = staticmethod(reference.relu)
    logsumexp = staticmethod(reference.logsumexp)
    softmax_cross_entropy = staticmethod(reference.softmax_cross_entropy)


class UntappedNamespace(Untapped, ReferenceNamespace):
    """The tape's ``xp`` with taps off: the loss and its gradient alone."""


class ForwardNamespace(ReferenceNamespace):
    """``xp`` for forward mode on the tape's primitives: the values are Duals (or, for
    ``hvp``, Duals of Tensors); a tap keeps the value it sees, and with it its tangent."""

    name = "reference (fwd)"

    def _watch(self, name, x, step):
        self.watched.setdefault(name, []).append(x)
        return x


def tangent_of(x, dtype) -> np.ndarray:
    """The tangent a Dual carries (0 for a value that does not depend on θ)."""
    if type(x) is Dual:
        return np.asarray(reference.forward.plain(x.tangent), dtype=dtype)
    return np.zeros(np.shape(reference.forward.plain(x)), dtype)


def collect_taps(ops: Namespace, watched: dict[str, list], grad_of) -> dict[str, np.ndarray]:
    """dL/d(tap) per name; a tap inside a scan is stacked along a leading step axis."""
    taps = {}
    for name, values in watched.items():
        grads = [grad_of(v) for v in values]
        taps[name] = grads[0] if ops.tap_steps[name] is None else np.stack(grads)
    return taps


def tensors(arrays, requires_grad: bool = False) -> dict[str, reference.Tensor]:
    """The tape's Tensors of ``arrays``; with ``requires_grad``, leaves the tape records."""
    return {k: reference.Tensor(v, requires_grad=requires_grad) for k, v in arrays.items()}


def loss_of(case, ops, P, X) -> reference.Tensor:
    """The case's loss on the tape, as a Tensor (recorded where ``P`` requires grad)."""
    return reference.engine.as_tensor(case.loss(ops, P, X))


class ReferenceBackend(Backend):
    name = "reference"

    def gradient(self, case, params, inputs, dtype):
        ops = ReferenceNamespace()
        P = tensors(params, requires_grad=True)
        X = tensors(inputs)
        start = time.perf_counter()
        loss = loss_of(case, ops, P, X)
        loss.backward()
        seconds = time.perf_counter() - start

        def grad_of(t: reference.Tensor) -> np.ndarray:
            return np.zeros_like(t.value) if t.grad is None else t.grad

        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            loss=float(loss.value),
            grads={k: grad_of(t) for k, t in P.items()},
            taps=collect_taps(ops, ops.watched, grad_of),
            tap_steps=dict(ops.tap_steps),
            seconds=seconds,
        )

    def prepare_chain(self, n_ops, device="cpu"):
        """On the tape: the forward without recording, the gradient by ``backward``."""
        value = np.full(1, CHAIN_START)

        def run(requires_grad: bool):
            x = y = reference.Tensor(value, requires_grad=requires_grad)
            for _ in range(n_ops):
                y = reference.tanh(y)
            if requires_grad:
                y.backward(np.ones(1))
                return x.grad
            return y.value

        return Prepared(lambda: run(False), lambda: run(True))

    def prepare(self, case, params, inputs, device="cpu"):
        """The objective on Tensors that do not require grad (the tape records nothing);
        the gradient records and runs ``backward()``; ``record`` is that recording alone."""
        X = tensors(inputs)

        def objective():
            return loss_of(case, UntappedNamespace(), tensors(params), X).value

        def record():
            P = tensors(params, requires_grad=True)
            return loss_of(case, UntappedNamespace(), P, X), P

        def gradient():
            loss, P = record()
            loss.backward()
            return {k: t.grad for k, t in P.items()}

        return Prepared(objective, gradient, record=record)

    def jvp(self, case, params, inputs, dtype, tangent):
        """Dual numbers through the case: ``reference.forward`` on the same primitives."""
        ops = ForwardNamespace()
        X = tensors(inputs)
        start = time.perf_counter()
        loss, dloss = reference.forward.jvp(lambda P: case.loss(ops, P, X), params, tangent)
        seconds = time.perf_counter() - start
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            mode="fwd",
            loss=float(reference.forward.plain(loss)),
            tangent=float(reference.forward.plain(dloss)),
            taps=collect_taps(ops, ops.watched, lambda x: tangent_of(x, dtype)),
            tap_steps=dict(ops.tap_steps),
            seconds=seconds,
        )

    def hvp(self, case, params, inputs, dtype, vector):
        """The tape's reverse pass over forward mode (``reference.forward.hvp``)."""
        ops = ForwardNamespace()
        X = tensors(inputs)
        start = time.perf_counter()
        loss, hv = reference.forward.hvp(lambda P: case.loss(ops, P, X), params, vector)
        seconds = time.perf_counter() - start
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            mode="hvp",
            loss=loss,
            grads={k: np.asarray(hv[k], dtype=dtype) for k in params},
            seconds=seconds,
        )
