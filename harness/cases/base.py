"""What a Case is, and the catalog that holds them.

A Case is one named computation, written once against ``ops``. It builds its parameters
(differentiated) and inputs (held fixed) from a seed, and computes a scalar loss. Its
class docstring states the math exactly; ``gradparity describe`` prints it.
"""

from __future__ import annotations

import fnmatch
import inspect
from typing import Any, ClassVar

import numpy as np

Arrays = dict[str, np.ndarray]

CATALOG: dict[str, type[Case]] = {}
FAMILIES = ["staged", "mlp", "elman", "lstm", "gru"]  # the order cases are listed and run in


class CaseError(ValueError):
    """An unknown case, an unknown option, or an option of the wrong type."""


class Case:
    """Base class: subclasses set ``name``, ``family``, ``options`` and write setup/loss."""

    name: ClassVar[str]
    family: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}  # sizes and switches, with their defaults
    smooth: ClassVar[bool] = (
        True  # False where the loss has kinks (relu): finite differences take a smaller step
    )
    slow: ClassVar[bool] = False  # left out of the default catalog run

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(self.options)
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in self.options.items()) or "none"
            raise CaseError(f"case {self.name!r} has no option {sorted(unknown)}; options: {known}")
        cfg = dict(self.options)
        for key, value in overrides.items():
            cfg[key] = _coerce(self.name, key, value, self.options[key])
        self.cfg = cfg

    def __getattr__(self, key: str) -> Any:  # self.T reads the option T
        cfg = self.__dict__.get("cfg", {})
        if key in cfg:
            return cfg[key]
        raise AttributeError(key)

    @property
    def label(self) -> str:
        """The name, with the options that differ from the defaults: ``lstm[T=1000]``."""
        changed = [f"{k}={v}" for k, v in self.cfg.items() if v != self.options[k]]
        return f"{self.name}[{','.join(changed)}]" if changed else self.name

    @classmethod
    def doc(cls) -> str:
        return inspect.getdoc(cls) or ""

    # --- what a subclass writes
    def setup(self, rng: np.random.Generator) -> tuple[Arrays, Arrays]:
        """Return (params, inputs) as float64 (or integer) numpy arrays."""
        raise NotImplementedError

    def loss(self, ops: Any, params: dict[str, Any], inputs: dict[str, Any]) -> Any:
        """The scalar loss, computed with Python operators and ``ops`` functions."""
        raise NotImplementedError

    # --- what the harness calls
    def build(self, seed: int = 0, dtype: str = "float64") -> tuple[Arrays, Arrays]:
        """Parameters and inputs for this seed, drawn in float64 and then cast to ``dtype``
        (so float32 and float64 runs start from the same numbers, rounded)."""
        params, inputs = self.setup(np.random.default_rng(seed))

        def cast(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a)
            return a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a

        return {k: cast(v) for k, v in params.items()}, {k: cast(v) for k, v in inputs.items()}


def _coerce(case: str, key: str, value: Any, default: Any) -> Any:
    """Turn a command-line string into the default's type (``T=1000`` -> 1000)."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        return type(default)(value)
    except ValueError:
        raise CaseError(
            f"case {case!r}: option {key}={value!r} is not a {type(default).__name__}"
        ) from None


def register(cls: type[Case]) -> type[Case]:
    """Class decorator: add a case to the catalog under its name."""
    if cls.name in CATALOG:
        raise CaseError(f"two cases are named {cls.name!r}")
    clashes = [k for k in cls.options if hasattr(cls, k)]
    if clashes:
        raise CaseError(f"case {cls.name!r}: options {clashes} hide attributes of the class")
    CATALOG[cls.name] = cls
    return cls


def select(patterns: list[str] | None = None, include_slow: bool = False) -> list[type[Case]]:
    """The cases that match: an exact name, a glob (``mlp_*``), a family, or a substring.

    No patterns: the default catalog (every case not marked slow). A pattern that matches
    nothing is an error listing what exists.
    """
    if not patterns:
        ordered = sorted(
            CATALOG.values(),
            key=lambda c: FAMILIES.index(c.family) if c.family in FAMILIES else len(FAMILIES),
        )
        return [c for c in ordered if include_slow or not c.slow]
    chosen: list[type[Case]] = []
    for pattern in patterns:
        hits = (
            [CATALOG[pattern]]
            if pattern in CATALOG
            else [c for n, c in CATALOG.items() if fnmatch.fnmatchcase(n, pattern)]
            or [c for c in CATALOG.values() if c.family == pattern]
            or [c for n, c in CATALOG.items() if pattern in n]
        )
        if not hits:
            raise CaseError(f"no case matches {pattern!r}; cases: {', '.join(CATALOG)}")
        chosen += [c for c in hits if c not in chosen]
    return chosen
