"""The backends, by name. Each module is imported only when its backend is asked for,
so that ``gradparity list`` is instant and a missing framework is a clear message."""

from __future__ import annotations

import importlib

from harness.backends.base import Backend, BackendUnavailable, NotApplicable
from harness.result import DEFAULT_BASELINE

# name -> (module, class); the order is the order of columns in tables
REGISTRY: dict[str, tuple[str, str]] = {
    "reference": ("harness.backends.reference_tape", "ReferenceBackend"),
    "torch": ("harness.backends.torch_autograd", "TorchBackend"),
    "jax": ("harness.backends.jax_grad", "JaxBackend"),
    "numeric": ("harness.backends.numeric", "NumericBackend"),
    "manual": ("harness.backends.hand_derived", "ManualBackend"),
}
DEFAULT_BACKENDS = ["reference", "manual", "torch", "jax", "numeric"]


class UnknownBackend(ValueError):
    pass


def get_backend(name: str) -> Backend:
    """An instance of the backend called ``name``."""
    if name not in REGISTRY:
        raise UnknownBackend(f"no backend {name!r}; backends: {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name]
    return getattr(importlib.import_module(module), cls)()


__all__ = [
    "Backend",
    "BackendUnavailable",
    "NotApplicable",
    "REGISTRY",
    "DEFAULT_BACKENDS",
    "DEFAULT_BASELINE",
    "UnknownBackend",
    "get_backend",
]
