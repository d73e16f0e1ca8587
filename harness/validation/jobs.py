"""``validate(jobs=N)``: the cases of a validation shared by N processes.

This process and a pool of ``N - 1`` (spawn: fresh interpreters) run whole cases — every
reference and the plug-in, through ``run_case`` — and the Results are put back in the
order of the cases, so the tables are those of ``jobs=1``. Each pool process makes the
references and an ``Isolated`` worker of its own, and loads the plug-in in it as this
process does, so timeouts, memory limits and fault rows stay per case, and one case's
crash restarts only that process's worker. Within a case the plug-in's calls (in its
worker) run beside the references (here), one thread waiting for them.

The pool takes the cases from the first on, this process from the last on (the catalog's
costly recurrent cases come last), until they meet. Cases that only exist here (not the
catalog's) run here, and so does a case whose pool process failed (the pool broke, the
references could not start there): no case is lost to the pool, and the notes say which
ran here and why.

A plug-in that keeps state from one call to the next (a module-level cache, gradients
never reset) sees other cases before each case than with ``jobs=1``, so its numbers may
differ, as they do with another ``--case`` selection; where its faults show such state,
the validation's notes say so.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from harness.cases import Case
from harness.cases.base import catalog_spec, from_catalog
from harness.compare import counted
from harness.modes import DEFAULT_MODES
from harness.parallel import process_pool
from harness.result import BUILD, Result
from harness.runner import instantiate, run_case
from harness.sandbox.channel import Isolated
from harness.target import Target
from harness.validation.aside import ASIDE, aside, collected, merged, submit
from harness.validation.backend import PluginBackend
from harness.validation.plugin_calls import LOAD

Progress = Callable[[str, str], None]
Noise = tuple[tuple[str, ...], int]  # (the references that measure the noise floor, K runs)

# in a pool process: (the references, the plug-in), or why they could not start
_state: tuple[list[Any], PluginBackend] | BaseException | None = None


def run_one(
    case: Case,
    references: list[Any],
    names: list[str],
    plugin: PluginBackend,
    dtype: str,
    seed: int,
    progress: Progress | None = None,
    beside: bool = False,
    noise: Noise = ((), 0),
    modes: tuple[str, ...] = DEFAULT_MODES,
    jax_aside: Future | None = None,
) -> list[Result]:
    """One case through the references and then the plug-in (``names``: theirs, the
    plug-in's last), as ``run_case`` runs backends, and the plug-in's extra Results.
    ``noise``: (the references that measure the noise floor, K), as ``noise_plan`` gives.
    ``beside``: the plug-in's calls run in a thread while the references run here (its
    Result is the same: ``run_case`` builds the same arrays from ``seed``). ``jax_aside``:
    the jax reference's Results on this case, coming from a helper process
    (``harness.validation.aside``); it is left out here."""
    if not beside:
        return [
            *_here_and_aside(
                case, [*references, plugin], names, dtype, seed, progress, noise, modes, jax_aside
            ),
            *plugin.extra.pop(case.label, []),
        ]
    mine: list[Result] = []

    def call() -> None:
        mine.extend(run_case(case, [plugin], dtype, seed, None, names[-1:], modes=modes))

    thread = threading.Thread(target=call, name=f"plugin {case.label}", daemon=True)
    thread.start()
    try:
        results = run_case(case, references, dtype, seed, progress, names[:-1], *noise, modes=modes)
    finally:
        thread.join()
    if progress:
        progress(case.label, names[-1])
    if any(r.backend == BUILD for r in results):  # the case itself could not be built
        return results
    if not mine:  # the thread died before run_case could catch it: run it here
        mine = run_case(case, [plugin], dtype, seed, None, names[-1:], modes=modes)
    return [*results, *mine, *plugin.extra.pop(case.label, [])]


def _here_and_aside(
    case: Case,
    backends: list[Any],
    names: list[str],
    dtype: str,
    seed: int,
    progress: Progress | None,
    noise: Noise,
    modes: tuple[str, ...],
    jax_aside: Future | None,
) -> list[Result]:
    """``run_case`` on every backend, but the jax reference's Results taken from
    ``jax_aside`` where it is given and succeeds (else it runs here, after the others)."""
    if jax_aside is None:
        return run_case(case, backends, dtype, seed, progress, names, *noise, modes=modes)
    keep = [i for i, n in enumerate(names) if n != ASIDE]
    here = run_case(
        case,
        [backends[i] for i in keep],
        dtype,
        seed,
        progress,
        [names[i] for i in keep],
        *noise,
        modes=modes,
    )
    if any(r.backend == BUILD for r in here):
        jax_aside.cancel()
        return here
    there = collected(jax_aside, case.label)
    if there is None:
        at = names.index(ASIDE)
        there = run_case(case, [backends[at]], dtype, seed, None, [ASIDE], *noise, modes=modes)
    if progress:
        for mode in modes:
            progress(case.label, ASIDE if mode == "rev" else f"{ASIDE} ({mode})")
    return merged(here, there, names, modes)


def _start(
    spec: Target,
    form: str,
    references: list[str],
    timeout: float,
    memory: int,
    max_output: int,
    name: str,
    modes: tuple[str, ...] = DEFAULT_MODES,
) -> None:
    """A pool process's set-up: its worker (the plug-in loaded, as in the parent) and
    its references. A failure is kept and raised by each case, which then runs here."""
    global _state
    try:
        channel = Isolated(memory)
        atexit.register(channel.close)
        channel.request({"op": LOAD, "target": spec.data(), "form": form}, timeout, end=False)
        _, instances = instantiate(references)
        _state = (
            instances,
            PluginBackend(spec, form, channel, timeout, max_output, name=name, modes=modes),
        )
    except Exception as e:  # noqa: BLE001 - reported when a case asks for it
        _state = e


def _run(
    spec: dict | None,
    dtype: str,
    seed: int,
    names: list[str],
    noise: Noise = ((), 0),
    modes: tuple[str, ...] = DEFAULT_MODES,
) -> list[Result]:
    """One catalog case, in a pool process."""
    if not isinstance(_state, tuple):
        raise RuntimeError(f"the process could not start: {_state!r}")
    references, plugin = _state
    if spec is None:  # only the catalog's cases travel: the caller runs this one itself
        raise ValueError("not a catalog case: it runs in the calling process")
    case = from_catalog(spec)
    return run_one(
        case, references, names, plugin, dtype, seed, beside=True, noise=noise, modes=modes
    )


def portable(case: Case) -> bool:
    """A catalog case travels by name and options (``catalog_spec``); any other runs in
    this process."""
    return catalog_spec(case) is not None


def run_cases(
    chosen: list[Case],
    references: list[Any],
    names: list[str],
    plugin: PluginBackend,
    dtype: str,
    seed: int,
    progress: Progress | None,
    jobs: int,
    setup: tuple,
    notes: list[str],
    noise: Noise = ((), 0),
    modes: tuple[str, ...] = DEFAULT_MODES,
    helper: Any = None,
) -> tuple[list[Result], bool]:
    """Every case through the references and the plug-in: the Results in the order of
    ``chosen``, as with ``jobs=1``, and whether the cases were shared among processes.

    ``jobs > 1`` and at least two catalog cases: this process and a pool of ``jobs - 1``
    (each set up by ``_start(*setup)``) share them (see the module). ``progress`` is then
    called for each case and backend in the same order as with ``jobs=1``, as the
    Results are collected. ``helper``: with ``jobs=1``, a process for the jax reference
    (``harness.validation.aside``), or None."""
    order = [i for i, case in enumerate(chosen) if portable(case)]
    if jobs <= 1 or len(order) < 2:
        made = helper if aside(names, references) else None
        futures = [submit(made, case, dtype, seed, noise, modes) for case in chosen]
        in_order = [
            r
            for case, future in zip(chosen, futures, strict=True)
            for r in run_one(
                case,
                references,
                names,
                plugin,
                dtype,
                seed,
                progress,
                noise=noise,
                modes=modes,
                jax_aside=future,
            )
        ]
        return in_order, False
    done: dict[int, list[Result]] = {}
    failed: dict[str, str] = {}

    def here(i: int) -> None:
        done[i] = run_one(
            chosen[i], references, names, plugin, dtype, seed, beside=True, noise=noise, modes=modes
        )

    def why(e: BaseException) -> str:
        return f"{type(e).__name__}: {e}".splitlines()[0][:200]

    with process_pool(min(jobs - 1, len(order) - 1), _start, setup) as pool:
        pending: dict[int, Future] = {}
        for i in order:
            try:
                pending[i] = pool.submit(
                    _run, catalog_spec(chosen[i]), dtype, seed, names, noise, modes
                )
            except Exception as e:  # noqa: BLE001 - the pool cannot take it: it runs here
                failed[chosen[i].label] = why(e)
        for i in range(len(chosen)):  # what the pool cannot take
            if i not in pending:
                here(i)
        for i in reversed(order):  # then the cases from the end, until the pool's turn
            if i in done:
                continue
            if not pending[i].cancel():
                break
            here(i)
        results: list[Result] = []
        for i, case in enumerate(chosen):
            if progress:
                for _mode in modes:
                    for name in names:
                        progress(case.label, name)
            if i not in done:
                try:
                    done[i] = pending[i].result()
                except Exception as e:  # noqa: BLE001 - the case runs here instead
                    failed[case.label] = why(e)
                    here(i)
            results += done.pop(i)
    if failed:
        labels = list(failed)
        notes.append(
            f"  · {counted(len(labels), 'case')} ran in this process, not in the pool "
            f"({next(iter(failed.values()))}): {', '.join(labels[:8])}"
            f"{' …' if len(labels) > 8 else ''}"
        )
    return results, True
