"""Run cases through backends: Case → Backend → Result, one failure never stopping the rest."""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import asdict
from typing import Any

import numpy as np

import harness.modes
from harness import noise
from harness.backends import (
    DEFAULT_BACKENDS,
    DEFAULT_BASELINE,
    REGISTRY,
    Backend,
    NotApplicable,
    UnknownBackend,
    get_backend,
)
from harness.cases import Case, CaseError
from harness.cases.base import catalog_spec, from_catalog, rebuild
from harness.compare import Comparison
from harness.namespace import Unsupported
from harness.noise import DEFAULT_RUNS
from harness.parallel import process_pool
from harness.result import BUILD, Directional, Identity, Result
from harness.sandbox.wire import Mapping, Tuple, conforms
from reference.xp import NotInTape

Progress = Callable[[str, str], None]  # (case label, backend name), called before each run


# what each backend raises when numpy is handed its arrays (the tape's, torch's, jax's)
NUMPY_ON_BACKEND_ARRAYS = (
    ("TypeError", "does not support ufuncs"),
    ("RuntimeError", "Can't call numpy() on Tensor"),
    ("TracerArrayConversionError", ""),
)


def _describe_error(exc: BaseException, case: Case | None = None) -> str:
    """The exception and the innermost frame it came from, on one line; where a case's
    own code handed a backend's arrays to numpy, that, and the line, instead: the same
    sentence for every backend, so that it is said once."""
    frames = traceback.extract_tb(exc.__traceback__)
    numpy_in_case = _numpy_in_case(exc, case, frames)
    if numpy_in_case is not None:
        return numpy_in_case
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _numpy_in_case(exc: BaseException, case: Case | None, frames: list) -> str | None:
    """ "the case calls numpy …" where ``exc`` is a backend refusing numpy on its arrays,
    raised from the case's own file; None otherwise."""
    if case is None or not any(
        type(exc).__name__ == name and text in str(exc) for name, text in NUMPY_ON_BACKEND_ARRAYS
    ):
        return None
    try:
        source = inspect.getsourcefile(type(case))
    except TypeError:
        return None
    mine = [f for f in frames if source and f.filename == source]
    if not mine:
        return None
    at = mine[-1]
    return (
        f"the case calls numpy on a backend's arrays at {at.filename.rsplit('/', 1)[-1]}:"
        f"{at.lineno} ({(at.line or '').strip()}): write xp.… there, the array namespace "
        "the loss is given, where it has np.…"
    )


def _attempt(case: Case, name: str, dtype: str, mode: str, fn: Callable[[], Result]) -> Result:
    """``fn()``, its Result named and moded; what it raises becomes a Result too: skipped
    (NotApplicable), unsupported (a function it lacks) or failed (anything else)."""
    try:
        result = fn()
    except NotApplicable as e:
        result = Result(case.label, name, dtype, skipped=str(e) or "not applicable")
    except (Unsupported, NotInTape) as e:
        result = Result(case.label, name, dtype, unsupported=str(e))
    except Exception as e:  # noqa: BLE001 - one failing backend must not stop the run
        result = Result(case.label, name, dtype, error=_describe_error(e, case))
    result.mode, result.smooth = mode, bool(getattr(case, "smooth", True))
    return result


def _fresh(arrays: dict) -> dict:
    return {k: v.copy() for k, v in arrays.items()}


def run_case(
    case: Case,
    backends: list[Backend | Exception],
    dtype: str = "float64",
    seed: int = 0,
    progress: Progress | None = None,
    names: list[str] | None = None,
    noise_on: tuple[str, ...] = (),
    noise_runs: int = DEFAULT_RUNS,
    modes: tuple[str, ...] = harness.modes.DEFAULT_MODES,
) -> list[Result]:
    """Every backend on one case, in each of ``modes`` (``harness.modes``: "rev", "fwd",
    "hvp"), mode by mode. Each call gets its own copy of the parameters and inputs, so a
    backend that writes into its arrays cannot change what the next one sees. A case
    that cannot be built (its data is missing, its options contradict each other) is one
    failed Result, under the backend name ``BUILD``, and no backend runs on it. A backend
    that lacks a function the case needs is ``unsupported`` there, not failed; one
    without a mode is skipped in it. The backends named in ``noise_on`` also measure the
    noise floor (``harness.noise``), in every mode. An autodiff backend's forward mode is
    held against its reverse mode (the transpose identity), its H·v against its H·w (the
    symmetry); the Result carries the pair (``Result.identity``).

    A case of the user's (``Case.isolated``) runs in its worker process
    (``harness.sandbox.case``): every backend that process can make by name runs there,
    on arrays drawn there; the others (a plug-in, which has a worker of its own) run here
    on those arrays. Whatever the case does to its worker (exit, crash, hang, eat memory)
    is one failed Result under ``BUILD``, naming the fault."""
    names = names or [str(b) if isinstance(b, Exception) else b.name for b in backends]
    if getattr(case, "isolated", False):
        return _isolated(case, backends, dtype, seed, progress, names, noise_on, noise_runs, modes)
    try:
        params, inputs = case.build(seed, dtype)
    except Exception as e:  # noqa: BLE001 - one broken case must not stop the run
        return [_unbuilt(case, dtype, e)]
    return _run_built(
        case, params, inputs, backends, dtype, seed, progress, names, noise_on, noise_runs, modes
    )


def _unbuilt(case: Case, dtype: str, e: BaseException) -> Result:
    why = str(e) if isinstance(e, CaseError) else _describe_error(e)
    return Result(case.label, BUILD, dtype, error=f"the case could not be built: {why}")


def _run_built(
    case, params, inputs, backends, dtype, seed, progress, names, noise_on, noise_runs, modes
) -> list[Result]:
    """``run_case`` on arrays already drawn."""
    u = harness.modes.direction(case.label, seed, params, "u")
    v, w = (
        harness.modes.direction(case.label, seed, params, "v"),
        harness.modes.direction(case.label, seed, params, "w"),
    )
    calls = {
        "rev": lambda b: b.gradient,
        "fwd": lambda b: lambda c, p, x, d: b.jvp(c, p, x, d, u),
        "hvp": lambda b: lambda c, p, x, d: b.hvp(c, p, x, d, v),
    }
    results: list[Result] = []
    reverse: dict[str, Result] = {}  # each backend's gradient, for the transpose identity
    for mode in modes:
        for name, backend in zip(names, backends, strict=True):
            if progress:
                progress(case.label, name if mode == "rev" else f"{name} ({mode})")
            if isinstance(backend, Exception):  # the backend could not even be created
                results.append(
                    Result(case.label, name, dtype, mode=mode, error=_describe_error(backend))
                )
                continue
            call = calls[mode](backend)

            def attempt(call: Callable = call) -> Any:
                return call(case, _fresh(params), _fresh(inputs), dtype)

            result = _attempt(case, name, dtype, mode, attempt)
            if mode == "rev":
                reverse[name] = result
            if result.ok and getattr(backend, "derivation", "autodiff") == "autodiff":
                result.identity = _identity(
                    case, backend, name, dtype, mode, result, reverse, params, inputs, u, v, w
                )
            if name in noise_on and result.ok and noise_runs > 0:
                result.noise = noise.spread(
                    backend, case, params, inputs, dtype, result, seed, noise_runs, call
                )
            results.append(result)
    return results


# --- a case of the user's, in its worker ------------------------------------------------------

RUN_ISOLATED = "harness.runner:run_isolated"
_ARRAY = (np.ndarray, np.generic)  # a 0-d value may come back as a numpy scalar
_ARRAYS = Mapping(str, _ARRAY)
_RESULT = {
    "case": str, "backend": str, "dtype": str, "loss": float, "grads": _ARRAYS, "taps": _ARRAYS,
    "tap_steps": Mapping(str, (int, None)), "uncertainty": Mapping(Tuple(str, str), _ARRAY),
    "directional": Mapping(Tuple(str, str), {"directions": _ARRAY, "values": _ARRAY,
                                             "errors": _ARRAY}),
    "noise": Mapping(Tuple(str, str), _ARRAY), "seconds": float, "compile_seconds": float,
    "obtained_by": str, "mode": str, "tangent": float, "smooth": bool,
    "identity": (None, {"name": str, "lhs": float, "rhs": float, "scale": float}),
    "error": (str, None), "skipped": (str, None), "unsupported": (str, None),
    "withheld": Mapping(Tuple(str, str), str), "uncompared": Mapping(Tuple(str, str), str),
}  # fmt: skip
_RUN_REPLY = ({"results": [_RESULT], "params": _ARRAYS, "inputs": _ARRAYS}, {"case_error": str})


def _by_name(name: str, backend: Backend | Exception) -> bool:
    """Can a worker make this backend by its name (a registered one, or one that failed)?"""
    where = (type(backend).__module__, type(backend).__name__)
    return isinstance(backend, Exception) or REGISTRY.get(name) == where


def _isolated(
    case, backends, dtype, seed, progress, names, noise_on, noise_runs, modes
) -> list[Result]:
    from harness.sandbox.case import CaseFault, ask, release

    there = [n for n, b in zip(names, backends, strict=True) if _by_name(n, b)]
    here = [(n, b) for n, b in zip(names, backends, strict=True) if not _by_name(n, b)]
    try:
        reply = ask(
            case,
            {
                "op": RUN_ISOLATED,
                "backends": there,
                "dtype": dtype,
                "seed": seed,
                "noise_on": list(noise_on),
                "noise_runs": noise_runs,
                "modes": list(modes),
            },
        )
        miss = conforms(reply, _RUN_REPLY)
        if miss:
            raise CaseFault({"fault_name": "malformed reply", "message": miss})
        if "case_error" in reply:
            return [_unbuilt(case, dtype, CaseError(reply["case_error"]))]
        results = [_result(r, case.label) for r in reply["results"]]
        if progress:
            for mode in modes:
                for name in there:
                    progress(case.label, name if mode == "rev" else f"{name} ({mode})")
        if here:
            results += _run_built(
                case,
                reply["params"],
                reply["inputs"],
                [b for _, b in here],
                dtype,
                seed,
                progress,
                [n for n, _ in here],
                noise_on,
                noise_runs,
                modes,
            )
        return results
    except CaseFault as e:
        return [Result(case.label, BUILD, dtype, error=f"the case's worker: {e.summary()}")]
    finally:
        release(case)


def _result(data: dict, label: str) -> Result:
    """A Result from a worker's data (its shape checked by ``_RUN_REPLY``), under the label
    this process gave the case."""
    fields = dict(data, case=label)
    fields["directional"] = {k: Directional(**v) for k, v in data["directional"].items()}
    fields["identity"] = Identity(**data["identity"]) if data["identity"] else None
    return Result(**fields)


def run_isolated(worker: Any, request: dict) -> dict:
    """The worker's side of ``_isolated``: the case made from its spec, its arrays drawn,
    the named backends run on them; the Results and the arrays as data."""
    from harness.sandbox import call
    from harness.sandbox.case import failed

    made = call(rebuild, request["case"])
    if made["error"] is not None:
        return failed(made)
    case, dtype = made["value"], request["dtype"]
    built = call(case.build, request["seed"], dtype)
    if built["error"] is not None:
        return failed(built)
    params, inputs = built["value"]
    names, instances = instantiate(request["backends"])
    ran = call(
        _run_built,
        case,
        params,
        inputs,
        instances,
        dtype,
        request["seed"],
        None,
        names,
        tuple(request["noise_on"]),
        request["noise_runs"],
        tuple(request["modes"]),
    )
    if ran["error"] is not None:
        return {"fault": ran["error"]}
    return {
        "results": [asdict(r) for r in ran["value"]],
        "params": dict(params),
        "inputs": dict(inputs),
    }


def _identity(case, backend, name, dtype, mode, result, reverse, params, inputs, u, v, w):
    """The backend's own modes held together (``harness.modes``): None in mode "rev", or
    where the other side could not be computed (the row then says so)."""
    if mode == "fwd":
        rev = reverse.get(name) or _attempt(
            case,
            name,
            dtype,
            "rev",
            lambda: backend.gradient(case, _fresh(params), _fresh(inputs), dtype),
        )
        reverse[name] = rev
        return (
            harness.modes.transpose(result.tangent, rev.grads, u) if rev.ok and rev.grads else None
        )
    if mode == "hvp":
        other = _attempt(
            case,
            name,
            dtype,
            "hvp",
            lambda: backend.hvp(case, _fresh(params), _fresh(inputs), dtype, w),
        )
        return harness.modes.symmetry(result.grads, other.grads, v, w) if other.ok else None
    return None


def instantiate(backends: Iterable[str | Backend]) -> tuple[list[str], list[Backend | Exception]]:
    """Names and instances of the backends; one that cannot be created is kept as its
    exception, reported per case as a failed cell. An unknown name raises UnknownBackend."""
    names: list[str] = []
    instances: list[Backend | Exception] = []
    for backend in backends:
        if isinstance(backend, Backend):
            names.append(backend.name)
            instances.append(backend)
            continue
        names.append(backend)
        try:
            instances.append(get_backend(backend))
        except UnknownBackend:
            raise
        except Exception as e:  # noqa: BLE001 - reported per case as a failed cell
            instances.append(e)
    return names, instances


def _run_in_worker(
    spec: dict,
    backends: list[str],
    dtype: str,
    seed: int,
    noise_on: tuple,
    noise_runs: int,
    modes: tuple[str, ...] = harness.modes.DEFAULT_MODES,
) -> list[Result]:
    """One catalog case in a worker process (``jobs > 1``)."""
    names, instances = instantiate(backends)
    return run_case(
        from_catalog(spec), instances, dtype, seed, None, names, noise_on, noise_runs, modes
    )


def noise_plan(names: list[str], instances: list, baseline: str, runs: int | None) -> tuple:
    """(the backends that measure the noise floor, K): by default the baseline alone, with
    DEFAULT_RUNS; ``runs`` K > 0: every autodiff reference, K runs each; 0: none. A
    plug-in (a ``plugin:`` name) never measures it: it is not judged by its own noise."""
    if isinstance(runs, bool) or not (
        runs is None or (isinstance(runs, int) and 0 <= runs <= noise.MAX_RUNS)
    ):
        raise ValueError(
            f"noise must be None or a whole number of runs from 0 to {noise.MAX_RUNS}, not {runs!r}"
        )
    if runs == 0:
        return (), 0
    references = [
        (n, b) for n, b in zip(names, instances, strict=True) if not n.startswith("plugin:")
    ]
    if runs is None:
        return tuple(n for n, _ in references if n == baseline), DEFAULT_RUNS
    return tuple(n for n, b in references if getattr(b, "derivation", "") == "autodiff"), runs


def compare_backends(
    cases: Iterable[Case | str] | None = None,
    backends: Iterable[str | Backend] | None = None,
    dtype: str = "float64",
    seed: int = 0,
    baseline: str = DEFAULT_BASELINE,
    progress: Progress | None = None,
    jobs: int = 1,
    noise: int | None = None,
    modes: tuple[str, ...] | list[str] | None = None,
) -> Comparison:
    """Run ``cases`` (Case instances or name patterns; default: the catalog) through
    ``backends`` (names or Backend instances; default: reference, manual, torch, jax,
    numeric) and compare against ``baseline`` (added to the backends if missing). With
    the baseline alone (its magnitudes are still measured) nothing is compared, and the
    Comparison says so (``Comparison.compared``, ``exit_code``).

    ``jobs > 1`` spreads catalog cases over that many processes (fresh interpreters, so
    no framework state is shared); results keep the order of the cases, and cases or
    backends that only exist in this process (not in the catalog or registry) run here.
    ``noise``: how the noise floor is measured (``noise_plan``): None, the baseline with
    K = 4 runs; K > 0, every autodiff reference with K runs; 0, not at all.
    ``modes``: which derivatives (``harness.modes``: "rev", "fwd", "hvp"; default rev).
    """
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be float64 or float32, not {dtype!r}")
    backends = list(backends or DEFAULT_BACKENDS)
    if baseline not in [b if isinstance(b, str) else b.name for b in backends]:
        backends.insert(0, baseline)  # the baseline always runs: everything is compared with it
    names, instances = instantiate(backends)
    modes = harness.modes.parse_modes(modes)
    noise_on, noise_runs = noise_plan(names, instances, baseline, noise)
    chosen = resolve_cases(cases)
    portable = jobs > 1 and all(isinstance(b, str) for b in backends)
    per_case: list[list[Result] | Future] = []
    with process_pool(jobs) if portable else nullcontext() as pool:
        for case in chosen:
            spec = catalog_spec(case) if pool is not None else None
            if pool is not None and spec is not None:
                per_case.append(
                    pool.submit(
                        _run_in_worker,
                        spec,
                        names,
                        dtype,
                        seed,
                        noise_on,
                        noise_runs,
                        modes,
                    )
                )
            else:
                per_case.append(
                    run_case(
                        case, instances, dtype, seed, progress, names, noise_on, noise_runs, modes
                    )
                )
        results: list[Result] = []
        for case, done in zip(chosen, per_case, strict=True):
            if isinstance(done, Future):
                if progress:
                    progress(case.label, "all backends")
                done = done.result()
            results += done
    return Comparison(results, baseline, chosen)


def resolve_cases(cases: Iterable[Case | type[Case] | str] | None) -> list[Case]:
    """The cases, in order: Case instances as given, Case classes with their defaults, and
    patterns as ``--case`` takes them (catalog names, globs, families; ``file.py:NAME`` or
    ``module:NAME`` for a case of the user's). None or nothing: the default catalog."""
    from harness.selection import build_cases

    cases = list(cases or [])
    if not cases:
        return build_cases(None, {})
    chosen: list[Case] = []
    for c in cases:
        if isinstance(c, str):
            chosen += build_cases([c], {})
        elif isinstance(c, type) and issubclass(c, Case):
            chosen.append(c())
        else:
            chosen.append(c)
    return chosen


__all__ = ["BUILD", "Comparison", "compare_backends", "instantiate", "resolve_cases", "run_case"]
