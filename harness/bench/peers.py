"""The peers: ``torch.autograd.gradcheck`` and ``jax.test_util.check_grads`` on the same
implementations that ``gradparity validate`` judges.

One adapter serves every implementation and both peers, so no checker gets a better one:
an implementation becomes a ``Pair`` — a function of its differentiated arrays, f(*x),
and that function's derivative as the implementation computes it: its VJP,
vjp(x, ct) -> one gradient per array, or for a forward-mode implementation its JVP,
jvp(x, u) -> J·u. For a stage, f is the stage's own forward and the VJP its backward; for a
model plug-in, f is the case's loss (the textbook forward of ``reference.manual``, in the
run's dtype) and the VJP ct·(the implementation's gradients), or the JVP its J_L·u. An
H·v implementation is the derivative of the gradient map g(θ) = ∇L(θ): its Jacobian is the
Hessian, symmetric, so the VJP of g with cotangent c is Hᵀc = H·c — f is then the
gradient (``reference.manual``'s backward) and the VJP the implementation's H·c. The Pair is
then wrapped

- as a ``torch.autograd.Function`` whose forward is f and whose backward (or ``jvp``) is the
  implementation's, for gradcheck (which compares it with finite differences of that
  forward; ``check_forward_ad=True, check_backward_ad=False`` for a JVP);
- as a ``jax.custom_vjp`` (``jax.custom_jvp``) function whose primal and derivative call f and
  the implementation through ``jax.pure_callback``, for check_grads (order 1, modes
  ``["rev"]`` or ``["fwd"]``: directional checks).

A peer's verdict is "pass", "fail" (its own error: gradcheck's GradcheckError,
check_grads' AssertionError) or "error" (anything else it raised: a wrong shape, a
missing name), with its message kept as the user would read it.
"""

from __future__ import annotations

import logging
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.target import load, parse_target

PEERS_FILES = ("peers.csv", "peers_1m.csv", "peers.md")


@dataclass
class Pair:
    """An implementation as f(*arrays) -> output (an array, or a tuple of them) and its
    derivative: vjp(arrays, cotangent) -> grads, or (forward mode) jvp(arrays, tangents) ->
    J·u, the other None."""

    f: Callable[..., Any]
    vjp: Callable[[tuple, Any], tuple] | None
    primals: tuple[np.ndarray, ...]
    names: tuple[str, ...]
    jvp: Callable[[tuple, tuple], Any] | None = None


@dataclass
class Verdict:
    checker: str
    verdict: str  # "pass", "fail" or "error"
    message: str
    seconds: float


def stage_pair(obj: Any, dtype: str, seed: int = 0) -> Pair:
    """A stage: f = its forward's output, the VJP its backward (labels held fixed)."""
    import inspect

    from harness.validation.stage_cases import STAGES

    rng = np.random.default_rng(seed)
    if obj.stage == "custom":  # its own inputs(rng), its forward's argument names
        arrays = [np.asarray(a) for a in obj.inputs(rng)]
        names: tuple[str, ...] = tuple(
            getattr(obj, "names", None) or inspect.signature(obj.forward).parameters
        )
        labels: set[int] = set()
    else:
        spec = STAGES[obj.stage]
        arrays = [np.asarray(a) for a in spec.make(rng)]
        names = spec.names
        labels = {i for i, n in enumerate(names) if n in spec.labels}
    arrays = [a if i in labels else a.astype(dtype) for i, a in enumerate(arrays)]
    moving = [i for i in range(len(arrays)) if i not in labels]

    def full(xs):
        out = list(arrays)
        for i, x in zip(moving, xs, strict=True):
            out[i] = np.array(x)  # a copy: jax's callbacks hand read-only arrays
        return out

    def f(*xs):
        out, _ = obj.forward(*full(xs))
        return out

    def vjp(xs, ct):
        _, cache = obj.forward(*full(xs))
        grads = obj.backward(ct, cache)
        grads = grads if isinstance(grads, tuple | list) else (grads,)
        return tuple(grads[i] for i in moving)

    return Pair(f, vjp, tuple(arrays[i] for i in moving), tuple(names[i] for i in moving))


def model_pair(fn: Any, case: Any, dtype: str, seed: int = 0, mode: str = "rev") -> Pair:
    """A model plug-in on ``case``, its function for ``mode``: f = the case's loss
    (``reference.manual``'s forward) and the VJP ct times the plug-in's gradients (rev), or
    its JVP J_L·u (fwd); f = the case's gradient (``reference.manual``'s backward) and the
    VJP the plug-in's H·ct (hvp: the Hessian is the Jacobian of the gradient, symmetric)."""
    from harness.backends.hand_derived import runner_for
    from harness.validation.forms.model import wants_case

    params, inputs = case.build(seed, dtype)
    names = tuple(params)
    forward = runner_for(case)

    def as_params(xs):
        return {k: np.array(x) for k, x in zip(names, xs, strict=True)}  # jax's are read-only

    def call(xs, *direction):
        args = (as_params(xs), dict(inputs), *direction)
        return fn(*args, case) if wants_case(fn, 3 + len(direction)) else fn(*args)

    def loss(*xs):
        return np.asarray(forward(case, as_params(xs), inputs)[0], dtype=dtype)

    def gradient(*xs):
        grads = forward(case, as_params(xs), inputs)[1]
        return tuple(np.asarray(grads[k], dtype=dtype) for k in names)

    def vjp(xs, ct):
        out = call(xs)
        grads = out["grads"] if isinstance(out.get("grads"), dict) else out
        return tuple(np.asarray(ct) * np.asarray(grads[k]) for k in names)

    def jvp(xs, us):
        out = call(xs, dict(zip(names, (np.array(u) for u in us), strict=True)))
        return np.asarray(out["loss"] if isinstance(out, dict) else out, dtype=dtype)

    def hvp(xs, cts):
        out = call(xs, dict(zip(names, (np.array(c) for c in cts), strict=True)))
        return tuple(np.asarray(out[k]) for k in names)

    primals = tuple(params[k] for k in names)
    if mode == "fwd":
        return Pair(loss, None, primals, names, jvp=jvp)
    if mode == "hvp":
        return Pair(gradient, hvp, primals, names)
    return Pair(loss, vjp, primals, names)


def engine_pair(engine: Any, case: Any, dtype: str, seed: int = 0) -> Pair:
    """An engine on ``case``: f = the loss by the engine's own forward, the VJP ct times the
    gradients its backward gives (``harness.validation.forms.tensor_engine.run_engine``)."""
    from harness.validation.forms.tensor_engine import run_engine

    params, inputs = case.build(seed, dtype)
    names = tuple(params)

    def run(xs):
        p = {k: np.array(x) for k, x in zip(names, xs, strict=True)}
        return run_engine(engine, case, p, dict(inputs))

    def f(*xs):
        return np.asarray(run(xs)["loss"], dtype=dtype)

    def vjp(xs, ct):
        grads = run(xs)["grads"]
        return tuple(np.asarray(ct) * np.asarray(grads[k]) for k in names)

    return Pair(f, vjp, tuple(params[k] for k in names), names)


def pair_of(target: str, form: str, cases: list | None, dtype: str, mode: str = "rev") -> Pair:
    """The Pair of a zoo entry (or any TARGET): a stage, a model (its function for
    ``mode``) or an engine on its first case, or a torch Function or jax custom VJP as the
    custom stage ``gradparity validate`` makes of it (so that every peer gets the one
    adapter, its own framework's form too)."""
    from harness.validation.forms import FORMS

    plugin_form = FORMS.get(form)
    if plugin_form is None or plugin_form.peer is None:
        takes = ", ".join(name for name, f in FORMS.items() if f.peer is not None)
        raise ValueError(f"the peers take the forms {takes}, not the {form} form")
    obj = load(parse_target(target))
    if plugin_form.peer == "stage":
        return stage_pair(plugin_form.for_peer(obj, mode), dtype)
    if not cases:
        raise ValueError(f"a {form} needs a case")
    if plugin_form.peer == "engine":
        return engine_pair(plugin_form.for_peer(obj, mode), cases[0], dtype)
    return model_pair(plugin_form.for_peer(obj, mode), cases[0], dtype, mode=mode)


def _timed(checker: str, run: Callable[[], Any], failure: tuple[type, ...]) -> Verdict:
    start = time.perf_counter()
    try:
        run()
        verdict, message = "pass", ""
    except failure as e:  # type: ignore[misc]  # an exception class, or a tuple of them
        verdict, message = "fail", str(e).strip()
    except Exception as e:  # noqa: BLE001 - what the peer let through, as the user sees it
        verdict, message = "error", f"{type(e).__name__}: {e}".strip()
    return Verdict(checker, verdict, message, time.perf_counter() - start)


def _tensors(out: Any) -> Any:
    import torch

    if isinstance(out, tuple | list):
        return tuple(torch.as_tensor(np.asarray(o)) for o in out)
    return torch.as_tensor(np.asarray(out))


def gradcheck(pair: Pair, fast_mode: bool = False) -> Verdict:
    """``torch.autograd.gradcheck`` with its default tolerances on the Pair as a Function:
    its backward the Pair's VJP, or (forward mode) its ``jvp`` the Pair's JVP, checked with
    ``check_forward_ad=True, check_backward_ad=False``."""
    import torch
    from torch.autograd.gradcheck import GradcheckError

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.arrays = tuple(x.detach().numpy() for x in xs)
            return _tensors(pair.f(*ctx.arrays))

        @staticmethod
        def backward(ctx, *cts):
            ct = tuple(c.detach().numpy() for c in cts)
            grads = pair.vjp(ctx.arrays, ct if len(ct) > 1 else ct[0])  # None: zero
            return tuple(None if g is None else torch.as_tensor(np.asarray(g)) for g in grads)

        @staticmethod
        def jvp(ctx, *us):
            return _tensors(pair.jvp(ctx.arrays, tuple(u.detach().numpy() for u in us)))

    xs = tuple(torch.tensor(a, requires_grad=True) for a in pair.primals)
    name = "gradcheck (fast_mode)" if fast_mode else "gradcheck"
    forward = (
        {}
        if pair.jvp is None
        else {"check_forward_ad": True, "check_backward_ad": False, "check_undefined_grad": False}
    )

    def run():
        with warnings.catch_warnings():  # float32: "not a double precision" per input
            warnings.simplefilter("ignore", UserWarning)
            torch.autograd.gradcheck(Wrapped.apply, xs, fast_mode=fast_mode, **forward)

    return _timed(name, run, (GradcheckError,))


def check_grads(pair: Pair) -> Verdict:
    """``jax.test_util.check_grads(order=1)`` with its default tolerances on the Pair as a
    ``jax.custom_vjp`` function, ``modes=["rev"]`` (or, forward mode, as a ``jax.custom_jvp``
    one, ``modes=["fwd"]``); float64 switched on inside the call only."""
    import jax
    from jax.test_util import check_grads as peer

    def run():
        quiet = logging.getLogger("jax._src.callback")  # it logs what it then raises
        level, quiet.level = quiet.level, logging.CRITICAL
        # float64 for every thread while the check runs (the callbacks run on XLA's
        # threads, where the thread-local ``jax.enable_x64`` does not reach), then as it was
        x64 = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
        try:
            checked()
        finally:
            jax.config.update("jax_enable_x64", x64)
            quiet.setLevel(level)

    def shapes(out):
        if isinstance(out, tuple | list):
            return tuple(jax.ShapeDtypeStruct(np.shape(o), np.asarray(o).dtype) for o in out)
        return jax.ShapeDtypeStruct(np.shape(out), np.asarray(out).dtype)

    def cast(values, like):  # what the callback returns, in the dtypes it declared
        if isinstance(like, tuple):
            return tuple(
                np.zeros(s.shape, s.dtype) if v is None else np.asarray(v, s.dtype)  # None: zero
                for v, s in zip(values, like, strict=True)
            )
        return np.asarray(values, like.dtype)

    def checked():
        primals = tuple(jax.numpy.asarray(a) for a in pair.primals)
        out_shape = shapes(pair.f(*pair.primals))
        in_shapes = shapes(pair.primals)

        def primal(*xs):
            return jax.pure_callback(lambda *a: cast(pair.f(*a), out_shape), out_shape, *xs)

        if pair.jvp is not None:
            f = jax.custom_jvp(primal)

            @f.defjvp
            def _(xs, us):
                n = len(xs)
                tangent = jax.pure_callback(
                    lambda *a: cast(pair.jvp(a[:n], a[n:]), out_shape), out_shape, *xs, *us
                )
                return primal(*xs), tangent

            peer(f, primals, order=1, modes=["fwd"])
            return
        f = jax.custom_vjp(primal)

        def bwd(xs, ct):
            def grads(*a):
                a = tuple(np.array(x) for x in a)  # jax hands read-only arrays
                n = len(xs)
                ct = a[n:] if isinstance(out_shape, tuple) else a[n]
                return cast(pair.vjp(a[:n], ct), in_shapes)

            cts = ct if isinstance(ct, tuple) else (ct,)
            return jax.pure_callback(grads, in_shapes, *xs, *cts)

        f.defvjp(lambda *xs: (f(*xs), xs), bwd)
        peer(f, primals, order=1, modes=["rev"])

    return _timed("check_grads", run, (AssertionError,))


__all__ = ["Pair", "Verdict", "check_grads", "gradcheck", "model_pair", "pair_of", "stage_pair"]


# --- the side-by-side table: every zoo entry, every checker, both dtypes ------------------

CHECKERS = ("gradparity validate", "gradcheck", "gradcheck (fast_mode)", "check_grads")
PEER_COLUMNS = [
    "implementation",
    "form",
    "dtype",
    "expected",
    "checker",
    "verdict",
    "caught",
    "seconds",
    "message",
]


def _message(v: Any) -> str:
    """What ``gradparity validate`` tells the user when it flags: its findings that count."""
    return "\n".join(f.line().strip() for f in v.findings if f.bad)


def worst(verdicts: list[Verdict]) -> Verdict:
    """One verdict over an implementation's cases: the first error, else the first
    failure, else a pass; the seconds summed."""
    rank = {"error": 0, "fail": 1, "pass": 2}
    first = min(verdicts, key=lambda v: rank[v.verdict])
    return Verdict(first.checker, first.verdict, first.message, sum(v.seconds for v in verdicts))


def peers_table(
    dtypes=("float64", "float32"),
    only: list[str] | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> Any:
    """One row per zoo entry × dtype × checker: the verdict ("pass", "fail" or "error"),
    whether the entry was caught (flagged, by a fail or an error), the
    wall time and the checker's message."""
    import pandas as pd

    from harness.sandbox.channel import Isolated
    from harness.zoo.selftest import check, entries

    rows = []
    channel = Isolated()
    try:
        for entry in entries(only):
            for dtype in dtypes:
                if progress:
                    progress(entry.name, dtype)
                base = {
                    "implementation": entry.name,
                    "form": entry.form,
                    "dtype": dtype,
                    "expected": "broken" if entry.broken else "correct",
                }
                start = time.perf_counter()
                v = check(entry, dtype, channel)
                rows.append(
                    {
                        **base,
                        "checker": CHECKERS[0],
                        "verdict": "pass" if v.ok else "fail",
                        "caught": not v.ok,
                        "seconds": time.perf_counter() - start,
                        "message": _message(v),
                    }
                )
                cases = entry.make_cases()
                mode = entry.modes[0]
                pairs = [pair_of(entry.target, entry.form, [c], dtype, mode) for c in cases] or [
                    pair_of(entry.target, entry.form, None, dtype)
                ]
                for run in (gradcheck, lambda p: gradcheck(p, fast_mode=True), check_grads):
                    peer = worst([run(p) for p in pairs])  # over every case, as validate runs
                    rows.append(
                        {
                            **base,
                            "checker": peer.checker,
                            "verdict": peer.verdict,
                            "caught": peer.verdict != "pass",
                            "seconds": peer.seconds,
                            "message": peer.message,
                        }
                    )
    finally:
        channel.close()
    return pd.DataFrame(rows, columns=PEER_COLUMNS)


def summary(table: Any) -> Any:
    """Per checker × dtype: broken entries caught, correct ones flagged (false alarms),
    median and total wall time."""
    import pandas as pd

    rows = []
    for (checker, dtype), g in table.groupby(["checker", "dtype"], sort=False):
        broken, correct = g[g["expected"] == "broken"], g[g["expected"] == "correct"]
        rows.append(
            {
                "checker": checker,
                "dtype": dtype,
                "caught": f"{int(broken['caught'].sum())}/{len(broken)}",
                "false alarms": f"{int(correct['caught'].sum())}/{len(correct)}",
                "median_s": float(g["seconds"].median()),
                "total_s": float(g["seconds"].sum()),
            }
        )
    return pd.DataFrame(rows)


EXAMPLE = "MLP: bias mean"  # the broken entry whose messages are quoted, in float64
UNROLL = "Elman: BPTT truncated"  # and the one whose messages say (or not) which step


def points(message: str, unroll_message: str) -> dict[str, str]:
    """What a checker's message tells the user, found in its text: the tensor (by name, or
    only by its position among the inputs), the element (its index, or only a count of the
    mismatched ones, or whole Jacobians printed), and the step of an unroll."""
    tensor = (
        "by name"
        if re.search(r"param '\w+'", message)
        else "by position (input k)"
        if re.search(r"input \d+", message)
        else "no"
    )
    element = (
        "its index and both values"
        if "worst at (" in message
        else "no: one projected number each side"
        if "fast mode" in message
        else "whole Jacobians printed"
        if "numerical:" in message
        else "a count of mismatched elements"
        if "Mismatched elements" in message
        else "no"
    )
    step = "yes" if re.search(r"\bt = \d+|\bsteps? \d", unroll_message) else "no"
    return {"tensor": tensor, "element": element, "step": step}


def render(table: Any, machine: dict[str, Any], command: str, big: Any = None) -> str:
    """peers.md: the summary, the verdicts per implementation, one message per checker,
    what the peers could not take (from ``table``), and each checker's wall time on the
    large MLP (from ``big``, the ``big_model`` table, where it was measured)."""
    from harness.escaping import code, lit
    from harness.report.render import Block, Code, Heading, Para, Table, to_markdown

    marks = {
        ("broken", True): "✓ caught",
        ("broken", False): "✗ missed",
        ("correct", True): "! false alarm",
        ("correct", False): "✓ passed",
    }
    blocks: list[Block] = [
        Heading("gradparity and its peers, side by side", 1),
        Para(
            f"Written by {code(command)} on "
            f"{lit(', '.join(f'{k} {v}' for k, v in machine.items()))}. "
            "Every implementation of the bug zoo that a peer can take, through `gradparity "
            "validate` (references: reference, torch) and through `torch.autograd.gradcheck` "
            "(default, and `fast_mode=True`) and `jax.test_util.check_grads(order=1, "
            "modes=['rev'])`, each with its default tolerances, in float64 and float32. The "
            "peers get one adapter for all (`harness.bench.peers`): the implementation's "
            "function and its VJP, as a `torch.autograd.Function` and as a `jax.custom_vjp`. "
            "A forward-mode implementation is its function and its JVP: a Function's `jvp` "
            "with `gradcheck(check_forward_ad=True, check_backward_ad=False)`, and a "
            "`jax.custom_jvp` with `check_grads(modes=['fwd'])`. An H·v implementation is "
            "the VJP of the gradient map θ ↦ ∇L(θ), whose Jacobian is the (symmetric) "
            "Hessian: the peers check it against finite differences of the gradient. The "
            "peers see the loss (or the gradient) only; a tap is gradparity's."
        ),
        Heading("Summary", 2),
        Table(
            ("checker", "dtype", "broken caught", "false alarms", "median s", "total s"),
            tuple(
                (
                    lit(r["checker"]),
                    lit(r["dtype"]),
                    lit(r["caught"]),
                    lit(r["false alarms"]),
                    f"{r['median_s']:.3f}",
                    f"{r['total_s']:.1f}",
                )
                for _, r in summary(table).iterrows()
            ),
        ),
        Para(
            "Every checker's counts run over every entry of the zoo. A peer's verdict "
            '"error" (it raised something else than its own failure: a shape torch '
            "refuses, a name the VJP lacks) counts as caught."
        ),
        Heading("Per implementation", 2),
    ]
    cells = table.assign(
        cell=[
            marks[(e, bool(c))] + (" (error)" if v == "error" else "")
            for v, e, c in zip(table["verdict"], table["expected"], table["caught"], strict=True)
        ]
    )
    grid = cells.pivot_table(
        index=["implementation", "expected"],
        columns=["checker", "dtype"],
        values="cell",
        aggfunc="first",
        sort=False,
    )
    blocks.append(
        Table(
            ("implementation", "expected", *(lit(f"{c} {d}") for c, d in grid.columns)),
            tuple(
                (lit(name), lit(expected), *(str(v) for v in row))
                for (name, expected), row in grid.iterrows()
            ),
        )
    )
    blocks.append(Heading(f"What each tells the user: {EXAMPLE}, float64", 2))
    example = table[(table["implementation"] == EXAMPLE) & (table["dtype"] == "float64")]
    for _, r in example.iterrows():
        lines = r["message"].splitlines()
        shown = "\n".join(lines[:14] + (["[…]"] if len(lines) > 14 else []))
        blocks += [
            Para(f"**{lit(r['checker'])}** ({lit(r['verdict'])}):"),
            Code(shown or "(nothing)"),
        ]
    blocks.append(
        Para(
            "Point by point, read from the messages themselves (on this entry, and for the "
            f"step on {lit(UNROLL)}, float64):"
        )
    )
    unroll = table[(table["implementation"] == UNROLL) & (table["dtype"] == "float64")]
    named_rows = []
    for checker in CHECKERS:
        here = example.loc[example["checker"] == checker, "message"]
        steps = unroll.loc[unroll["checker"] == checker, "message"]
        if here.empty:
            continue
        named = points(str(here.iloc[0]), str(steps.iloc[0]) if len(steps) else "")
        named_rows.append((lit(checker), named["tensor"], named["element"], named["step"]))
    blocks += [
        Table(("checker", "which tensor", "which element", "which step"), tuple(named_rows)),
        Heading("What the peers could not take", 2),
        Para(
            "Every entry was taken, the forward-mode and H·v ones too. What the peers see is "
            "the function's output only — the loss, or the gradient for an H·v — so a bug "
            "that shows only in a tap (an intermediate's gradient or tangent, step by step) "
            "is gradparity's alone to see; in this zoo every such bug also moves the loss's "
            "derivative."
        ),
        *big_section(big),
    ]
    return to_markdown(blocks)


# --- each checker on the ~1M-parameter MLP, in a process of its own, within a limit -------

BIG = "MLP backprop"  # the correct zoo entry timed on the large MLP
BIG_COLUMNS = [
    "implementation",
    "case",
    "parameters",
    "dtype",
    "checker",
    "verdict",
    "seconds",
    "finished",
    "forward_calls",
    "message",
]


def _big_child(checker: str, options: dict, limit_s: float, calls: Any, answer: Any) -> None:
    """In a fresh process: one checker on the zoo entry ``BIG`` on an MLP of ``options``;
    ``calls`` counts its forward evaluations (f), ``answer`` gets the Verdict."""
    import os

    from harness.cases import CATALOG
    from harness.validation.validator import validate
    from harness.zoo.selftest import SELFTEST_REFERENCES, entries

    if hasattr(os, "sched_setaffinity"):  # every CPU in its affinity: see ``big_model``
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    case = CATALOG["mlp"](**options)
    entry = next(e for e in entries([BIG]) if e.name == BIG)
    if checker == CHECKERS[0]:
        answer.put("started")
        start = time.perf_counter()
        v = validate(
            entry.target,
            form=entry.form,
            cases=[case],
            dtype="float64",
            references=SELFTEST_REFERENCES,
            timeout=limit_s,
        )
        seconds = time.perf_counter() - start
        verdict = Verdict(checker, "pass" if v.ok else "fail", _message(v), seconds)
    else:
        pair = pair_of(entry.target, entry.form, [case], "float64")
        f = pair.f

        def counted(*xs):
            with calls.get_lock():
                calls.value += 1
            return f(*xs)

        pair.f = counted
        answer.put("started")  # the pair is built: from here on the checker's own time
        run = {
            CHECKERS[1]: gradcheck,
            CHECKERS[2]: lambda p: gradcheck(p, fast_mode=True),
            CHECKERS[3]: check_grads,
        }[checker]
        verdict = run(pair)
    answer.put((verdict.verdict, verdict.message, verdict.seconds))


def big_model(
    options: dict | None = None,
    limit_s: float = 600.0,
    progress: Callable[[str, str], None] | None = None,
) -> Any:
    """One row per checker: its wall time on the zoo's correct ``BIG`` model on the MLP of
    ``options`` (default ``MILLION``, about 1M parameters) in float64, each checker in a
    fresh process of its own (spawned: no thread pool or compiled cache shared), stopped
    after ``limit_s`` seconds — then the row says it did not finish, and how many forward
    evaluations it had made by then. The seconds are the checker's own (its process's
    start is not counted). Each process may use every CPU, its thread counts held by the
    environment (``gradparity bench --threads``): pinned to one CPU, jax's
    ``pure_callback`` stalls on arrays this size (jax 0.10.2: 4 evaluations in 30 s)."""
    import multiprocessing as mp

    import pandas as pd

    from harness.cases import CATALOG
    from harness.cases.networks import MILLION

    options = dict(MILLION if options is None else options)
    case = CATALOG["mlp"](**options)
    params, _ = case.build(0)
    n = int(sum(v.size for v in params.values()))
    ctx = mp.get_context("spawn")
    rows = []
    for checker in CHECKERS:
        if progress:
            progress(f"{checker} on {case.label}", "float64")
        calls, answer = ctx.Value("q", 0), ctx.Queue()
        child = ctx.Process(target=_big_child, args=(checker, options, limit_s, calls, answer))
        child.start()
        try:
            answer.get(timeout=120)  # its imports and the case's arrays: not counted
            start = time.perf_counter()
            verdict, message, seconds = answer.get(timeout=limit_s)
            finished = True
        except Exception:  # noqa: BLE001 - queue.Empty: it ran past the limit (or died)
            finished, seconds = False, time.perf_counter() - start
            verdict = "did not finish" if child.is_alive() else "error"
            message = (
                f"stopped after {limit_s:.0f} s, {calls.value:,} forward evaluations made"
                if child.is_alive()
                else f"its process died (exit {child.exitcode})"
            )
        finally:
            if child.is_alive():
                child.kill()
            child.join()
        rows.append(
            {
                "implementation": BIG,
                "case": case.label,
                "parameters": n,
                "dtype": "float64",
                "checker": checker,
                "verdict": verdict,
                "seconds": seconds,
                "finished": finished,
                "forward_calls": calls.value if checker != CHECKERS[0] else math.nan,
                "message": message,
            }
        )
    return pd.DataFrame(rows, columns=BIG_COLUMNS)


def big_section(big: Any) -> list[Any]:
    """The report blocks (``harness.report.render``) of each checker's wall time on the
    large MLP."""
    from harness.escaping import lit
    from harness.report.render import Block, Heading, Para, Table

    out: list[Block] = [Heading("What each costs on the ~1M-parameter MLP", 2)]
    if big is None or big.empty:
        return [*out, Para("Not measured in this run (`gradparity bench --peers --peer-limit 0`).")]
    first = big.iloc[0]
    rows = []
    for _, r in big.iterrows():
        calls = "–" if math.isnan(r["forward_calls"]) else f"{int(r['forward_calls']):,}"
        time_ = f"{r['seconds']:.2f} s" if r["finished"] else f"> {r['seconds']:.0f} s"
        message = r["message"].splitlines()[0] if r["message"] else ""
        rows.append((lit(r["checker"]), lit(r["verdict"]), time_, calls, lit(message)))
    out += [
        Para(
            f"The correct zoo entry {lit(first['implementation'])} on {lit(first['case'])} "
            f"({int(first['parameters']):,} parameters, the model of the cost-of-checking "
            "section of `bench.md`), float64, each checker in a fresh process of its own, "
            "its own wall time measured (the process's start is not counted) and stopped "
            "where it runs past the limit. Thread counts as above; the processes may use "
            "every CPU (pinned to one, jax's `pure_callback` stalls on arrays this size)."
        ),
        Table(("checker", "verdict", "wall time", "forward evaluations", "note"), tuple(rows)),
    ]
    needed = 2 * int(first["parameters"])  # a central difference per element: 2 forwards
    for _, r in big[~big["finished"]].iterrows():
        done = r["forward_calls"]
        out.append(
            Para(
                f"{lit(r['checker'])} did not finish within {r['seconds']:.0f} s: it had made "
                f"{int(done):,} forward evaluations of the {needed:,} its per-element "
                "Jacobian needs (two per parameter), so it was about "
                f"{100 * done / needed:.1f}% of the way."
            )
        )
    return out


def write(
    out: Any, table: Any, machine: dict[str, Any], command: str, big: Any = None
) -> list[Any]:
    """peers.csv, peers_1m.csv (where ``big`` was measured) and peers.md under ``out``:
    all or none (``harness.output.staged``), and no peers_1m.csv of an earlier run beside
    a run that did not measure it."""
    import os
    from pathlib import Path

    from harness.escaping import write_csv
    from harness.output import staged

    out = Path(os.path.abspath(out))
    names = ["peers.csv"]
    with staged(out, "peers", PEERS_FILES) as stage:
        write_csv(table.round({"seconds": 4}), stage / "peers.csv")
        if big is not None and not big.empty:
            write_csv(big.round({"seconds": 4}), stage / "peers_1m.csv")
            names.append("peers_1m.csv")
        (stage / "peers.md").write_text(render(table, machine, command, big), encoding="utf-8")
    return [out / name for name in [*names, "peers.md"]]
