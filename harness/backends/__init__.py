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
# What ``validate`` holds a plug-in against unless told otherwise: the tape, the
# hand-derived backprop (where the case has one) and finite differences. They are three
# derivations that share no code, so a baseline that is wrong is outvoted (the odd one
# out), and all three are numpy: a verdict waits for no framework import (torch's and
# jax's take about a second each, cold). ``ALL`` asks for every backend of ``run``.
DEFAULT_REFERENCES = ["reference", "manual", "numeric"]
ALL = "all"


class UnknownBackend(ValueError):
    pass


def references_asked(asked: str | list[str] | None, baseline: str | None = None) -> list[str]:
    """The references of a validation: ``asked`` as given, in order and without repeats,
    ``ALL`` standing for every backend of ``run`` (DEFAULT_BACKENDS); None for the
    DEFAULT_REFERENCES, with the ``baseline`` where one is named that is not among them
    (``--baseline torch`` alone asks for torch beside them)."""
    if asked is None:
        return list(dict.fromkeys([*DEFAULT_REFERENCES, *([baseline] if baseline else [])]))
    asked = [asked] if isinstance(asked, str) else list(asked)  # one name is a name
    names = [n for a in asked for n in (DEFAULT_BACKENDS if a == ALL else [a])]
    if not names:
        raise ValueError(
            f"a validation needs at least one reference (default: {', '.join(DEFAULT_REFERENCES)}; "
            f"{ALL!r}: every backend)"
        )
    return list(dict.fromkeys(names))


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
    "DEFAULT_REFERENCES",
    "ALL",
    "references_asked",
    "DEFAULT_BASELINE",
    "UnknownBackend",
    "get_backend",
]
