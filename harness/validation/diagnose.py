"""Diagnostics a user can act on, read from a validation's tables (nothing recomputed).

Per case: the faults; a forward that differs (the loss first: gradients of another
function cannot be judged); each tensor where the plug-in disagrees (how many elements,
the worst one's index with the value got and expected, to the digits where they part);
what the errors have in common, where they show it — one constant factor, or a size no
larger than float32's rounding; whether the references agree among themselves (so the
user knows the yardstick is sound) and whether the plug-in is the odd one out; and, when
the plug-in reported tap gradients, where they leave the references, walking back from
the loss: the first unroll step (taps stacked over a scan) or the first stage (taps named
``name[k]``) at which they diverge.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from harness.compare import (
    FLAGGED,
    Verdict,
    baseline_odd,
    compared,
    flagged,
    listing,
    parting_digits,
    worst_at,
)
from harness.validation.faults import Fault
from harness.validation.findings import FROM_TABLES, Finding, Topic
from harness.validation.printed import bounded, fold

_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")  # a tap named name[k]: a layer or a stage


def steps_of(ranges: str) -> set[int]:
    """'0-3,7' -> {0, 1, 2, 3, 7}."""
    out: set[int] = set()
    for part in filter(None, str(ranges or "").split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _disagreement(label: str, row) -> Finding:
    """A tensor of the plug-in's that disagrees: how many elements, the worst one (its
    index, the values got and expected), the bad steps; or the error that left nothing
    to compare."""
    what = f"{row['kind']} {row['tensor']!r}" if row["kind"] != "loss" else "the loss"
    common = {
        "case": label,
        "topic": Topic.DISAGREES,
        "bad": True,
        "tensor": row["tensor"],
        "backend": row["backend"],
        "evidence": "agreement",
    }
    if row["error"]:
        return Finding(
            **common,
            template="{backend}: {what}: {error}",
            facts={"what": what, "error": row["error"]},
        )
    steps = f"; bad steps {row['bad_steps']}" if row["bad_steps"] else ""
    return Finding(
        **common,
        template="{backend}: {what}: {n_bad}/{n}{rest}",
        element=str(row["worst_index"]),
        values=(float(row["worst_got"]), float(row["worst_expected"])),
        first_bad=str(row["bad_steps"] or ""),
        counts=(int(row["n_bad"]), int(row["n_elements"])),
        facts={
            "what": what,
            "n_bad": int(row["n_bad"]),
            "n": int(row["n_elements"]),
            "rest": f" elements disagree with {row['baseline']}; {worst_at(row)}{steps}",
        },
    )


def _shown(c: float) -> str:
    """A factor with the digits that show how far it is from 1, and 1/n or n where it is one."""
    digits = min(16, max(2, math.ceil(-math.log10(abs(c - 1))) + 2)) if c != 1 else 3
    text = f"{c:.{digits}g}"
    for n, word in ((1 / c, "1/"), (c, "")):
        if abs(n) >= 2 and abs(n - round(n)) <= 1e-9 * abs(n):
            exact = f"{word}{round(n)}"
            return text if text == exact else f"{text} (= {exact})"
    return text


def float32_sized(bad: pd.DataFrame, dtype: str) -> bool:
    """Are these disagreements float32's rounding in a float64 run: errors no larger than
    float32's (max_rel_err at most 1e-5), and the worst value got of each a float32
    number (it survives a round trip through float32), as an answer that passed through
    float32 is? Random noise of the same size is not made of float32 numbers."""
    if dtype != "float64" or bad.empty or float(bad["max_rel_err"].max()) > 1e-5:
        return False
    got = bad["worst_got"].astype(float).to_numpy()
    return bool(np.all(got.astype(np.float32).astype(np.float64) == got))


TRANSPOSED = 1e-3  # transposed_residual / rel_l2_err: the transpose explains 99.9 % of it


def pattern(rows: pd.DataFrame, dtype: str, label: str = "") -> Finding | None:
    """What the plug-in's disagreeing gradients have in common, where the numbers show it:
    each one its reference transposed (``transposed_residual`` under TRANSPOSED of the
    error itself: a symmetric reference, whose transpose is itself, never qualifies), each
    one its reference times one constant factor (residual under 1% of the factor's
    distance from 1; a factor of 0 is said as zeros), or float32's rounding in a float64
    run (``float32_sized``)."""
    bad = rows[(rows["verdict"] == Verdict.DISAGREE) & (rows["kind"] != "loss")]
    if bad.empty:
        return None
    names = ", ".join(bad["tensor"])
    verb = "is" if len(bad) == 1 else "are each"
    found: dict[str, Any] = {
        "case": label,
        "topic": Topic.PATTERN,
        "bad": True,
        "evidence": "agreement",
        "tensor": names,
    }
    if "transposed_residual" in bad:
        swapped = bad["transposed_residual"].astype(float).to_numpy()
        if np.all(swapped <= TRANSPOSED * bad["rel_l2_err"].astype(float).to_numpy()):
            return Finding(
                **found,
                short="transposed",
                facts={"verb": verb},
                template="{tensor} {verb} the references' transposed: a product taken in "
                "the wrong order (dW = dZᵀ·X where Xᵀ·dZ is meant)?",
            )
    factors = bad["factor"].astype(float).to_numpy()
    residuals = bad["factor_residual"].astype(float).to_numpy()
    if np.all(np.isfinite(factors)) and np.all(residuals <= 0.01 * np.abs(factors - 1)):
        c = float(np.mean(factors))
        if np.all(np.abs(factors - c) <= 1e-3 * np.abs(c - 1)):
            if c == 0:
                return Finding(
                    **found,
                    factor=c,
                    short="zeros",
                    facts={"verb": verb},
                    template="{tensor} {verb} zero where the references are not: a "
                    "gradient never accumulated, or a path cut off from the loss?",
                )
            return Finding(
                **found,
                factor=c,
                short="a constant factor",
                facts={"verb": verb, "shown": _shown(c)},
                template="{tensor} {verb} the references' × {shown}, a constant "
                "factor: a rescaled loss, a silent gradient clip, or a missing or "
                "extra 1/N?",
            )
    worst = float(bad["max_rel_err"].max())
    if float32_sized(bad, dtype):
        return Finding(
            **found,
            short="float32-sized",
            facts={"worst": worst},
            template="{tensor} differ only at the size of float32 rounding "
            "(max_rel_err at most {worst:.1e}; float32's ε is 1.2e-7): is part of "
            "the computation done in float32 (an array, a constant or a cast)?",
        )
    return None


def _tap_groups(rows: pd.DataFrame, tap_steps: dict) -> tuple[pd.DataFrame, dict, dict]:
    """(the tap rows, the taps stacked over an unroll's steps with their T, and the other
    taps named ``name[k]`` grouped by name: {name: {k: agrees}}): only the taps whose
    numbers were compared, since a tap that failed (missing, NaN, a wrong shape) says
    nothing about where an error starts."""
    taps = rows[(rows["kind"] == "tap") & compared(rows)]
    stepped = {t: n for t, n in tap_steps.items() if n is not None and t in set(taps["tensor"])}
    groups: dict[str, dict[int, bool]] = {}
    for row in taps.itertuples():
        m = _INDEXED.match(row.tensor)
        if m and row.tensor not in stepped:
            groups.setdefault(m[1], {})[int(m[2])] = row.verdict not in FLAGGED
    return taps, stepped, groups


def _located(
    label: str, subject: str, claim: str, advice: str, bad: bool, first_bad: str = ""
) -> Finding:
    """A localisation: ``subject`` (whose values along the taps), ``claim`` (where they
    agree or diverge), ``advice`` (where to look). The selftest's table gives subject and
    claim alone."""
    return Finding(
        label,
        Topic.LOCALISED,
        "{subject} {claim}{advice}",
        bad,
        first_bad=first_bad,
        evidence="agreement",
        short=f"{subject.removeprefix('the ')} {claim}",
        facts={"subject": subject, "claim": claim, "advice": advice},
    )


def localise(
    rows: pd.DataFrame,
    tap_steps: dict,
    forward_differs: bool = False,
    mode: str = "rev",
    label: str = "",
) -> list[Finding]:
    """Walking back from the loss, where the plug-in's tap gradients first diverge (where
    the forward differs, a divergence from the last step on is what that predicts). In
    forward mode the tangents flow the other way: walking on from the first step."""
    if mode == "fwd":
        return localise_forward(rows, tap_steps, label)
    found = []
    taps, stepped, groups = _tap_groups(rows, tap_steps)
    for name, T in stepped.items():
        row = taps[taps["tensor"] == name].iloc[0]
        subject = f"dL/d{name}_t"
        if row["verdict"] not in FLAGGED:
            found.append(
                _located(
                    label,
                    subject,
                    f"agrees with the references at every step t = 0..{T - 1}",
                    "",
                    False,
                )
            )
            continue
        if not isinstance(row["bad_steps"], str) or not row["bad_steps"]:  # failed, or directional
            continue
        bad = steps_of(row["bad_steps"])
        last = max(bad)
        if last == T - 1 and forward_differs:
            found.append(
                _located(
                    label,
                    subject,
                    f"differs already at the last step t = {T - 1}",
                    ": as it must, with the forward different; compare the forward first",
                    False,
                    f"t = {T - 1}",
                )
            )
        elif last == T - 1:
            found.append(
                _located(
                    label,
                    subject,
                    f"diverges already at the last step t = {T - 1}",
                    ", the one nearest the loss: look at the "
                    f"loss's backward into {name} (the readout), before any step "
                    "backward",
                    True,
                    f"t = {T - 1}",
                )
            )
        else:
            # the backward of step t makes dL/d{name}_t whether {name} is carried from
            # step to step or is the step's input: no claim that one is made from the next
            found.append(
                _located(
                    label,
                    subject,
                    f"agrees for t ≥ {last + 1}",
                    f" and diverges below (from t = {last} down, {len(bad)} of "
                    f"{T} steps): look at the backward of step t = {last}, the "
                    f"one that makes dL/d{name}_{last}",
                    True,
                    f"t = {last}",
                )
            )
    for base, oks in groups.items():
        if len(oks) < 2:
            continue
        failed = [k for k, ok in oks.items() if not ok]
        top = max(oks)
        subject = f"dL/d{base}[k]"
        if not failed:
            found.append(
                _located(
                    label, subject, f"agrees with the references at every k = 0..{top}", "", False
                )
            )
        elif max(failed) == top and forward_differs:
            found.append(
                _located(
                    label,
                    subject,
                    f"differs already at {base}[{top}]",
                    ": as it must, with the forward different; compare the forward first",
                    False,
                    f"{base}[{top}]",
                )
            )
        elif max(failed) == top:
            found.append(
                _located(
                    label,
                    subject,
                    f"diverges already at {base}[{top}]",
                    ", the one nearest the loss: look at the loss's backward and "
                    f"the stage after {base}[{top}]",
                    True,
                    f"{base}[{top}]",
                )
            )
        else:
            k = max(failed)
            found.append(
                _located(
                    label,
                    subject,
                    f"agrees for k ≥ {k + 1}",
                    f" and diverges at k = {k}: look at the backward of the "
                    f"stage from {base}[{k}] to {base}[{k + 1}]",
                    True,
                    f"{base}[{k}]",
                )
            )
    return found


def localise_forward(rows: pd.DataFrame, tap_steps: dict, label: str = "") -> list[Finding]:
    """Forward mode: where the plug-in's tangents of the taps first diverge, walking on from
    the first step or stage (the tangent at step t is made from the one at t − 1)."""
    found = []
    taps, stepped, groups = _tap_groups(rows, tap_steps)
    for name, T in stepped.items():
        row = taps[taps["tensor"] == name].iloc[0]
        subject = f"the tangent of {name}_t"
        if row["verdict"] not in FLAGGED:
            found.append(
                _located(
                    label,
                    subject,
                    f"agrees with the references at every step t = 0..{T - 1}",
                    "",
                    False,
                )
            )
            continue
        if row["error"] and not row["bad_steps"]:
            continue
        first = min(steps_of(row["bad_steps"]))
        if first == 0:
            found.append(
                _located(
                    label,
                    subject,
                    "diverges already at the first step t = 0",
                    ": look at how the parameters' tangents enter the first step",
                    True,
                    "t = 0",
                )
            )
        else:
            found.append(
                _located(
                    label,
                    subject,
                    f"agrees for t ≤ {first - 1}",
                    f" and diverges from t = {first} on: look at the forward mode "
                    f"of step t = {first}, the one that makes the tangent of "
                    f"{name}_{first}",
                    True,
                    f"t = {first}",
                )
            )
    for base, oks in groups.items():
        bad = [k for k, ok in oks.items() if not ok]
        if len(oks) < 2 or not bad:
            continue
        k = min(bad)
        subject = f"the tangent of {base}[k]"
        if k > 0:
            found.append(
                _located(
                    label,
                    subject,
                    f"agrees for k ≤ {k - 1}",
                    f" and diverges at k = {k}: look at the forward mode of the "
                    f"stage from {base}[{k - 1}] to {base}[{k}]",
                    True,
                    f"{base}[{k}]",
                )
            )
        else:
            found.append(
                _located(label, subject, f"diverges already at {base}[0]", "", True, f"{base}[0]")
            )
    return found


def diagnose(
    agreement: pd.DataFrame,
    faults: list[Fault],
    plugins: list[str],
    tap_steps: dict[str, dict],
    reported_taps: dict[str, set],
    references: list[str],
    dtype: str = "float64",
) -> list[Finding]:
    """Every finding, case by case, in the order a user should read them."""
    findings: list[Finding] = []
    cases = list(dict.fromkeys([*agreement["case"], *(f.case for f in faults)]))
    for case in cases:
        whole = agreement[agreement["case"] == case]
        for i, mode in enumerate(list(dict.fromkeys(whole["mode"])) or ["rev"]):
            findings += _diagnose_mode(
                case,
                mode,
                whole[whole["mode"] == mode] if len(whole) else whole,
                [f for f in faults if f.case == case] if i == 0 else [],
                plugins,
                tap_steps,
                reported_taps,
                references,
                dtype,
            )
    return findings


def case_label(case: str, mode: str) -> str:
    """How a case's findings in one mode are labelled: the case, and the mode beside it
    where it is not the gradient (``"mlp (fwd)"``)."""
    return case if mode == "rev" else f"{case} ({mode})"


def _diagnose_mode(
    case, mode, table, case_faults, plugins, tap_steps, reported_taps, references, dtype
) -> list[Finding]:
    """The findings of one case in one mode (``harness.modes``); the faults come with
    the case's first mode. In modes fwd and hvp the loss row is a derivative too (J_L·u),
    not the forward, and a tap's tangent flows from the first step on, not back from the
    last."""
    findings: list[Finding] = []
    label = case_label(case, mode)
    # where the baseline is the odd one out the fault is the baseline's: those rows are
    # told once, and left out of what is said about the plug-in
    odd_base = baseline_odd(table)
    blamed = table[odd_base]
    mine = table[table["backend"].isin(plugins) & ~odd_base]
    refs = table[~table["backend"].isin(plugins) & ~odd_base]
    order = {"fatal": 0, "fault": 1, "note": 2}
    for f in sorted(case_faults, key=lambda f: order[f.severity]):
        tail = ""
        # an import error's message ends with the error's own line; its traceback (the
        # import machinery's frames) is for diagnostics.md, not the terminal
        if f.traceback and f.fault != "import error":
            lines = f.traceback.strip().splitlines()[-12:]
            tail = "\n" + "\n".join(f"      | {row}" for line in lines for row in fold(line))
        # a message's own line breaks stay under its line, behind the rule: no line of a
        # plug-in's text begins where the command's own lines (a verdict) begin; a long
        # line is folded there, bounded
        first, *rest = f.message.split("\n")  # U+2028 and the like: escaped, not lines
        shown = "\n      | ".join([bounded(first), *(row for line in rest for row in fold(line))])
        findings.append(
            Finding(
                label,
                f.fault,
                "{backend}: {topic}: {shown}{tail}",
                f.severity != "note",
                tensor=f.tensor,
                backend=f.backend,
                evidence="faults",
                facts={**f.facts, "message": f.message, "shown": shown, "tail": tail},
            )
        )
    if any(f.severity == "fatal" for f in case_faults):
        return findings
    faulted = {f.tensor for f in case_faults if f.severity == "fault"}
    # an answer that passed through float32 in a float64 run differs everywhere by
    # float32's rounding, the loss too: that is one finding (the pattern), and neither a
    # different forward nor a place along the taps where an error starts
    first_plugin = mine[mine["backend"] == plugins[0]]
    rounding = float32_sized(first_plugin[first_plugin["verdict"] == Verdict.DISAGREE], dtype)
    loss = mine[(mine["kind"] == "loss") & (mine["verdict"] == Verdict.DISAGREE)]
    forward_differs = not loss.empty and mode == "rev" and not rounding
    if forward_differs:
        row = loss.iloc[0]
        got, expected = float(row["worst_got"]), float(row["worst_expected"])
        p = parting_digits(got, expected)
        findings.append(
            Finding(
                label,
                Topic.FORWARD,
                "{backend}: the forward differs: its loss is {got} where "
                "{baseline}'s is {expected} (off by {off:.2g}); the gradients below are computed "
                "from different values, so compare the forward first",
                True,
                tensor="loss",
                backend=row["backend"],
                values=(got, expected),
                evidence="agreement",
                facts={
                    "got": f"{got:.{p}g}",
                    "expected": f"{expected:.{p}g}",
                    "off": got - expected,
                    "baseline": row["baseline"],
                },
            )
        )
    for _, row in mine[mine["verdict"] == Verdict.INCONCLUSIVE].iterrows():
        findings.append(
            Finding(
                label,
                Topic.INCONCLUSIVE,
                "{backend}: {role} {tensor!r} is inconclusive: {reason}",
                False,
                tensor=row["tensor"],
                backend=row["backend"],
                evidence="agreement",
                counts=(int(row["n_unresolved"]), int(row["n_elements"])),
                facts={"role": row["kind"], "reason": row["reason"]},
            )
        )
    for _, row in mine[flagged(mine)].iterrows():
        if (row["tensor"] in faulted and row["error"]) or (
            row["kind"] == "loss" and forward_differs
        ):
            continue
        findings.append(_disagreement(label, row))
    common = None if forward_differs else pattern(mine[mine["backend"] == plugins[0]], dtype, label)
    if common is not None:
        findings.append(common)
    ran = table[compared(table)]  # one that failed is said apart; an unsupported one ran not
    present = [r for r in references if r in set(ran["backend"]) | set(ran["baseline"])]
    if not blamed.empty:
        findings.append(_baseline_finding(label, blamed, plugins))
    odd = list(dict.fromkeys(mine.loc[mine["odd_one_out"].isin(plugins), "tensor"]))
    if odd:  # every such tensor, in the table's order
        findings.append(
            Finding(
                label,
                Topic.ODD_ONE_OUT,
                "yours is the odd one out on {tensor}: "
                "the other backends ({others}) agree among themselves there",
                True,
                tensor=", ".join(odd),
                evidence="agreement",
                facts={"others": ", ".join(present), "tensors": odd},
            )
        )
    bad_refs = refs[flagged(refs) & (refs["verdict"] != Verdict.FAILED)]
    if len(present) < 2:
        findings.append(
            Finding(
                label,
                Topic.REFERENCES,
                "one reference ({present}): nothing to cross-check it with",
                False,
                evidence="agreement",
                facts={"present": ", ".join(present) or "none"},
            )
        )
    elif bad_refs.empty:
        but = (
            ""
            if blamed.empty
            else f" but those where the baseline {blamed['baseline'].iloc[0]} is the odd one out"
        )
        findings.append(
            Finding(
                label,
                Topic.REFERENCES,
                "the references agree with each other on every tensor{but}: {present}",
                False,
                evidence="agreement",
                facts={"but": but, "present": ", ".join(present)},
            )
        )
    else:
        which = "; ".join(
            f"{r.backend} vs {r.baseline} on {r.kind} {r.tensor!r}"
            for r in bad_refs.head(4).itertuples()
        )
        findings.append(
            Finding(
                label,
                Topic.REFERENCES,
                "the references disagree among themselves ({which}): judge those tensors with care",
                False,
                evidence="agreement",
                caution=True,
                facts={"which": which},
            )
        )
    main = [p for p in plugins if p in set(mine["backend"])][:1]
    if not main:
        return findings
    rows = mine[mine["backend"] == main[0]]
    has_taps = bool(tap_steps.get(case))
    reported = reported_taps.get(case, set())
    if reported and not rounding:
        findings += localise(rows, tap_steps.get(case, {}), forward_differs, mode, label)
        # the parameters whose numbers disagree: a missing one, a NaN or a wrong shape is
        # its own fault, and says nothing about how a gradient is formed
        params_bad = rows[(rows["kind"] == "param") & (rows["verdict"] == Verdict.DISAGREE)]
        taps = rows[rows["kind"] == "tap"]
        taps_ok = compared(taps).any() and not flagged(taps).any()
        if taps_ok and not params_bad.empty and not forward_differs and mode == "rev":
            findings.append(
                _between(label, list(taps["tensor"]), list(params_bad["tensor"]), common)
            )
    elif has_taps and flagged(rows).any() and mode == "rev" and not rounding:
        findings.append(
            Finding(
                label,
                Topic.LOCALISED,
                "report tap gradients too ({{'grads': "
                "..., 'taps': {{...}}}}, the taps `gradparity describe` lists) "
                "to see at which step or stage the error starts",
                False,
                evidence="agreement",
            )
        )
    return findings


def _between(label: str, taps: list[str], params: list[str], common: Finding | None) -> Finding:
    """Every tap's gradient agrees and these parameters' disagree: the error is in the
    stage between the taps and those parameters, where each parameter's gradient is made
    from the gradient at its tap. What to look for there: the factor, where the pattern
    found one; else the usual slips of that stage."""
    how = (
        "; the factor above says how"
        if common is not None
        else " (a transpose, a sum over the batch or the steps, which h or x is used)"
    )
    return Finding(
        label,
        Topic.LOCALISED,
        "every reported dL/d(tap) agrees ({taps}), so the "
        "gradient flowing back is right up to the taps; the gradients of {tensor} "
        "are wrong: the error is in the stage between the taps and {those}, where "
        "each is made from the gradient at its tap{how}",
        True,
        tensor=", ".join(params),
        evidence="agreement",
        short="every dL/d(tap) agrees",
        facts={
            "taps": ", ".join(taps),
            "params": params,
            "how": how,
            "those": "that parameter" if len(params) == 1 else "those parameters",
        },
    )


def _baseline_finding(label: str, blamed: pd.DataFrame, plugins: list[str]) -> Finding:
    """The baseline is the odd one out on these tensors: it disagrees with every other
    backend, the plug-in among them, while they agree among themselves. Still a failed
    run (``bad``): the yardstick is broken there."""
    base = blamed["baseline"].iloc[0]
    tensors = list(dict.fromkeys(f"{r.kind} {r.tensor!r}" for r in blamed.itertuples()))
    others = [b for b in dict.fromkeys(blamed["backend"]) if b not in plugins]
    yours = blamed[blamed["backend"].isin(plugins)]
    against = others + (["yours"] if len(yours) else [])
    own = ""
    if len(yours):
        row = yours.iloc[0]
        own = f" ({row['kind']} {row['tensor']!r}, yours vs {base}: {worst_at(row)})"
    return Finding(
        label,
        Topic.BASELINE_ODD,
        "the baseline {backend} is the odd one out on "
        "{tensors}: it disagrees with {against}, which agree among themselves there; "
        "the fault is the baseline's, not yours{own}",
        True,
        backend=base,
        evidence="agreement",
        facts={"tensors": ", ".join(tensors), "against": listing(against), "own": own},
    )


def how(findings: list[Finding]) -> str:
    """Why a plug-in was flagged, in a few words (for the selftest table): its faults, or
    the tensors that disagree, and where the localisation puts the error."""
    bad = [f for f in findings if f.bad]
    if not bad:
        return ""
    faults = [f for f in bad if f.topic not in FROM_TABLES]
    if faults:
        by_fault: dict[str, list[str]] = {}
        for f in faults:
            by_fault.setdefault(str(f.topic), []).extend(
                f.facts.get("tensors") or ([f.tensor] if f.tensor else [])
            )
        parts = []
        for fault_name, tensors in by_fault.items():
            names = sorted(set(tensors))
            shown = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
            parts.append(f"{fault_name} ({shown})" if names else fault_name)
        short = "; ".join(parts)
    else:
        tensors = list(dict.fromkeys(f.tensor or "loss" for f in bad if f.topic == Topic.DISAGREES))
        verb = "disagrees" if len(tensors) == 1 else "disagree"
        short = f"{', '.join(tensors[:3])}{' …' if len(tensors) > 3 else ''} {verb}"
        if any(f.topic == Topic.BASELINE_ODD for f in bad):
            short = "; ".join(
                filter(None, [short if tensors else "", "the baseline is the odd one out"])
            )
    if any(f.topic == Topic.FORWARD for f in bad):
        short = f"the forward differs; {short}"
    common = next((f for f in bad if f.topic == Topic.PATTERN), None)
    if common is not None:
        short += "; " + common.short
    where = next((f for f in bad if f.topic == Topic.LOCALISED), None)
    if where is not None:
        short += "; " + where.short
    return short
