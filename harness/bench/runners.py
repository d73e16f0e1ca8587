"""What ``gradparity bench`` times: per backend, the objective and the gradient of a case.

Each backend is prepared once per case into two zero-argument callables:

- ``objective()``: the loss alone, computed the way that backend computes it without
  recording anything for a gradient — reference: the tape's own primitives on Tensors
  that do not require grad (nothing is recorded); manual: its forward function; torch:
  under ``torch.no_grad()``; jax: ``jit`` of the loss alone.
- ``gradient()``: the loss and its gradient with respect to every parameter — reference:
  record and ``backward()``; manual: forward, then its hand-derived backward; torch:
  ``torch.autograd.grad``; jax: ``jit(value_and_grad)``.

Taps are off in both (a tap is gradparity's instrumentation, not part of the loss's
gradient), except in ``manual``, whose BPTT computes dL/dh_t at every step anyway.
JAX compiles before timing; its compile times are kept apart. GPU work is synchronised
before a callable returns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.cases.base import Arrays, Case

BENCH_BACKENDS = ["reference", "manual", "torch", "jax"]
GPU_BACKENDS = ["torch", "jax"]


@dataclass
class Prepared:
    objective: Callable[[], Any]
    gradient: Callable[[], Any]
    compile_s: float = math.nan  # jax: compiling loss + gradient
    objective_compile_s: float = math.nan  # jax: compiling the loss alone
    memory_bytes: float = math.nan  # jax: XLA's own count of the gradient's buffers
    record: Callable[[], Any] | None = None  # numpy backends: the forward, keeping what
    # the backward will need (the tape's graph, manual's cache), returned to hold it alive


def prepare(backend: str, case: Case, params: Arrays, inputs: Arrays, device: str = "cpu"):
    """The two callables of ``backend`` for ``case`` (see the module docstring)."""
    makers = {"reference": _reference, "manual": _manual, "torch": _torch, "jax": _jax}
    if backend not in makers:
        raise ValueError(f"bench times {', '.join(makers)}; not {backend!r}")
    if device != "cpu" and backend not in GPU_BACKENDS:
        raise ValueError(f"backend {backend!r} runs on the CPU only, not on {device!r}")
    return makers[backend](case, params, inputs, device)


# --- reference: the numpy tape ------------------------------------------------------------


def _reference(case: Case, params: Arrays, inputs: Arrays, device: str) -> Prepared:
    import reference as R
    from harness.backends.reference_tape import ReferenceNamespace

    class Untapped(ReferenceNamespace):
        def _watch(self, name, x, step):
            return x

    X = {k: R.Tensor(v) for k, v in inputs.items()}

    def objective():
        P = {k: R.Tensor(v) for k, v in params.items()}  # no grad: the tape records nothing
        return R.engine.as_tensor(case.loss(Untapped(), P, X)).value

    def record():
        P = {k: R.Tensor(v, requires_grad=True) for k, v in params.items()}
        return R.engine.as_tensor(case.loss(Untapped(), P, X)), P

    def gradient():
        loss, P = record()
        loss.backward()
        return {k: t.grad for k, t in P.items()}

    return Prepared(objective, gradient, record=record)


# --- manual: hand-derived forward and backward ---------------------------------------------


def _manual(case: Case, params: Arrays, inputs: Arrays, device: str) -> Prepared:
    """The forward that the case's declared hand-derived backprop (``Case.manual``) runs
    before its backward, and that backprop; where the declaration has a backward of the
    parameters alone (the MLP: no dL/dX for the h[0] tap), that one, as the other
    backends' gradients are of the parameters only."""
    from harness.backends.manual import declared, runner_for

    run = runner_for(case)  # raises NotApplicable for a case without a hand-derived backward
    manual = declared(case)
    assert manual is not None  # runner_for has refused a case that declares none
    forward = lambda: manual.forward(case, params, inputs)
    gradient = lambda: run(case, params, inputs)
    backward = manual.parameter_backward
    if backward is not None:
        gradient = lambda: backward(case, forward()[1])
    return Prepared(lambda: forward()[0], gradient, record=forward)


# --- torch eager ----------------------------------------------------------------------------


def _torch(case: Case, params: Arrays, inputs: Arrays, device: str) -> Prepared:
    from harness.backends.torch_autograd import TorchNamespace, _torch

    torch = _torch()

    class Untapped(TorchNamespace):
        def _watch(self, name, x, step):
            return x

    dev = torch.device(device)
    P = {k: torch.as_tensor(v, device=dev) for k, v in params.items()}
    leaves = {k: t.clone().requires_grad_(True) for k, t in P.items()}
    X = {k: torch.as_tensor(v, device=dev) for k, v in inputs.items()}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def objective():
        with torch.no_grad():
            loss = case.loss(Untapped(), P, X)
        sync()
        return loss

    def gradient():
        loss = case.loss(Untapped(), leaves, X)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        sync()
        return grads

    return Prepared(objective, gradient)


# --- jax: jit, compiled before timing ------------------------------------------------------


def _jax(case: Case, params: Arrays, inputs: Arrays, device: str) -> Prepared:
    from harness.backends.jax_grad import JaxNamespace, _jax

    jax, _ = _jax()
    platform = "cpu" if device == "cpu" else "gpu"
    dev = jax.devices(platform)[0]
    with jax.enable_x64(True):
        P = jax.device_put(dict(params), dev)
        X = jax.device_put(dict(inputs), dev)

        def loss_fn(p, x):  # inputs are arguments, not constants folded into the program
            return case.loss(JaxNamespace(), p, x)

        start = time.perf_counter()
        objective_c = jax.jit(loss_fn).lower(P, X).compile()
        objective_compile_s = time.perf_counter() - start
        start = time.perf_counter()
        gradient_c = jax.jit(jax.value_and_grad(loss_fn)).lower(P, X).compile()
        compile_s = time.perf_counter() - start
    try:
        stats = gradient_c.memory_analysis()
        memory = float(stats.temp_size_in_bytes + stats.output_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every XLA backend reports it
        memory = math.nan

    def objective():
        return jax.block_until_ready(objective_c(P, X))

    def gradient():
        return jax.block_until_ready(gradient_c(P, X))

    return Prepared(objective, gradient, compile_s, objective_compile_s, memory)


__all__ = ["BENCH_BACKENDS", "GPU_BACKENDS", "Prepared", "prepare"]
