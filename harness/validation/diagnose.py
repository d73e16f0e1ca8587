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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.compare import FLAGGED, baseline_odd, flagged, listing, parting_digits, worst_at
from harness.validation.faults import Fault

_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


@dataclass
class Finding:
    case: str
    what: str  # a fault kind, "disagrees", "localised", "references", "odd one out",
    # "baseline odd one out"
    tensor: str
    text: str
    bad: bool  # does it count against the plug-in?

    def line(self) -> str:
        mark = "✗" if self.bad else ("!" if "disagree" in self.text else "·")
        return f"  {mark} {self.case}: {self.text}"


def steps_of(ranges: str) -> set[int]:
    """'0-3,7' -> {0, 1, 2, 3, 7}."""
    out: set[int] = set()
    for part in filter(None, str(ranges or "").split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _disagreement(row) -> str:
    what = f"{row['kind']} {row['tensor']!r}" if row["kind"] != "loss" else "the loss"
    if row["error"]:
        return f"{what}: {row['error']}"
    steps = f"; bad steps {row['bad_steps']}" if row["bad_steps"] else ""
    return (
        f"{what}: {int(row['n_bad'])}/{int(row['n_elements'])} elements disagree with {row['baseline']}; "
        f"{worst_at(row)}{steps}"
    )


def _shown(c: float) -> str:
    """A factor with the digits that show how far it is from 1, and 1/n or n where it is one."""
    digits = min(16, max(2, math.ceil(-math.log10(abs(c - 1))) + 2)) if c != 1 else 3
    text = f"{c:.{digits}g}"
    for n, word in ((1 / c, "1/"), (c, "")):
        if abs(n) >= 2 and abs(n - round(n)) <= 1e-9 * abs(n):
            return f"{text} (= {word}{round(n)})"
    return text


def pattern(rows: pd.DataFrame, dtype: str) -> str:
    """What the plug-in's disagreeing gradients have in common, where the numbers show it:
    each one its reference times one constant factor (residual under 1% of the factor's
    distance from 1; a factor of 0 is said as zeros), or errors no larger than float32's rounding in a float64 run."""
    bad = rows[(rows["verdict"] == "disagree") & (rows["kind"] != "loss")]
    if bad.empty:
        return ""
    names = ", ".join(bad["tensor"])
    factors = bad["factor"].astype(float).to_numpy()
    residuals = bad["factor_residual"].astype(float).to_numpy()
    if np.all(np.isfinite(factors)) and np.all(residuals <= 0.01 * np.abs(factors - 1)):
        c = float(np.mean(factors))
        if np.all(np.abs(factors - c) <= 1e-3 * np.abs(c - 1)):
            verb = "is" if len(bad) == 1 else "are each"
            if c == 0:
                return (f"{names} {verb} zero where the references are not: a gradient never "
                        "accumulated, or a path cut off from the loss?")  # fmt: skip
            return (f"{names} {verb} the references' × {_shown(c)}, a constant factor: a "
                    "rescaled loss, a silent gradient clip, or a missing or extra 1/N?")  # fmt: skip
    worst = float(bad["max_rel_err"].max())
    if dtype == "float64" and worst <= 1e-5:
        return (f"{names} differ only at the size of float32 rounding (max_rel_err at most "
                f"{worst:.1e}; float32's ε is 1.2e-7): is part of the computation done in "
                "float32 (an array, a constant or a cast)?")  # fmt: skip
    return ""


def _tap_groups(rows: pd.DataFrame, tap_steps: dict) -> tuple[pd.DataFrame, dict, dict]:
    """(the tap rows, the taps stacked over an unroll's steps with their T, and the other
    taps named ``name[k]`` grouped by name: {name: {k: agrees}})."""
    taps = rows[rows["kind"] == "tap"]
    stepped = {t: n for t, n in tap_steps.items() if n is not None and t in set(taps["tensor"])}
    groups: dict[str, dict[int, bool]] = {}
    for row in taps.itertuples():
        m = _INDEXED.match(row.tensor)
        if m and row.tensor not in stepped:
            groups.setdefault(m[1], {})[int(m[2])] = row.verdict not in FLAGGED
    return taps, stepped, groups


def localise(
    rows: pd.DataFrame, tap_steps: dict, forward_differs: bool = False, mode: str = "rev"
) -> list[str]:
    """Walking back from the loss, where the plug-in's tap gradients first diverge (where
    the forward differs, a divergence from the last step on is what that predicts). In
    forward mode the tangents flow the other way: walking on from the first step."""
    if mode == "fwd":
        return localise_forward(rows, tap_steps)
    texts = []
    taps, stepped, groups = _tap_groups(rows, tap_steps)
    for name, T in stepped.items():
        row = taps[taps["tensor"] == name].iloc[0]
        if row["verdict"] not in FLAGGED:
            texts.append(f"dL/d{name}_t agrees with the references at every step t = 0..{T - 1}")
            continue
        if row["error"] and not row["bad_steps"]:
            continue
        bad = steps_of(row["bad_steps"])
        last = max(bad)
        if last == T - 1 and forward_differs:
            texts.append(
                f"dL/d{name}_t differs already at the last step t = {T - 1}: as it must, with "
                "the forward different; compare the forward first"
            )
        elif last == T - 1:
            texts.append(
                f"dL/d{name}_t diverges already at the last step t = {T - 1}, the one nearest the "
                f"loss: look at the loss's backward into {name} (the readout), before any step backward"
            )
        else:
            texts.append(
                f"dL/d{name}_t agrees for t ≥ {last + 1} and diverges below (from t = {last} "
                f"down, {len(bad)} of {T} steps): look at the step backward — how "
                f"dL/d{name}_{last} is formed from dL/d{name}_{last + 1}"
            )
    for base, oks in groups.items():
        if len(oks) < 2:
            continue
        bad = [k for k, ok in oks.items() if not ok]
        top = max(oks)
        if not bad:
            texts.append(f"dL/d{base}[k] agrees with the references at every k = 0..{top}")
        elif max(bad) == top:
            texts.append(
                f"dL/d{base}[k] diverges already at {base}[{top}], the one nearest the loss: look "
                f"at the loss's backward and the stage after {base}[{top}]"
            )
        else:
            k = max(bad)
            texts.append(
                f"dL/d{base}[k] agrees for k ≥ {k + 1} and diverges at k = {k}: look at the "
                f"backward of the stage from {base}[{k}] to {base}[{k + 1}]"
            )
    return texts


def localise_forward(rows: pd.DataFrame, tap_steps: dict) -> list[str]:
    """Forward mode: where the plug-in's tangents of the taps first diverge, walking on from
    the first step or stage (the tangent at step t is made from the one at t − 1)."""
    texts = []
    taps, stepped, groups = _tap_groups(rows, tap_steps)
    for name, T in stepped.items():
        row = taps[taps["tensor"] == name].iloc[0]
        if row["verdict"] not in FLAGGED:
            texts.append(
                f"the tangent of {name}_t agrees with the references at every step t = 0..{T - 1}"
            )
            continue
        if row["error"] and not row["bad_steps"]:
            continue
        first = min(steps_of(row["bad_steps"]))
        if first == 0:
            texts.append(f"the tangent of {name}_t diverges already at the first step t = 0: look "
                         f"at how the parameters' tangents enter the first step")  # fmt: skip
        else:
            texts.append(f"the tangent of {name}_t agrees for t ≤ {first - 1} and diverges from "
                         f"t = {first} on: look at the step forward — how the tangent of "
                         f"{name}_{first} is formed from that of {name}_{first - 1}")  # fmt: skip
    for base, oks in groups.items():
        bad = [k for k, ok in oks.items() if not ok]
        if len(oks) < 2 or not bad:
            continue
        k = min(bad)
        texts.append(f"the tangent of {base}[k] agrees for k ≤ {k - 1} and diverges at k = {k}: "
                     f"look at the forward mode of the stage from {base}[{k - 1}] to {base}[{k}]"
                     if k > 0 else f"the tangent of {base}[k] diverges already at {base}[0]")  # fmt: skip
    return texts


def diagnose(agreement: pd.DataFrame, faults: list[Fault], plugins: list[str],
             tap_steps: dict[str, dict], reported_taps: dict[str, set],
             references: list[str], dtype: str = "float64") -> list[Finding]:  # fmt: skip
    """Every finding, case by case, in the order a user should read them."""
    findings: list[Finding] = []
    cases = list(dict.fromkeys([*agreement["case"], *(f.case for f in faults)]))
    for case in cases:
        whole = agreement[agreement["case"] == case]
        for i, mode in enumerate(list(dict.fromkeys(whole["mode"])) or ["rev"]):
            findings += _diagnose_mode(
                case, mode, whole[whole["mode"] == mode] if len(whole) else whole,
                [f for f in faults if f.case == case] if i == 0 else [], plugins, tap_steps,
                reported_taps, references, dtype,
            )  # fmt: skip
    return findings


def _diagnose_mode(case, mode, table, case_faults, plugins, tap_steps, reported_taps,
                   references, dtype) -> list[Finding]:  # fmt: skip
    """The findings of one case in one mode (``harness.modes``); the faults come with
    the case's first mode. In modes fwd and hvp the loss row is a derivative too (J_L·u),
    not the forward, and a tap's tangent flows from the first step on, not back from the
    last."""
    findings: list[Finding] = []
    label = case if mode == "rev" else f"{case} ({mode})"
    if True:
        # where the baseline is the odd one out the fault is the baseline's: those rows are
        # told once, and left out of what is said about the plug-in
        odd_base = baseline_odd(table)
        blamed = table[odd_base]
        mine = table[table["backend"].isin(plugins) & ~odd_base]
        refs = table[~table["backend"].isin(plugins) & ~odd_base]
        order = {"fatal": 0, "fault": 1, "note": 2}
        for f in sorted(case_faults, key=lambda f: order[f.severity]):
            text = f"{f.backend}: {f.fault}: {f.message}"
            if f.traceback:
                tail = f.traceback.strip().splitlines()[-12:]
                text += "\n" + "\n".join(f"      | {line}" for line in tail)
            findings.append(Finding(label, f.fault, f.tensor, text, f.severity != "note"))
        if any(f.severity == "fatal" for f in case_faults):
            return findings
        faulted = {f.tensor for f in case_faults if f.severity == "fault"}
        loss = mine[(mine["kind"] == "loss") & (mine["verdict"] == "disagree")]
        forward_differs = not loss.empty and mode == "rev"
        if forward_differs:
            row = loss.iloc[0]
            got, expected = float(row["worst_got"]), float(row["worst_expected"])
            p = parting_digits(got, expected)
            findings.append(Finding(label, "forward", "loss", (
                f"{row['backend']}: the forward differs: its loss is {got:.{p}g} where "
                f"{row['baseline']}'s is {expected:.{p}g} (off by {got - expected:.2g}); the "
                "gradients below are computed from different values, so compare the forward first"),
                True))  # fmt: skip
        for _, row in mine[mine["verdict"] == "inconclusive"].iterrows():
            findings.append(Finding(label, "inconclusive", row["tensor"],
                                    f"{row['backend']}: {row['kind']} {row['tensor']!r} is "
                                    f"inconclusive: {row['reason']}", False))  # fmt: skip
        for _, row in mine[flagged(mine)].iterrows():
            if (row["tensor"] in faulted and row["error"]) or (
                row["kind"] == "loss" and forward_differs
            ):
                continue
            findings.append(Finding(label, "disagrees", row["tensor"],
                                    f"{row['backend']}: {_disagreement(row)}", True))  # fmt: skip
        common = pattern(mine[mine["backend"] == plugins[0]], dtype) if not forward_differs else ""
        if common:
            findings.append(Finding(label, "pattern", "", common, True))
        present = [r for r in references if r in set(table["backend"]) | set(table["baseline"])]
        if not blamed.empty:
            findings.append(_baseline_finding(label, blamed, plugins))
        odd = sorted(set(mine.loc[mine["odd_one_out"].isin(plugins), "tensor"]))
        if odd:
            findings.append(Finding(label, "odd one out", "", (
                f"yours is the odd one out on {', '.join(odd)}: the other backends "
                f"({', '.join(present)}) agree among themselves there"), True))  # fmt: skip
        bad_refs = refs[flagged(refs)]
        if len(present) < 2:
            findings.append(Finding(label, "references", "",
                                    f"one reference ({', '.join(present) or 'none'}): nothing to "
                                    "cross-check it with", False))  # fmt: skip
        elif bad_refs.empty:
            but = ("" if blamed.empty else " but those where the baseline "
                   f"{blamed['baseline'].iloc[0]} is the odd one out")  # fmt: skip
            findings.append(Finding(label, "references", "",
                                    f"the references agree with each other on every tensor"
                                    f"{but}: {', '.join(present)}", False))  # fmt: skip
        else:
            which = "; ".join(f"{r.backend} vs {r.baseline} on {r.kind} {r.tensor!r}"
                              for r in bad_refs.head(4).itertuples())  # fmt: skip
            findings.append(Finding(label, "references", "", f"the references disagree among "
                                    f"themselves ({which}): judge those tensors with care", False))  # fmt: skip
        main = [p for p in plugins if p in set(mine["backend"])][:1]
        if not main:
            return findings
        rows = mine[mine["backend"] == main[0]]
        has_taps = bool(tap_steps.get(case))
        reported = reported_taps.get(case, set())
        if reported:
            for text in localise(rows, tap_steps.get(case, {}), forward_differs, mode):
                bad = "diverges" in text
                findings.append(Finding(label, "localised", "", text, bad))
            params_bad = rows[(rows["kind"] == "param") & flagged(rows)]
            taps_ok = not flagged(rows[rows["kind"] == "tap"]).any()
            if taps_ok and not params_bad.empty and not forward_differs and mode == "rev":
                names = ", ".join(params_bad["tensor"])
                where = (
                    "; the factor above says how"
                    if common
                    else " (a transpose, a sum over the batch or the steps, which h or x is used)"
                )
                findings.append(Finding(label, "localised", "", (
                    f"every reported dL/d(tap) agrees, so the gradient flowing back is right; "
                    f"the parameter gradients {names} are wrong: look at how they are formed from "
                    f"it{where}"), True))  # fmt: skip
        elif has_taps and flagged(rows).any() and mode == "rev":
            findings.append(Finding(label, "localised", "", (
                "report tap gradients too ({'grads': ..., 'taps': {...}}, the taps `gradparity "
                "describe` lists) to see at which step or stage the error starts"), False))  # fmt: skip
    return findings


def _baseline_finding(label: str, blamed: pd.DataFrame, plugins: list[str]) -> Finding:
    """The baseline is the odd one out on these tensors: it disagrees with every other
    backend, the plug-in among them, while they agree among themselves. Still a failed
    run (``bad``): the yardstick is broken there."""
    base = blamed["baseline"].iloc[0]
    tensors = list(dict.fromkeys(f"{r.kind} {r.tensor!r}" for r in blamed.itertuples()))
    others = [b for b in dict.fromkeys(blamed["backend"]) if b not in plugins]
    yours = blamed[blamed["backend"].isin(plugins)]
    against = others + (["yours"] if len(yours) else [])
    text = (f"the baseline {base} is the odd one out on {', '.join(tensors)}: it disagrees with "
            f"{listing(against)}, which agree among themselves there; the fault is the "
            "baseline's, not yours")  # fmt: skip
    if len(yours):
        row = yours.iloc[0]
        text += f" ({row['kind']} {row['tensor']!r}, yours vs {base}: {worst_at(row)})"
    return Finding(label, "baseline odd one out", "", text, True)


def how(findings: list[Finding]) -> str:
    """Why a plug-in was flagged, in a few words (for the selftest table): its faults, or
    the tensors that disagree, and where the localisation puts the error."""
    bad = [f for f in findings if f.bad]
    if not bad:
        return ""
    faults = [f for f in bad if f.what not in ("disagrees", "odd one out", "localised",
                                               "pattern", "forward", "baseline odd one out")]  # fmt: skip
    if faults:
        kinds: dict[str, list[str]] = {}
        for f in faults:
            kinds.setdefault(f.what, []).extend([f.tensor] if f.tensor else [])
        parts = []
        for kind, tensors in kinds.items():
            names = sorted(set(tensors))
            shown = ", ".join(names[:3]) + (" …" if len(names) > 3 else "")
            parts.append(f"{kind} ({shown})" if names else kind)
        short = "; ".join(parts)
    else:
        tensors = list(dict.fromkeys(f.tensor or "loss" for f in bad if f.what == "disagrees"))
        verb = "disagrees" if len(tensors) == 1 else "disagree"
        short = f"{', '.join(tensors[:3])}{' …' if len(tensors) > 3 else ''} {verb}"
        if any(f.what == "baseline odd one out" for f in bad):
            short = "; ".join(filter(None, [short if tensors else "",
                                            "the baseline is the odd one out"]))  # fmt: skip
    if any(f.what == "forward" for f in bad):
        short = f"the forward differs; {short}"
    common = next((f.text for f in bad if f.what == "pattern"), "")
    if common:
        short += "; " + ("a constant factor" if "constant factor" in common else "float32-sized")
    where = next((f.text for f in bad if f.what == "localised"), "")
    m = re.search(r"(agrees for [^(:]*?(?= and)|diverges already at [^,]*)", where)
    if m:
        subject = re.split(r" (?:agrees|diverges)", where)[0].removeprefix("the ")
        short += f"; {subject} {m[1]}"
    elif where.startswith("every reported"):
        short += "; every dL/d(tap) agrees"
    return short
