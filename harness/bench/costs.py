"""Two measurements of ``gradparity bench`` beside the per-case timings.

- Per-operation overhead: a chain of N tiny operations (``tanh`` of a 1-element float64
  array, N times), timed forward alone and forward + backward, divided by N. On arrays
  this small the arithmetic is nothing, and what is left is what each implementation
  spends per operation: numpy's own call (``manual``: the forward loop storing every value
  and the backward loop ``g ← g·(1 − y²)`` written by hand), the tape's node, torch eager's
  dispatch and autograd node, and JAX eager's op-by-op dispatch (``jax.grad`` without jit).
  Each backend prepares its chain itself (``Backend.prepare_chain``).
- The cost of checking, on an MLP of about 1M parameters: gradparity's full comparison
  (every backend, ``harness.compare_backends``) against what ``torch.autograd.gradcheck``
  would need (it perturbs every element: two forward passes each), and the number of
  forward passes the directional finite-difference check makes.
"""

from __future__ import annotations

import math
import time

from harness.backends import get_backend
from harness.bench.memory import time_pair
from harness.bench.runners import Prepared

CHAIN_BACKENDS = ["manual", "reference", "torch", "jax"]


def _chain(backend: str, n_ops: int, device: str) -> Prepared:
    """The tanh chain of ``n_ops`` operations as ``backend`` prepares it
    (``Backend.prepare_chain``): the bench runs nothing of its own."""
    if backend not in CHAIN_BACKENDS:
        raise ValueError(f"no tanh chain for backend {backend!r}")
    return get_backend(backend).prepare_chain(n_ops, device)


def per_op_overhead(n_ops: int, backends: list[str], device: str, repeats: int) -> list[dict]:
    """Rows: seconds per operation, forward alone and forward + backward."""
    rows = []
    for backend in backends:
        timing = time_pair(_chain(backend, n_ops, device), repeats, min(3, repeats), 3.0)
        rows.append(
            {
                "experiment": "per_op",
                "case": "tanh_chain",
                "size": f"N={n_ops}",
                "backend": backend,
                "device": device if backend in ("torch", "jax") else "cpu",
                "objective_s": timing.objective_s / n_ops,
                "gradient_s": timing.gradient_s / n_ops,
                "objective_cpu_s": timing.objective_cpu_s / n_ops,
                "gradient_cpu_s": timing.gradient_cpu_s / n_ops,
                "repeats": timing.repeats,
                "note": "seconds per operation (1-element float64 tanh)"
                + (
                    "; JAX eager: op-by-op dispatch, jax.grad without jit"
                    if backend == "jax"
                    else ""
                ),
            }
        )
    return rows


# --- the cost of checking --------------------------------------------------------------------


def _count_forward_passes(case):
    """Wrap ``case.loss`` so that calls made with the numeric backend's ops are counted."""
    from harness.backends.numeric import NumpyNamespace

    counter = {"numeric": 0}
    loss = case.loss

    def counted(ops, params, inputs):
        if isinstance(ops, NumpyNamespace):
            counter["numeric"] += 1
        return loss(ops, params, inputs)

    case.loss = counted  # an instance attribute: this case object only
    return counter


def checking_cost(big: dict, small: dict, repeats: int) -> list[dict]:
    """Rows for the cost of checking one MLP of ``big`` options (see the module doc);
    gradcheck is measured on an MLP of ``small`` options and extrapolated."""
    from harness.backends.torch_autograd import UntappedNamespace, _torch
    from harness.bench.runners import prepare
    from harness.cases import CATALOG
    from harness.finite_differences import DIRECTIONS
    from harness.runner import compare_backends

    torch = _torch()
    case = CATALOG["mlp"](**big)
    params, inputs = case.build(0)
    n_params = int(sum(v.size for v in params.values()))
    label = f"{case.label} ({n_params:,} parameters)"
    counter = _count_forward_passes(case)
    backends = ["reference", "manual", "torch", "jax", "numeric"]
    start = time.perf_counter()
    comparison = compare_backends([case], backends)
    full_s = time.perf_counter() - start
    by_backend = {r.backend: r for r in comparison.results}
    numeric_result = by_backend["numeric"]
    tensors = [*params, *numeric_result.tap_steps]
    stencil = 6 if case.smooth else 4  # f(±h), f(±2h) (and f(±4h) for the smooth stencil)
    passes = counter["numeric"]
    expected = 1 + len(tensors) * DIRECTIONS * stencil
    numpy_forward_s = numeric_result.seconds / max(passes, 1)

    torch_forward = prepare("torch", case, params, inputs)
    forward_s = time_pair(torch_forward, repeats, min(3, repeats), 3.0).objective_s

    small_case = CATALOG["mlp"](**small)
    small_params, small_inputs = small_case.build(0)
    names = list(small_params)
    X = {k: torch.as_tensor(v) for k, v in small_inputs.items()}

    def loss_of(*tensors):
        return small_case.loss(UntappedNamespace(), dict(zip(names, tensors, strict=True)), X)

    leaves = [torch.tensor(small_params[k], requires_grad=True) for k in names]
    n_small = int(sum(v.size for v in small_params.values()))
    start = time.perf_counter()
    torch.autograd.gradcheck(loss_of, leaves, eps=1e-6, atol=1e-5, rtol=1e-3)
    gradcheck_small_s = time.perf_counter() - start
    elements = n_params + sum(  # a tap's directions have shape (DIRECTIONS, *tap shape)
        d.directions.size // DIRECTIONS
        for key, d in numeric_result.directional.items()
        if key[0] == "tap"
    )

    def row(backend: str, seconds: float, passes=math.nan, note="", extrapolated=False):
        return {
            "experiment": "checking",
            "case": "mlp",
            "size": label,
            "backend": backend,
            "device": "cpu",
            "gradient_s": seconds,
            "forward_passes": passes,
            "extrapolated": extrapolated,
            "note": note,
        }

    rows = [
        row("gradparity (all backends)", full_s, note="compare_backends: " + ", ".join(backends)),
        *[
            row(name, r.seconds, note=f"Result.seconds ({r.obtained_by})")
            for name, r in by_backend.items()
        ],
        row("numeric directional", numeric_result.seconds, passes,
            f"{len(tensors)} tensors × {DIRECTIONS} directions × {stencil} stencil "
            f"points + 1 = {expected} forward passes at least (a direction whose estimate is "
            f"too coarse is redone with a smaller step, up to 4 times); counted {passes}"),
        row("numeric elementwise", (1 + stencil * elements) * numpy_forward_s,
            1 + stencil * elements,
            f"{elements:,} elements (parameters and taps) × {stencil} stencil points + 1, "
            f"at {numpy_forward_s * 1e3:.3g} ms per numpy forward", extrapolated=True),
        row("gradcheck (measured, small model)", gradcheck_small_s, note=(
            f"torch.autograd.gradcheck on {small_case.label} ({n_small} parameters): "
            f"{gradcheck_small_s / n_small * 1e3:.3g} ms per element")),
        row("gradcheck per-element rate × n", gradcheck_small_s / n_small * n_params,
            2 * n_params, "the small model's seconds per element × the parameter count "
            "(a lower bound: each forward of the large model costs more)", extrapolated=True),
        row("gradcheck 2 forwards × n", 2 * n_params * forward_s, 2 * n_params,
            f"2 forward passes per parameter × {forward_s * 1e3:.3g} ms (torch no_grad "
            "forward of this model)", extrapolated=True),
    ]  # fmt: skip
    return rows


__all__ = ["CHAIN_BACKENDS", "checking_cost", "per_op_overhead"]
