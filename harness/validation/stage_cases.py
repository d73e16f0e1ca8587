"""The stage form's cases: the stages it knows (``STAGES``), each checked as a Case of its VJP
(``StageVjpCase``), and a case of the user's seen as a stage (``UserCaseVjpCase``).

The stage form: one local step, its forward and your hand-written backward.

A stage plug-in is an object (or a class, instantiated once) with

    stage = "linear"                      which step it implements (STAGES below, or "custom")
    forward(*inputs) -> (out, cache)      out: an array, or a tuple of arrays (lstm_step: (h, c))
    backward(d_out, cache) -> grads       one gradient per input, in order (None for labels);
                                          a single array is accepted for a one-input stage

``d_out`` is dL/d(out), shaped like ``out`` (a tuple for a tuple); for a scalar output
(softmax_xent) it is the float 1.0. It is checked twice: against the harness's own
definition of the stage on the references (via the loss L = Σ ⟨d_out, out⟩), and against
central finite differences of *your* forward (so a backward that matches a wrong forward
still shows). A "custom" stage also defines ``inputs(rng) -> tuple of arrays`` (example
inputs) and may set ``smooth = False`` where the function has kinks; it is checked
against finite differences only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.cases.base import Case, CaseError


@dataclass(frozen=True)
class Stage:
    """One stage: its inputs (in forward's order), how to draw them, its definition."""

    names: tuple[str, ...]
    math: str
    make: Callable[[np.random.Generator], tuple[np.ndarray, ...]]
    define: Callable[..., Any] | None  # (xp, *inputs) -> out (or a tuple); None: custom
    labels: tuple[str, ...] = ()  # integer inputs (not differentiated)
    smooth: bool = True


def _linear(rng):
    return rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)


def _with_zeros(rng):
    """relu's input: every third element exactly 0 (where a wrong mask shows), the others
    at least 0.1 away from the kink."""
    x = rng.uniform(0.1, 2.0, (4, 6)) * rng.choice([-1.0, 1.0], (4, 6))
    x.flat[::3] = 0.0
    return (x,)


def _recurrent(gates: int, cell: bool = False):
    def make(rng):
        B, D, H = 3, 4, 5
        state = tuple(rng.standard_normal((B, H)) for _ in range(2 if cell else 1))
        return (
            rng.standard_normal((B, D)),
            *state,
            rng.standard_normal((D, gates * H)) / 2,
            rng.standard_normal((H, gates * H)) / 2,
            rng.standard_normal(gates * H) / 4,
        )

    return make


def _lstm(xp, x, h, c, W_x, W_h, b):
    H = h.shape[-1]
    a = x @ W_x + h @ W_h + b
    i, f = xp.sigmoid(a[:, :H]), xp.sigmoid(a[:, H : 2 * H])
    o, g = xp.sigmoid(a[:, 2 * H : 3 * H]), xp.tanh(a[:, 3 * H :])
    c = f * c + i * g
    return o * xp.tanh(c), c


def _gru(xp, x, h, W_x, W_h, b):
    H = h.shape[-1]
    zr = xp.sigmoid(x @ W_x[:, : 2 * H] + h @ W_h[:, : 2 * H] + b[: 2 * H])
    z, r = zr[:, :H], zr[:, H:]
    n = xp.tanh(x @ W_x[:, 2 * H :] + (r * h) @ W_h[:, 2 * H :] + b[2 * H :])
    return (1 - z) * n + z * h


STAGES: dict[str, Stage] = {
    "linear": Stage(("x", "W", "b"), "z = x W + b   (x: 5×4, W: 4×3, b: 3)", _linear,
                    lambda xp, x, W, b: x @ W + b),
    "tanh": Stage(("x",), "y = tanh(x)   (x: 4×6)", lambda rng: (rng.standard_normal((4, 6)),),
                  lambda xp, x: xp.tanh(x)),
    "sigmoid": Stage(("x",), "y = σ(x)   (x: 4×6)", lambda rng: (rng.standard_normal((4, 6)),),
                     lambda xp, x: xp.sigmoid(x)),
    "relu": Stage(("x",), "y = max(x, 0)   (x: 4×6, with exact zeros; relu'(0) = 0)",
                  _with_zeros, lambda xp, x: xp.relu(x), smooth=False),
    "softmax_xent": Stage(
        ("z", "y"), "L = −(1/N) Σ_n log softmax(z_n)[y_n]   (z: 6×4, y: 6 integer classes)",
        lambda rng: (rng.standard_normal((6, 4)) * 2, rng.integers(0, 4, 6)),
        lambda xp, z, y: xp.softmax_cross_entropy(z, y), labels=("y",)),
    "elman_step": Stage(
        ("x", "h_prev", "W_x", "W_h", "b"),
        "h = tanh(x W_x + h_prev W_h + b)   (x: 3×4, h_prev: 3×5, W_x: 4×5, W_h: 5×5, b: 5)",
        _recurrent(1), lambda xp, x, h, W_x, W_h, b: xp.tanh(x @ W_x + h @ W_h + b)),
    "lstm_step": Stage(
        ("x", "h_prev", "c_prev", "W_x", "W_h", "b"),
        "[i, f, o, g] = x W_x + h_prev W_h + b (four H-wide blocks); i, f, o = σ, g = tanh;\n"
        "c = f ⊙ c_prev + i ⊙ g;  h = o ⊙ tanh(c);  out = (h, c)   (B=3, D=4, H=5)",
        _recurrent(4, cell=True), _lstm),
    "gru_step": Stage(
        ("x", "h_prev", "W_x", "W_h", "b"),
        "[z, r] = σ(x W_x[:, :2H] + h_prev W_h[:, :2H] + b[:2H]);\n"
        "n = tanh(x W_x[:, 2H:] + (r ⊙ h_prev) W_h[:, 2H:] + b[2H:]);  h = (1 − z) ⊙ n + z ⊙ h_prev",
        _recurrent(3), _gru),
}  # fmt: skip


class StageVjpCase(Case):
    """One stage as a case: its float inputs are the parameters, and the loss is
    L = Σ_k ⟨d_out_k, out_k⟩ with fixed random d_out (1.0 for a scalar output), so
    dL/d(input) is exactly what the stage's backward returns for that d_out."""

    family = "stage"
    options: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        stage: str,
        arrays: tuple[np.ndarray, ...] | None = None,
        names: tuple[str, ...] | None = None,
        smooth: bool | None = None,
        out_shapes: list[tuple[int, ...]] | None = None,
    ):
        super().__init__()
        spec = STAGES.get(stage)
        self.stage, self.name = stage, f"stage:{stage}"
        self.names = tuple(names or (spec.names if spec else ()))
        self.labels = spec.labels if spec else ()
        self.smooth = smooth if smooth is not None else (spec.smooth if spec else True)
        self._arrays, self._out_shapes = arrays, out_shapes

    @property
    def definition(self) -> Callable[..., Any] | None:
        spec = STAGES.get(self.stage)
        return spec.define if spec else None

    def doc(self) -> str:  # type: ignore[override]
        spec = STAGES.get(self.stage)
        return spec.math if spec else f"custom stage of ({', '.join(self.names)})"

    def setup(self, rng):
        arrays = self._arrays
        if arrays is None:
            arrays = STAGES[self.stage].make(rng)
        arrays = tuple(np.asarray(a) for a in arrays)
        params = {n: a for n, a in zip(self.names, arrays, strict=True) if n not in self.labels}
        inputs = {n: a for n, a in zip(self.names, arrays, strict=True) if n in self.labels}
        if self._out_shapes is not None:
            shapes = [tuple(s) for s in self._out_shapes]
        else:
            out = self.define_numpy(arrays)
            shapes = [np.shape(o) for o in (out if isinstance(out, tuple) else (out,))]
        for k, shape in enumerate(shapes):
            inputs[f"d_out{k}"] = np.asarray(1.0) if shape == () else rng.standard_normal(shape)
        return params, inputs

    def define_numpy(self, arrays):
        """The stage's output shapes, from its definition in float64 numpy."""
        if self.definition is None:
            return None
        from harness.backends.numeric import NumpyNamespace

        return self.definition(NumpyNamespace(), *(np.asarray(a) for a in arrays))

    def spec(self) -> dict[str, Any] | None:
        arrays = None if self._arrays is None else [np.asarray(a) for a in self._arrays]
        shapes = None if self._out_shapes is None else [list(s) for s in self._out_shapes]
        return {
            "rebuild": "harness.validation.stage_cases:stage_vjp_case",
            "stage": self.stage,
            "arrays": arrays,
            "names": list(self.names),
            "smooth": bool(self.smooth),
            "out_shapes": shapes,
        }

    def arguments(self, params: dict, inputs: dict) -> list[Any]:
        """forward's arguments in order."""
        return [params[n] if n in params else inputs[n] for n in self.names]

    def d_out(self, inputs: dict) -> list[np.ndarray]:
        return [inputs[k] for k in sorted(k for k in inputs if k.startswith("d_out"))]

    def loss(self, xp, p, x):
        if self.definition is None:
            raise NotImplementedError("a custom stage has no definition on the references")
        out = self.definition(xp, *self.arguments(p, x))
        outs = out if isinstance(out, tuple) else (out,)
        total = 0
        for o, d in zip(outs, self.d_out(x), strict=True):
            total = total + (o * d if np.ndim(d) == 0 else xp.sum(o * d))
        return total


class UserCaseVjpCase(StageVjpCase):
    """A framework's custom function checked on a case of the user's: the case is a plain
    forward of the same math, its parameters and inputs the function's arguments (by
    name), and its loss (an array or a scalar) the function's output; the references
    differentiate L = Σ ⟨d_out, loss⟩ as for any stage."""

    def __init__(self, case: Case, names: tuple[str, ...], smooth: bool | None = None):
        super().__init__("custom", None, names, case.smooth if smooth is None else smooth)
        self.case, self.name = case, f"stage:{case.name}"

    @property
    def label(self) -> str:
        return self.case.label

    @property
    def definition(self) -> Callable[..., Any] | None:
        def plain(xp: Any, *args: Any) -> Any:
            by_name = dict(zip(self.names, args, strict=True))
            return self.case.loss(
                xp, {k: by_name[k] for k in self._params}, {k: by_name[k] for k in self._inputs}
            )

        return plain

    def doc(self) -> str:  # type: ignore[override]
        return self.case.doc()

    def setup(self, rng):
        params, inputs = self.case.setup(rng)
        arrays = {**params, **inputs}
        if set(arrays) != set(self.names):
            raise CaseError(
                f"the function's arguments ({', '.join(self.names)}) are not the case's "
                f"parameters and inputs ({', '.join(arrays)}): name them alike"
            )
        self._params, self._inputs = list(params), list(inputs)
        self.labels = tuple(
            n for n in self.names if not np.issubdtype(np.asarray(arrays[n]).dtype, np.floating)
        )
        self._arrays = tuple(np.asarray(arrays[n]) for n in self.names)
        return super().setup(rng)

    @property
    def isolated(self) -> bool:  # type: ignore[override]
        """Where the case is the user's, loaded in a worker, so is this stage of it."""
        return bool(getattr(self.case, "isolated", False))

    @property
    def limits(self) -> Any:
        return self.case.limits

    def spec(self) -> dict[str, Any] | None:
        from harness.sandbox.case import spec_of

        inner = spec_of(self.case)
        if inner is None:
            return None
        return {
            "rebuild": "harness.validation.stage_cases:user_case_vjp_case",
            "case": inner,
            "names": list(self.names),
            "smooth": bool(self.smooth),
        }


def user_case_vjp_case(spec: dict[str, Any]) -> UserCaseVjpCase:
    """The UserCaseVjpCase a spec describes (in a worker)."""
    from harness.cases.base import rebuild

    return UserCaseVjpCase(rebuild(spec["case"]), tuple(spec["names"]), spec["smooth"])


def stage_vjp_case(spec: dict[str, Any]) -> StageVjpCase:
    """The StageVjpCase a spec describes (in a worker)."""
    arrays = spec["arrays"]
    return StageVjpCase(
        spec["stage"],
        None if arrays is None else tuple(arrays),
        tuple(spec["names"]),
        spec["smooth"],
        spec["out_shapes"],
    )


def weighted_loss(out: Any, d_out: list[np.ndarray]) -> float:
    """Σ_k ⟨d_out_k, out_k⟩ on numpy values (the user's forward output)."""
    outs = out if isinstance(out, tuple) else (out,)
    if len(outs) != len(d_out):
        raise ValueError(f"forward returned {len(outs)} outputs, the stage has {len(d_out)}")
    return float(
        sum(np.sum(np.asarray(o, dtype=np.float64) * d) for o, d in zip(outs, d_out, strict=True))
    )
