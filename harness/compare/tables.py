"""The tidy tables made from Results (nothing here runs a backend):

- ``agreement``: one row per case × mode × tensor × backend, against a baseline backend,
  each with exactly one verdict (``Verdict``);
- ``identities``: one row per case × mode × autodiff backend: its forward mode against its
  reverse mode, its H·v against its H·w (``harness.modes``);
- ``runs``: one row per case × mode × backend (status, timings, method — the
  column of ``Result.obtained_by`` —, error);
- ``magnitudes``: one row per case × backend × tap × step (the gradient norm).

The mode says which derivative a row's tensor is (``harness.modes``): "rev", the gradient
dL/d(tensor); "fwd", the tangent of the tensor along the case's direction u (the loss's:
J_L·u; a tap's: the change of the tapped value); "hvp", (H·v) for that parameter.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

import harness.modes
from harness.compare.metrics import l2_norm
from harness.compare.pairs import case_noise, odd_one_out, pair, pick_baseline
from harness.compare.verdicts import Verdict
from harness.result import BUILD, DEFAULT_BASELINE, Result

AGREEMENT_COLUMNS = [
    "case",
    "mode",
    "kind",
    "tensor",
    "backend",
    "baseline",
    "dtype",
    "shape",
    "max_abs_err",
    "max_rel_err",
    "rel_l2_err",
    "cosine",
    "worst_index",
    "worst_got",
    "worst_expected",
    "worst_scale",
    "worst_rel_err",
    "n_bad",
    "n_unresolved",
    "n_elements",
    "bad_steps",
    "factor",
    "factor_residual",
    "transposed_residual",
    "noise_floor",
    "digits",
    "detects_rel_median",
    "detects_rel_worst",
    "rtol",
    "atol",
    "verdict",
    "ok",
    "odd_one_out",
    "reason",
    "error",
]

COUNT_COLUMNS = ["n_bad", "n_unresolved", "n_elements"]

# What the outputs know of an agreement row beyond its columns, row for row (the same
# index), kept out of agreement.csv: ``run_failed``, the row stands for its backend's run
# failing as a whole (its error is that run's, which ``runs`` carries), not for a fault of
# its own tensor; ``kinked``, an H·v row on a loss with kinks, compared where the second
# derivative exists and marked (``_kinked``); ``directional``, a row compared along a few
# directions only (one side is an oracle that saw the tensor that way, ``Result.directional``).
ROW_FACTS = ["run_failed", "kinked", "directional"]


def agreement(
    results: list[Result], baseline: str = DEFAULT_BASELINE, tolerances: dict | None = None
) -> pd.DataFrame:
    """One row per case × mode × tensor × backend (other than the baseline), in a stable
    order. In mode "hvp" a case whose loss has kinks (relu) is marked: its second
    derivative does not exist at them, so the rows say so, and are not failed when the
    backends part there."""
    return agreement_with_facts(results, baseline, tolerances)[0]


def agreement_with_facts(
    results: list[Result], baseline: str = DEFAULT_BASELINE, tolerances: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``agreement``'s table and, row for row, its ``ROW_FACTS``."""
    rows: list[dict[str, Any]] = []
    for case, mode in dict.fromkeys((r.case, r.mode) for r in results):
        group = [r for r in results if r.case == case and r.mode == mode and r.skipped is None]
        kinked = mode == "hvp" and not all(r.smooth for r in group)
        base = pick_baseline(group, baseline)
        if base is None:
            for r in group:
                error = (
                    r.error
                    if r.backend == BUILD
                    else f"no backend succeeded; {r.backend}: {r.error}"
                )
                rows.append(
                    {
                        "case": case,
                        "mode": mode,
                        "kind": "loss",
                        "tensor": "loss",
                        "backend": r.backend,
                        "baseline": baseline,
                        "dtype": r.dtype,
                        "verdict": Verdict.FAILED.value,
                        "ok": False,
                        "odd_one_out": "",
                        "error": error,
                    }
                )
            continue
        keys = list(dict.fromkeys([*base.tensors(), *base.directional]))
        noise = case_noise(group)
        odd = {key: odd_one_out(group, key, tolerances, noise) for key in keys}
        for r in group:
            if r is base:
                continue
            extra = [k for k in r.tensors() if k not in keys] if r.ok else []
            shown = [k for k in keys if k not in r.withheld] if r.ok else keys
            for key in shown + extra:
                row: dict[str, Any] = {
                    "case": case,
                    "mode": mode,
                    "kind": key[0],
                    "tensor": key[1],
                    "backend": r.backend,
                    "baseline": base.backend,
                    "dtype": base.dtype,
                    "shape": str(
                        tuple(np.shape(np.asarray(base.tensors().get(key, r.tensors().get(key)))))
                    ),
                    "odd_one_out": odd.get(key, ""),
                }
                if r.unsupported is not None:
                    row.update(
                        verdict=Verdict.UNSUPPORTED.value,
                        ok=False,
                        error=f"{r.backend} unsupported: {r.unsupported}",
                    )
                elif key in r.uncompared:
                    row.update(verdict=Verdict.FAILED.value, ok=False, error=r.uncompared[key])
                elif not r.ok:
                    row.update(
                        verdict=Verdict.FAILED.value,
                        ok=False,
                        error=f"{r.backend} failed: {r.error}",
                        run_failed=True,
                    )
                elif key in extra:
                    row.update(
                        verdict=Verdict.FAILED.value,
                        ok=False,
                        error=f"{r.backend} returned an extra {key[0]} {key[1]!r}",
                    )
                else:
                    row.update(pair(r, base, key, tolerances, noise))
                    row["directional"] = key in r.directional or key in base.directional
                    if kinked:
                        row.update(_kinked(row), kinked=True)
                rows.append(row)
    table = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
    facts = pd.DataFrame({f: [bool(r.get(f)) for r in rows] for f in ROW_FACTS}, dtype=bool)
    # counts stay whole numbers beside a failed row, which has none
    return table.astype(dict.fromkeys(COUNT_COLUMNS, "Int64")), facts


def _kinked(row: dict) -> dict:
    """A row of H·v on a loss with kinks: compared where the second derivative exists (the
    autodiff backends all take relu'' = 0), marked, and not failed where they part."""
    note = f"marked: {harness.modes.NO_SECOND}"
    if row["verdict"] == Verdict.DISAGREE:
        return {
            "verdict": Verdict.INCONCLUSIVE.value,
            "ok": False,
            "reason": f"{note}; the backends part here ({row.get('reason') or 'see the metrics'})",
        }
    return {"reason": "; ".join(filter(None, [row.get("reason", ""), note]))}


IDENTITY_COLUMNS = [
    "case",
    "mode",
    "backend",
    "dtype",
    "identity",
    "lhs",
    "rhs",
    "scale",
    "rel_err",
    "rtol",
    "verdict",
    "ok",
    "reason",
]


def identities(results: list[Result], tolerances: dict | None = None) -> pd.DataFrame:
    """One row per case × mode × backend whose Result holds an identity (``harness.modes``):
    "agree" when its two sides are equal to the dtype's rounding, else "disagree" — that
    backend's forward and reverse modes (or its H·v and H·w) cannot both be right. A
    backend without the other side (a plug-in that supplies a JVP alone) has no row."""
    rows: list[dict[str, Any]] = []
    for r in results:
        if r.mode == "rev" or not r.ok or r.identity is None:
            continue
        row = {"case": r.case, "mode": r.mode, "backend": r.backend, "dtype": r.dtype}
        row.update(harness.modes.judge(r.identity, r.dtype, tolerances), reason="")
        row["verdict"] = (Verdict.AGREE if row["ok"] else Verdict.DISAGREE).value
        if not row["ok"]:
            sides = (
                ("J_L·u (fwd)", "⟨∇L, u⟩ (rev)") if r.mode == "fwd" else ("⟨w, H·v⟩", "⟨v, H·w⟩")
            )
            row["reason"] = (
                f"{r.backend}'s {sides[0]} = {r.identity.lhs:.17g} but "
                f"{sides[1]} = {r.identity.rhs:.17g}: its two sides cannot both be right"
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=IDENTITY_COLUMNS)


RUN_COLUMNS = [
    "case",
    "mode",
    "backend",
    "dtype",
    "status",
    "method",
    "loss",
    "seconds",
    "compile_seconds",
    "error",
]


def runs(results: list[Result]) -> pd.DataFrame:
    """One row per case × mode × backend: did it run, how long it took, why it failed."""
    rows = [
        {
            "case": r.case,
            "mode": r.mode,
            "backend": r.backend,
            "dtype": r.dtype,
            "status": "failed"
            if r.error
            else "skipped"
            if r.skipped
            else "unsupported"
            if r.unsupported
            else "ok",
            "method": r.obtained_by,
            "loss": r.loss,
            "seconds": r.seconds,
            "compile_seconds": r.compile_seconds,
            "error": r.error or r.skipped or r.unsupported or "",
        }
        for r in results
    ]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


MAGNITUDE_COLUMNS = ["case", "backend", "tap", "step", "norm"]
_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


def magnitudes(results: list[Result]) -> pd.DataFrame:
    """One row per case × backend × tap × step: ‖dL/d(tap)‖₂.

    A tap inside a scan gives one row per step t = 0..T−1. A tap outside any scan named
    ``name[k]`` (a layer or a stage: ``h[2]``, ``s[7]``) gives tap ``name``, step k;
    any other gives step −1. Exact zeros (a gradient that underflowed) stay 0.0.
    """
    rows: list[tuple] = []
    for r in results:
        if not r.ok or r.mode != "rev":
            continue
        for name, g in r.taps.items():
            if r.tap_steps.get(name) is not None:
                norms = l2_norm(np.reshape(g, (len(g), -1)), axis=1)
                rows += [(r.case, r.backend, name, t, float(n)) for t, n in enumerate(norms)]
                continue
            indexed = _INDEXED.match(name)
            tap, step = (indexed[1], int(indexed[2])) if indexed else (name, -1)
            rows.append((r.case, r.backend, tap, step, l2_norm(g)))
    return pd.DataFrame(rows, columns=MAGNITUDE_COLUMNS)
