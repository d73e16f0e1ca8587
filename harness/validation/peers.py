"""The peers: ``torch.autograd.gradcheck`` and ``jax.test_util.check_grads`` on the same
implementations that ``gradparity validate`` judges.

One adapter serves every implementation and both peers, so no checker gets a better one:
an implementation becomes a ``Pair`` — a function of its differentiated arrays, f(*x),
and that function's VJP as the implementation computes it, vjp(x, ct) -> one gradient per
array. For a stage, f is the stage's own forward and the VJP its backward; for a model
plug-in, f is the case's loss (the textbook forward of ``reference.manual``, in the run's
dtype) and the VJP ct·(the implementation's gradients). The Pair is then wrapped

- as a ``torch.autograd.Function`` whose forward is f and whose backward is the VJP, for
  gradcheck (which compares that backward with finite differences of that forward);
- as a ``jax.custom_vjp`` function whose primal and VJP call f and the VJP through
  ``jax.pure_callback``, for check_grads (order 1, reverse mode: directional checks).

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


@dataclass
class Pair:
    """An implementation as f(*arrays) -> output and vjp(arrays, cotangent) -> grads."""

    f: Callable[..., Any]
    vjp: Callable[[tuple, Any], tuple]
    primals: tuple[np.ndarray, ...]
    names: tuple[str, ...]


@dataclass
class Verdict:
    checker: str
    verdict: str  # "pass", "fail" or "error"
    message: str
    seconds: float


def stage_pair(obj: Any, dtype: str, seed: int = 0) -> Pair:
    """A stage: f = its forward's output, the VJP its backward (labels held fixed)."""
    import inspect

    from harness.validation.stages import STAGES

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


def model_pair(fn: Any, case: Any, dtype: str, seed: int = 0) -> Pair:
    """A model plug-in on ``case``: f = the case's loss (``reference.manual``'s forward),
    the VJP ct times the plug-in's gradients."""
    from harness.backends.manual import runner_for
    from harness.validation.worker import wants_case

    params, inputs = case.build(seed, dtype)
    names = tuple(params)
    forward = runner_for(case)

    def as_params(xs):
        return {k: np.asarray(x) for k, x in zip(names, xs, strict=True)}

    def f(*xs):
        return np.asarray(forward(case, as_params(xs), inputs)[0], dtype=dtype)

    def vjp(xs, ct):
        p = as_params(xs)
        out = fn(p, dict(inputs), case) if wants_case(fn) else fn(p, dict(inputs))
        grads = out["grads"] if isinstance(out.get("grads"), dict) else out
        return tuple(np.asarray(ct) * np.asarray(grads[k]) for k in names)

    return Pair(f, vjp, tuple(params[k] for k in names), names)


def engine_pair(engine: Any, case: Any, dtype: str, seed: int = 0) -> Pair:
    """An engine on ``case``: f = the loss by the engine's own forward, the VJP ct times the
    gradients its backward gives (``harness.validation.engine.run_engine``)."""
    from harness.validation.engine import run_engine

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


def pair_of(target: str, form: str, cases: list | None, dtype: str) -> Pair:
    """The Pair of a zoo entry (or any TARGET): a stage, a model or an engine on its first
    case, or a torch Function or jax custom VJP as the custom stage ``gradparity validate``
    makes of it (so that every peer gets the one adapter, its own framework's form too)."""
    obj = load(parse_target(target))
    if form in ("torch-function", "jax-custom-vjp"):  # a custom stage of the framework's
        from harness.validation.frameworks import adapt

        return stage_pair(adapt(obj, form), dtype)
    if form == "stage":
        return stage_pair(obj() if isinstance(obj, type) else obj, dtype)
    if form in ("model", "engine"):
        if not cases:
            raise ValueError(f"a {form} needs a case")
        make = model_pair if form == "model" else engine_pair
        return make(obj() if isinstance(obj, type) else obj, cases[0], dtype)
    raise ValueError(f"the peers take stages, models and custom VJPs, not the {form} form")


def _timed(checker: str, run: Callable[[], Any], failure: tuple[type, ...]) -> Verdict:
    start = time.perf_counter()
    try:
        run()
        verdict, message = "pass", ""
    except failure as e:
        verdict, message = "fail", str(e).strip()
    except Exception as e:  # noqa: BLE001 - what the peer let through, as the user sees it
        verdict, message = "error", f"{type(e).__name__}: {e}".strip()
    return Verdict(checker, verdict, message, time.perf_counter() - start)


def gradcheck(pair: Pair, fast_mode: bool = False) -> Verdict:
    """``torch.autograd.gradcheck`` with its default tolerances on the Pair as a Function."""
    import torch
    from torch.autograd.gradcheck import GradcheckError

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.arrays = tuple(x.detach().numpy() for x in xs)
            return torch.as_tensor(np.asarray(pair.f(*ctx.arrays)))

        @staticmethod
        def backward(ctx, ct):
            grads = pair.vjp(ctx.arrays, ct.detach().numpy())  # None: no gradient (zero)
            return tuple(None if g is None else torch.as_tensor(np.asarray(g)) for g in grads)

    xs = tuple(torch.tensor(a, requires_grad=True) for a in pair.primals)
    name = "gradcheck (fast_mode)" if fast_mode else "gradcheck"

    def run():
        with warnings.catch_warnings():  # float32: "not a double precision" per input
            warnings.simplefilter("ignore", UserWarning)
            torch.autograd.gradcheck(Wrapped.apply, xs, fast_mode=fast_mode)

    return _timed(name, run, (GradcheckError,))


def check_grads(pair: Pair) -> Verdict:
    """``jax.test_util.check_grads(order=1, modes=["rev"])`` with its default tolerances on
    the Pair as a ``jax.custom_vjp`` function (float64 switched on inside the call)."""
    import jax
    from jax.test_util import check_grads as peer

    def run():
        quiet = logging.getLogger("jax._src.callback")  # it logs what it then raises
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            checked()
        finally:
            quiet.setLevel(level)

    def checked():
        with jax.enable_x64(True):
            primals = tuple(jax.numpy.asarray(a) for a in pair.primals)
            out = np.asarray(pair.f(*pair.primals))
            out_shape = jax.ShapeDtypeStruct(out.shape, out.dtype)
            in_shapes = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in pair.primals)

            @jax.custom_vjp
            def f(*xs):
                return jax.pure_callback(
                    lambda *a: np.asarray(pair.f(*a), out.dtype), out_shape, *xs
                )

            def fwd(*xs):
                return f(*xs), xs

            def bwd(xs, ct):
                def grads(*a):
                    got = pair.vjp(a[:-1], a[-1])  # None: no gradient (zero), as jax takes it
                    return tuple(
                        np.zeros(s.shape, s.dtype) if g is None else np.asarray(g, s.dtype)
                        for g, s in zip(got, in_shapes, strict=True)
                    )

                return jax.pure_callback(grads, in_shapes, *xs, ct)

            f.defvjp(fwd, bwd)
            peer(f, primals, order=1, modes=["rev"])

    return _timed("check_grads", run, (AssertionError,))


__all__ = ["Pair", "Verdict", "check_grads", "gradcheck", "model_pair", "pair_of", "stage_pair"]


# --- the side-by-side table: every zoo entry, every checker, both dtypes ------------------

CHECKERS = ("gradparity validate", "gradcheck", "gradcheck (fast_mode)", "check_grads")
PEER_COLUMNS = ["implementation", "form", "dtype", "expected", "checker", "verdict", "caught",
                "seconds", "message"]  # fmt: skip
CANNOT: dict[str, str] = {}  # form -> why the peers cannot take it (none left)


def why_not(entry: Any) -> str:
    """Why the peers cannot take a zoo entry ("" where they can)."""
    if entry.modes != ("rev",):
        return ("a forward-mode or second-order implementation: gradcheck's check_forward_ad "
                "and check_grads' modes=['fwd'] are not in this table yet")  # fmt: skip
    return CANNOT.get(entry.form, "")


def _message(v: Any) -> str:
    """What ``gradparity validate`` tells the user when it flags: its findings that count."""
    return "\n".join(f.line().strip() for f in v.findings if f.bad)


def worst(verdicts: list[Verdict]) -> Verdict:
    """One verdict over an implementation's cases: the first error, else the first
    failure, else a pass; the seconds summed."""
    rank = {"error": 0, "fail": 1, "pass": 2}
    first = min(verdicts, key=lambda v: rank[v.verdict])
    return Verdict(first.checker, first.verdict, first.message, sum(v.seconds for v in verdicts))


def peers_table(dtypes=("float64", "float32"), only: list[str] | None = None,
                progress: Callable[[str, str], None] | None = None) -> Any:  # fmt: skip
    """One row per zoo entry × dtype × checker: the verdict ("pass", "fail", "error" or
    "cannot take"), whether the entry was caught (flagged, by a fail or an error), the
    wall time and the checker's message."""
    import pandas as pd

    from harness.validation.isolation import Isolated
    from harness.validation.zoo.selftest import check, entries

    rows = []
    channel = Isolated()
    try:
        for entry in entries(only):
            for dtype in dtypes:
                if progress:
                    progress(entry.name, dtype)
                base = {"implementation": entry.name, "form": entry.form, "dtype": dtype,
                        "expected": "broken" if entry.broken else "correct"}  # fmt: skip
                start = time.perf_counter()
                v = check(entry, dtype, channel)
                rows.append({**base, "checker": CHECKERS[0],
                             "verdict": "pass" if v.ok else "fail", "caught": not v.ok,
                             "seconds": time.perf_counter() - start, "message": _message(v)})  # fmt: skip
                reason = why_not(entry)
                if reason:
                    rows += [{**base, "checker": c, "verdict": "cannot take", "caught": False,
                              "seconds": math.nan, "message": reason} for c in CHECKERS[1:]]  # fmt: skip
                    continue
                cases = entry.make_cases()
                pairs = [pair_of(entry.target, entry.form, [c], dtype) for c in cases] or [
                    pair_of(entry.target, entry.form, None, dtype)]  # fmt: skip
                for run in (gradcheck, lambda p: gradcheck(p, fast_mode=True), check_grads):
                    peer = worst([run(p) for p in pairs])  # over every case, as validate runs
                    rows.append({**base, "checker": peer.checker, "verdict": peer.verdict,
                                 "caught": peer.verdict != "pass", "seconds": peer.seconds,
                                 "message": peer.message})  # fmt: skip
    finally:
        channel.close()
    return pd.DataFrame(rows, columns=PEER_COLUMNS)


def summary(table: Any) -> Any:
    """Per checker × dtype, over the entries it could take: broken ones caught, correct
    ones flagged (false alarms), median and total wall time."""
    import pandas as pd

    rows = []
    taken = table[table["verdict"] != "cannot take"]
    for (checker, dtype), g in taken.groupby(["checker", "dtype"], sort=False):
        broken, correct = g[g["expected"] == "broken"], g[g["expected"] == "correct"]
        rows.append({"checker": checker, "dtype": dtype,
                     "caught": f"{int(broken['caught'].sum())}/{len(broken)}",
                     "false alarms": f"{int(correct['caught'].sum())}/{len(correct)}",
                     "median_s": float(g["seconds"].median()), "total_s": float(g["seconds"].sum())})  # fmt: skip
    return pd.DataFrame(rows)


EXAMPLE = "MLP: bias mean"  # the broken entry whose messages are quoted, in float64
UNROLL = "Elman: BPTT truncated"  # and the one whose messages say (or not) which step


def points(message: str, unroll_message: str) -> dict[str, str]:
    """What a checker's message tells the user, found in its text: the tensor (by name, or
    only by its position among the inputs), the element (its index, or only a count of the
    mismatched ones, or whole Jacobians printed), and the step of an unroll."""
    tensor = ("by name" if re.search(r"param '\w+'", message) else
              "by position (input k)" if re.search(r"input \d+", message) else "no")  # fmt: skip
    element = ("its index and both values" if "worst at (" in message else
               "no: one projected number each side" if "fast mode" in message else
               "whole Jacobians printed" if "numerical:" in message else
               "a count of mismatched elements" if "Mismatched elements" in message else "no")  # fmt: skip
    step = "yes" if re.search(r"\bt = \d+|\bsteps? \d", unroll_message) else "no"
    return {"tensor": tensor, "element": element, "step": step}


def render(table: Any, machine: dict[str, Any], command: str) -> str:
    """peers.md: the summary, the verdicts per implementation, one message per checker,
    what the peers could not take, from ``table`` alone."""
    from harness.escaping import lit

    marks = {("broken", True): "✓ caught", ("broken", False): "✗ missed",
             ("correct", True): "! false alarm", ("correct", False): "✓ passed"}  # fmt: skip
    out = ["# gradparity and its peers, side by side", "",
           f"Written by `{command}` on {lit(', '.join(f'{k} {v}' for k, v in machine.items()))}. "
           "Every implementation of the bug zoo that a peer can take, through `gradparity "
           "validate` (references: reference, torch) and through `torch.autograd.gradcheck` "
           "(default, and `fast_mode=True`) and `jax.test_util.check_grads(order=1, "
           "modes=['rev'])`, each with its default tolerances, in float64 and float32. The "
           "peers get one adapter for all (`harness.validation.peers`): the implementation's "
           "function and its VJP, as a `torch.autograd.Function` and as a `jax.custom_vjp`.",
           "", "## Summary", "",
           "| checker | dtype | broken caught | false alarms | median s | total s |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for _, r in summary(table).iterrows():
        out.append(f"| {r['checker']} | {r['dtype']} | {r['caught']} | {r['false alarms']} | "
                   f"{r['median_s']:.3f} | {r['total_s']:.1f} |")  # fmt: skip
    out += ["", "gradparity's counts run over every entry; a peer's over those it could take "
            "(below). A peer's verdict \"error\" (it raised something else than its own "
            "failure: a shape torch refuses, a name the VJP lacks) counts as caught.", "",
            "## Per implementation", ""]  # fmt: skip
    cells = table.assign(cell=[("– cannot take" if v == "cannot take" else marks[(e, bool(c))])
                               + (" (error)" if v == "error" else "")
                               for v, e, c in zip(table["verdict"], table["expected"],
                                                  table["caught"], strict=True)])  # fmt: skip
    grid = cells.pivot_table(index=["implementation", "expected"], columns=["checker", "dtype"],
                             values="cell", aggfunc="first", sort=False)  # fmt: skip
    header = [f"{c} {d}" for c, d in grid.columns]
    out += ["| implementation | expected | " + " | ".join(header) + " |",
            "|---|---|" + "---|" * len(header)]  # fmt: skip
    for (name, expected), row in grid.iterrows():
        out.append(f"| {lit(name)} | {expected} | " + " | ".join(str(v) for v in row) + " |")
    out += ["", f"## What each tells the user: {lit(EXAMPLE)}, float64", ""]
    example = table[(table["implementation"] == EXAMPLE) & (table["dtype"] == "float64")]
    for _, r in example.iterrows():
        lines = r["message"].splitlines()
        shown = "\n".join(lines[:14] + (["[…]"] if len(lines) > 14 else []))
        out += [f"**{r['checker']}** ({r['verdict']}):", "", "```", shown or "(nothing)", "```", ""]
    out += ["Point by point, read from the messages themselves (on this entry, and for the "
            f"step on {lit(UNROLL)}, float64):", "",
            "| checker | which tensor | which element | which step |", "|---|---|---|---|"]  # fmt: skip
    unroll = table[(table["implementation"] == UNROLL) & (table["dtype"] == "float64")]
    for checker in CHECKERS:
        here = example.loc[example["checker"] == checker, "message"]
        steps = unroll.loc[unroll["checker"] == checker, "message"]
        if here.empty:
            continue
        named = points(str(here.iloc[0]), str(steps.iloc[0]) if len(steps) else "")
        out.append(f"| {checker} | {named['tensor']} | {named['element']} | {named['step']} |")
    out += ["", "## What the peers could not take", ""]
    cannot = table[table["verdict"] == "cannot take"].drop_duplicates(["implementation"])
    for reason, g in cannot.groupby("message", sort=False):
        out.append(f"- {', '.join(lit(n) for n in g['implementation'])}: {lit(reason)}")
    out += ["", "## Not measured yet", "",
            "The wall time of each checker on the ~1M-parameter MLP of the cost-of-checking "
            "section of `bench.md`: not measured in this table yet (`bench.md` extrapolates "
            "per-element gradcheck there).", ""]  # fmt: skip
    return "\n".join(out)


def write(out: Any, table: Any, machine: dict[str, Any], command: str) -> list[Any]:
    """peers.csv and peers.md under ``out``."""
    from pathlib import Path

    from harness.escaping import csv_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_table(table.round({"seconds": 4})).to_csv(
        out / "peers.csv", index=False, lineterminator="\n"
    )
    (out / "peers.md").write_text(render(table, machine, command), encoding="utf-8")
    return [out / "peers.csv", out / "peers.md"]
