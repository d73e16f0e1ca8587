"""What ``gradparity bench`` times: per backend, the objective and the gradient of a case,
as that backend prepares them (``Backend.prepare``, a ``Prepared``: the loss alone and the
loss with its gradient, taps off). The bench runs nothing of its own: it looks the backend
up in the registry and times what it is handed.
"""

from __future__ import annotations

from harness.backends import get_backend
from harness.backends.base import Prepared
from harness.cases.base import Arrays, Case

BENCH_BACKENDS = ["reference", "manual", "torch", "jax"]
GPU_BACKENDS = [name for name in BENCH_BACKENDS if get_backend(name).gpu]


def prepare(
    backend: str, case: Case, params: Arrays, inputs: Arrays, device: str = "cpu"
) -> Prepared:
    """``backend``'s two callables for ``case`` on ``device`` (``Backend.prepare``)."""
    if backend not in BENCH_BACKENDS:
        raise ValueError(f"bench times {', '.join(BENCH_BACKENDS)}; not {backend!r}")
    prepared_by = get_backend(backend)
    if device != "cpu" and not prepared_by.gpu:
        raise ValueError(f"backend {backend!r} runs on the CPU only, not on {device!r}")
    return prepared_by.prepare(case, params, inputs, device)


__all__ = ["BENCH_BACKENDS", "GPU_BACKENDS", "Prepared", "prepare"]
