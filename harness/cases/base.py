"""What a Case is, and the catalog that holds them.

A Case is one named computation, written once against ``xp`` (the array API standard
and gradparity's extras, ``harness.namespace``). It builds its parameters
(differentiated) and inputs (held fixed) from a seed, and computes a scalar loss. Its
class docstring states the math exactly; ``gradparity describe`` prints it.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.cases.family import FAMILIES, Family, family_of

Arrays = dict[str, np.ndarray]

CATALOG: dict[str, type[Case]] = {}


class CaseError(ValueError):
    """An unknown case, an unknown option, or an option of the wrong type or range."""


# --- what a case's check needs in memory (``Case.footprint``) ------------------------------

ITEM = 8  # bytes of an element: every case draws in float64
ARRAY_COPIES = 5
TENSOR_COPIES = 14
GRAPH_COPIES = 0.75
VALUE_BYTES = 1024
FOOTPRINT_FACTOR = 2  # the estimate is within this factor of the measured peak (see below)


def footprint_of(arrays: int, tensors: int, graph: int, values: int) -> int:
    """Bytes the default check of a case (``gradparity run --case NAME``: the default
    backends, the noise floor on the baseline, reverse mode) needs at its peak, beyond the
    libraries themselves, estimated from four counts the case makes from its options:

      ITEM · (ARRAY_COPIES·arrays + TENSOR_COPIES·tensors + GRAPH_COPIES·graph)
        + VALUE_BYTES·values

    - ``arrays``: the elements of the parameters and inputs ``setup`` draws. The check
      holds several copies: the drawn ones, a fresh copy for each backend's call, the
      library's own (torch's tensors, JAX's buffers), a perturbed one per noise run, and
      what setup itself computes on the way (an SVD for a recurrent matrix);
    - ``tensors``: the elements compared, a gradient per parameter and every tap. Each
      default backend's Result keeps them (five), the noise floor keeps its running range
      and the run in hand, the finite differences their directions and stencil points, and
      the comparison its differences and scales;
    - ``graph``: the elements of the values the forward computes that reverse mode reads
      in the backward (the tape's graph over T steps, torch's saved tensors, JAX's scan
      residuals): only the backend running holds its graph, and views and values freed
      as the backward walks back make it less than one copy;
    - ``values``: how many such values there are: each is a node of the tape's graph and
      of torch's, a Python object and its bookkeeping whatever the size of its array,
      which is what an unroll of many small steps spends its memory on.

    The coefficients were fitted to 40 measurements (``harness.bench.memory.check_peak``:
    a fresh process, warmed up on the case's defaults, the high-water mark of its resident
    memory over one check) of every catalog family from 20 MiB to 530 MiB, minimising the
    largest ratio: every estimate is within a factor of 1.82 of its measurement, and the
    tests hold it to ``FOOTPRINT_FACTOR`` on a size of each family. Another machine (its
    BLAS, its XLA) moves the measurement by tens of percent, which that factor covers; its
    purpose is to refuse, before anything is drawn, options that cannot fit (T = 10⁹, a
    million-wide layer), not to plan memory to the byte."""
    return int(
        ITEM * (ARRAY_COPIES * arrays + TENSOR_COPIES * tensors + GRAPH_COPIES * graph)
        + VALUE_BYTES * values
    )


TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a word"}


def type_in_words(default: Any) -> str:
    """What an option with this default takes, in words: ``int`` -> "a whole number"."""
    return TYPE_WORDS.get(type(default), f"a {type(default).__name__}")


@dataclass(frozen=True)
class Allowed:
    """The values an option may take: ``choices``, or numbers from ``low`` to ``high``
    (``None``: no bound on that side; ``above``: ``low`` itself is excluded)."""

    low: float | None = None
    high: float | None = None
    above: bool = False
    choices: tuple[Any, ...] = ()

    def admits(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self, type_in_words: str) -> str:
        """``"a whole number ≥ 1"``, ``"one of 'tanh', 'sigmoid'"``."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.above else '≥'} {self.low:g}")
        if self.high is not None:
            bounds.append(f"≤ {self.high:g}")
        return (
            f"{type_in_words} {' and '.join(bounds)}".strip()
            if bounds
            else f"any finite {type_in_words[2:]}"
        )


def at_least(low: float) -> Allowed:
    return Allowed(low=low)


def positive() -> Allowed:
    return Allowed(low=0, above=True)


def between(low: float, high: float) -> Allowed:
    return Allowed(low=low, high=high)


def one_of(*choices: Any) -> Allowed:
    return Allowed(choices=choices)


class Case:
    """Base class: subclasses set ``name``, ``family``, ``options`` and write setup/loss."""

    name: str  # the class's, or (a stage as a case) the instance's own
    family: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}  # sizes and switches, with their defaults
    # what each option may take (an option left out takes any value of its default's type)
    allowed: ClassVar[dict[str, Allowed]] = {}
    smooth: bool = (
        True  # False where the loss has kinks (relu): finite differences take a smaller step
    )
    slow: ClassVar[bool] = False  # left out of the default catalog run
    # True where the case's code is the user's, loaded by gradparity: it runs in a worker
    # process only (``harness.sandbox.case``), never in this one
    isolated: ClassVar[bool] = False
    # the class's hand-derived backprop (``harness.cases.manual_backprop``); None: there is none
    manual: ClassVar[Any] = None  # a ManualBackprop (that module reads this one)

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(self.options)
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in self.options.items()) or "none"
            names = ", ".join(repr(k) for k in sorted(unknown))
            raise CaseError(f"case {self.name!r} has no option {names}; its options: {known}")
        cfg = dict(self.options)
        for key, value in overrides.items():
            cfg[key] = _coerce(self.name, key, value, self.options[key], self.takes(key))
            allowed = self.allowed.get(key)
            if allowed is not None and not allowed.admits(cfg[key]):
                what = "is not allowed" if allowed.choices else "is out of range"
                raise CaseError(
                    f"case {self.name!r}: option {key}={cfg[key]!r} {what}: "
                    f"{key} takes {self.takes(key)}"
                )
        self.cfg = cfg

    @classmethod
    def takes(cls, key: str) -> str:
        """What option ``key`` takes, in words: "a whole number ≥ 1"."""
        words = type_in_words(cls.options[key])
        allowed = cls.allowed.get(key)
        return allowed.describe(words) if allowed is not None else words

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

    @property
    def declaration(self) -> Family:
        """What its family declares (``harness.cases.family``): unroll, layer index, theory."""
        return family_of(self.family)

    @classmethod
    def doc(cls) -> str:
        return inspect.getdoc(cls) or ""

    # --- what a subclass writes
    def setup(self, rng: np.random.Generator) -> tuple[Arrays, Arrays]:
        """Return (params, inputs) as float64 (or integer) numpy arrays."""
        raise NotImplementedError

    def loss(self, xp: Any, params: dict[str, Any], inputs: dict[str, Any]) -> Any:
        """The scalar loss, computed with Python operators and ``xp``'s functions."""
        raise NotImplementedError

    def footprint(self) -> int | None:
        """The bytes the default check of this case (``footprint_of``) needs with these
        options, from the options alone (nothing is drawn); None where the case cannot say
        (it is not refused then). Each family says, in its docstring, how it counts."""
        return None

    # --- what the harness calls
    def spec(self) -> dict[str, Any] | None:
        """How a worker process makes this very case again, as data (``rebuild``): a
        catalog case by its name and options. None where this class cannot say (see
        ``harness.sandbox.case.spec_of`` for a case of the user's)."""
        return catalog_spec(self)

    def build(self, seed: int = 0, dtype: str = "float64") -> tuple[Arrays, Arrays]:
        """Parameters and inputs for this seed, drawn in float64 and then cast to ``dtype``
        (so float32 and float64 runs start from the same numbers, rounded)."""
        params, inputs = self.setup(np.random.default_rng(seed))
        one_line_names(str(getattr(self, "name", "")), params, inputs)

        def cast(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a)
            return a.astype(dtype) if np.issubdtype(a.dtype, np.floating) else a

        return {k: cast(v) for k, v in params.items()}, {k: cast(v) for k, v in inputs.items()}


def one_line_names(case: str, params: Any, inputs: Any) -> None:
    """CaseError unless every parameter's and input's name is text without a line break:
    a tensor's name begins lines of the output (a line break in it printed a line of its
    own, a forged verdict), as a case's name does; its other control characters are
    escaped where it is shown."""
    for what, arrays in (("parameter", params), ("input", inputs)):
        for key in arrays:
            if not isinstance(key, str) or "\n" in key:  # other controls: escaped where shown
                raise CaseError(
                    f"case {case!r}: the name {key!r} of a {what} is not one line of text; "
                    "a tensor's name begins lines of the output"
                )


def _coerce(case: str, key: str, value: Any, default: Any, takes: str) -> Any:
    """Turn a value into the default's type: a command-line string (``T=1000`` -> 1000),
    or a Python number of another kind (3.0 for an int option, 1 for a float one)."""
    wrong = CaseError(
        f"case {case!r}: option {key}={value!r} is not {type_in_words(default)}; {key} takes {takes}"
    )
    if isinstance(default, str):
        if not isinstance(value, str):
            raise wrong
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if isinstance(default, bool):
            if text not in ("true", "false", "1", "0"):
                raise wrong
            return text in ("true", "1")
        try:
            value = int(text) if isinstance(default, int) else float(text)
        except ValueError:
            raise wrong from None
        return value
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise wrong
        return bool(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(default, (int, float)):
            raise wrong
        return value
    if isinstance(default, int):
        if not float(value).is_integer():
            raise wrong
        return int(float(value))
    if isinstance(default, float):
        return float(value)
    return value


def catalog_spec(case: Any) -> dict[str, Any] | None:
    """A catalog case (its class is the catalog's under its name) as the data another
    process makes it again from (``from_catalog``): its name and options. None for any
    other case, which that process may not be able to import."""
    if CATALOG.get(getattr(case, "name", "")) is not type(case):
        return None
    return {"rebuild": "harness.cases.base:from_catalog", "name": case.name, "cfg": dict(case.cfg)}


def from_catalog(spec: dict[str, Any]) -> Case:
    """The catalog case a ``Case.spec`` names."""
    return CATALOG[spec["name"]](**spec["cfg"])


def rebuild(spec: dict[str, Any]) -> Case:
    """The case a spec describes: its ``rebuild`` function ("package.module:function",
    written by this process's own code, never by a plug-in) applied to it."""
    import importlib

    module, _, name = spec["rebuild"].partition(":")
    return getattr(importlib.import_module(module), name)(spec)


def register(cls: type[Case]) -> type[Case]:
    """Class decorator: add a case to the catalog under its name."""
    if cls.name in CATALOG:
        raise CaseError(f"two cases are named {cls.name!r}")
    clashes = [k for k in cls.options if hasattr(cls, k)]
    if clashes:
        raise CaseError(f"case {cls.name!r}: options {clashes} hide attributes of the class")
    stray = sorted(set(cls.allowed) - set(cls.options))
    if stray:
        raise CaseError(f"case {cls.name!r}: `allowed` names options it does not have: {stray}")
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
            key=lambda c: list(FAMILIES).index(c.family) if c.family in FAMILIES else len(FAMILIES),
        )
        return [c for c in ordered if include_slow or not c.slow]
    chosen: list[type[Case]] = []
    for pattern in patterns:
        if not pattern.strip():  # a substring of every name
            raise CaseError(
                f"an empty case pattern ({pattern!r}) would pick every case: name "
                f"a case, a glob, a family or a substring; cases: {', '.join(CATALOG)}"
            )
        hits = (
            [CATALOG[pattern]]
            if pattern in CATALOG
            else [c for n, c in CATALOG.items() if fnmatch.fnmatchcase(n, pattern)]
            or [c for c in CATALOG.values() if c.family == pattern]
            or [c for n, c in CATALOG.items() if pattern in n]
        )
        if not hits and pattern.endswith(".py"):  # a case file without the case's name
            raise CaseError(
                f"--case {pattern!r} names no case in the file: add :NAME "
                f"(for example {pattern}:MyCase)"
            )
        if not hits:
            near = difflib.get_close_matches(pattern, list(CATALOG), n=3)
            meant = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
            raise CaseError(f"no case matches {pattern!r}{meant}; cases: {', '.join(CATALOG)}")
        chosen += [c for c in hits if c not in chosen]
    return chosen
