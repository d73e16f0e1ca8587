"""The ``jax`` backend: ``jax.value_and_grad`` under ``jit``, imported lazily.

Float64 is switched on only inside this backend's calls, with the ``jax.enable_x64``
context manager; the user's global JAX configuration is left as it was.

A tap adds a zero perturbation ε to the tapped value and differentiates with respect
to ε: dL/dε = dL/dv at ε = 0. Inside ``scan`` the per-step perturbations ride along
with the scanned inputs, so one ``lax.scan`` serves any T (compile time flat in T).

Forward mode is ``jax.jvp`` of the loss and the tapped values together: a namespace in
``record`` mode returns what each tap saw (inside ``scan``, as part of the scanned
outputs), so their tangents come out beside the loss's. H·v is ``jax.jvp`` of
``jax.grad`` (forward over reverse).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from harness.backends.base import CHAIN_START, Backend, BackendUnavailable, Prepared
from harness.namespace import Namespace, TapError, tree_map
from harness.result import Result


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise BackendUnavailable(
            f"the jax backend needs JAX ({e}); install it with `pip install jax`"
        ) from None
    return jax, jnp


def _compiled(fn, *args):
    """``fn`` under ``jit``, compiled ahead for ``args``, and the seconds compiling took."""
    jax, _ = _jax()
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


class JaxNamespace(Namespace):
    """``xp`` on jax arrays: ``jax.numpy`` (an array API namespace) and ``jax.nn`` for the
    extras; ``scan`` is one ``lax.scan``. With ``perturb=None`` it only records the taps'
    shapes."""

    name = "jax"

    def __init__(
        self,
        perturb: dict[str, Any] | None = None,
        scan_taps: list[list[str]] | None = None,
        record: bool = False,
    ) -> None:
        super().__init__()
        self.scan_taps = scan_taps or []  # from the probe: which taps each scan makes
        self.jax, self.jnp = _jax()
        self.standard = self.jnp
        self.perturb = perturb
        self.shapes: dict[str, tuple[tuple[int, ...], Any]] = {}
        self.scans: list[list[str]] = []  # the taps made inside each scan, in order
        self._eps_t: dict[str, Any] = {}
        self.record = record  # keep what each tap sees, in ``recorded`` (stacked over steps)
        self.recorded: dict[str, Any] = {}
        self._seen_t: dict[str, Any] = {}

    def _watch(self, name, x, step):
        x = self.jnp.asarray(x)
        if self.record:
            (self.recorded if step is None else self._seen_t)[name] = x
            return x
        if self.perturb is None:
            self.shapes[name] = (x.shape, x.dtype)
            return x
        return x + (self.perturb[name] if step is None else self._eps_t[name])

    def scan(self, step, init, xs=None, length=None):
        if self._step is not None:
            raise TapError("scan inside scan is not supported")
        if length is None:
            leaves: list[Any] = []
            tree_map(leaves.append, xs)
            length = len(leaves[0])
        index = len(self.scans)
        self.scans.append([])
        eps = {} if self.perturb is None else {n: self.perturb[n] for n in self.scan_taps[index]}

        def body(carry, x_and_eps):
            for name in self._scan_taps:  # lax.scan may trace the body more than once
                self.tap_steps.pop(name, None)
            self._scan_taps = set()
            self._seen_t = {}
            x_t, self._eps_t = x_and_eps
            carry, y = step(carry, x_t)
            return carry, (y, dict(self._seen_t))

        self._scan_taps = set()
        self._step = 0
        try:
            carry, (ys, seen) = self.jax.lax.scan(body, init, (xs, eps), length=length)
            self.recorded.update(seen)
        finally:
            self._step = None
        self.scans[index] = sorted(self._scan_taps)
        for name in self._scan_taps:
            self.tap_steps[name] = length
        return carry, ys

    def sigmoid(self, x):
        return self.jax.nn.sigmoid(x)

    def relu(self, x):
        return self.jax.nn.relu(x)

    def logsumexp(self, x, axis=None, keepdims=False):
        return self.jax.scipy.special.logsumexp(x, axis=axis, keepdims=keepdims)

    def softmax_cross_entropy(self, logits, labels):
        log_p = self.jax.nn.log_softmax(logits, axis=-1)
        picked = self.jnp.take_along_axis(log_p, labels[:, None], axis=-1)
        return -self.jnp.mean(picked)


class JaxBackend(Backend):
    name = "jax"
    gpu = True

    def gradient(self, case, params, inputs, dtype):
        jax, jnp = _jax()
        with jax.enable_x64(True):
            P = {k: jnp.asarray(v) for k, v in params.items()}
            X = {k: jnp.asarray(v) for k, v in inputs.items()}

            # Trace once (no arithmetic) to learn which taps exist and their shapes.
            probe = JaxNamespace(perturb=None)
            jax.eval_shape(lambda p: case.loss(probe, p, X), P)
            eps = {}
            for name, (shape, dt) in probe.shapes.items():
                steps = probe.tap_steps[name]
                eps[name] = jnp.zeros(shape if steps is None else (steps, *shape), dt)

            def loss_fn(p, e):
                return case.loss(JaxNamespace(perturb=e, scan_taps=probe.scans), p, X)

            compiled, compile_seconds = _compiled(
                jax.value_and_grad(loss_fn, argnums=(0, 1)), P, eps
            )
            start = time.perf_counter()
            loss, (gP, gE) = jax.block_until_ready(compiled(P, eps))
            seconds = time.perf_counter() - start
            return Result(
                case=case.label,
                backend=self.name,
                dtype=dtype,
                loss=float(loss),
                grads={k: np.asarray(v) for k, v in gP.items()},
                taps={k: np.asarray(gE[k]) for k in probe.shapes},
                tap_steps=dict(probe.tap_steps),
                seconds=seconds,
                compile_seconds=compile_seconds,
            )

    def prepare_chain(self, n_ops, device="cpu"):
        """JAX eager: op-by-op dispatch, ``jax.grad`` without jit, in float64."""
        jax, jnp = _jax()
        dev = jax.devices("cpu" if device == "cpu" else "gpu")[0]
        with jax.enable_x64(True):
            x = jax.device_put(np.full(1, CHAIN_START), dev)

        def chain(y):
            for _ in range(n_ops):
                y = jnp.tanh(y)
            return y

        def forward():
            with jax.enable_x64(True):
                return jax.block_until_ready(chain(x))

        def gradient():
            with jax.enable_x64(True):
                return jax.block_until_ready(jax.grad(lambda y: chain(y).sum())(x))

        return Prepared(forward, gradient)

    def prepare(self, case, params, inputs, device="cpu"):
        """``jit`` of the loss alone and of ``value_and_grad``, both compiled here (their
        compile times kept apart) with the inputs as arguments; the gradient's memory is
        XLA's own analysis of its buffers (temporaries + outputs). Taps are off: a
        namespace without perturbations only notes their shapes."""
        jax, _ = _jax()
        dev = jax.devices("cpu" if device == "cpu" else "gpu")[0]
        with jax.enable_x64(True):
            P = jax.device_put(dict(params), dev)
            X = jax.device_put(dict(inputs), dev)

            def loss_fn(p, x):  # inputs are arguments, not constants folded into the program
                return case.loss(JaxNamespace(), p, x)

            objective_c, objective_compile_s = _compiled(loss_fn, P, X)
            gradient_c, compile_s = _compiled(jax.value_and_grad(loss_fn), P, X)
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

    def _timed(self, fn, *args):
        """(fn(*args), compile seconds, run seconds) of ``fn`` under ``jit``."""
        jax, _ = _jax()
        compiled, compile_seconds = _compiled(fn, *args)
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        return out, compile_seconds, time.perf_counter() - start

    def jvp(self, case, params, inputs, dtype, tangent):
        jax, jnp = _jax()
        with jax.enable_x64(True):
            P = {k: jnp.asarray(v) for k, v in params.items()}
            U = {k: jnp.asarray(tangent[k]) for k in params}
            X = {k: jnp.asarray(v) for k, v in inputs.items()}
            steps: dict[str, int | None] = {}

            def loss_and_taps(p):
                ops = JaxNamespace(record=True)
                loss = case.loss(ops, p, X)
                steps.update(ops.tap_steps)
                return loss, ops.recorded

            def pushed(p, u):
                return jax.jvp(loss_and_taps, (p,), (u,))

            ((loss, _), (dloss, dtaps)), compile_s, run_s = self._timed(pushed, P, U)
            return Result(
                case=case.label,
                backend=self.name,
                dtype=dtype,
                mode="fwd",
                loss=float(loss),
                tangent=float(dloss),
                taps={k: np.asarray(v) for k, v in dtaps.items()},
                tap_steps=steps,
                seconds=run_s,
                compile_seconds=compile_s,
            )

    def hvp(self, case, params, inputs, dtype, vector):
        jax, jnp = _jax()
        with jax.enable_x64(True):
            P = {k: jnp.asarray(v) for k, v in params.items()}
            V = {k: jnp.asarray(vector[k]) for k in params}
            X = {k: jnp.asarray(v) for k, v in inputs.items()}

            def loss(p):
                return case.loss(JaxNamespace(record=True), p, X)

            def hv(p, v):
                (value, _), (_, out) = jax.jvp(jax.value_and_grad(loss), (p,), (v,))
                return value, out

            (value, out), compile_s, run_s = self._timed(hv, P, V)
            return Result(
                case=case.label,
                backend=self.name,
                dtype=dtype,
                mode="hvp",
                loss=float(value),
                grads={k: np.asarray(v) for k, v in out.items()},
                seconds=run_s,
                compile_seconds=compile_s,
            )
