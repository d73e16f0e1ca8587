"""Diagnostics a user can act on, read from a validation's tables (nothing recomputed).

Per case: the faults; each tensor where the plug-in disagrees (how many elements, the
worst one's index with the value got and expected); whether the references agree among
themselves (so the user knows the yardstick is sound) and whether the plug-in is the odd
one out; and, when the plug-in reported tap gradients, where they leave the references,
walking back from the loss: the first unroll step (taps stacked over a scan) or the
first stage (taps named ``name[k]``) at which they diverge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from harness.compare import FLAGGED, flagged
from harness.plugins.faults import Fault

_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


@dataclass
class Finding:
    case: str
    what: str  # a fault kind, "disagrees", "localised", "references", "odd one out"
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
        f"worst at {row['worst_index']}: got {row['worst_got']:.6g}, expected "
        f"{row['worst_expected']:.6g} (max rel err {row['max_rel_err']:.2e}){steps}"
    )


def localise(rows: pd.DataFrame, tap_steps: dict) -> list[str]:
    """Walking back from the loss, where the plug-in's tap gradients first diverge."""
    texts = []
    taps = rows[rows["kind"] == "tap"]
    stepped = {t: n for t, n in tap_steps.items() if n is not None and t in set(taps["tensor"])}
    for name, T in stepped.items():
        row = taps[taps["tensor"] == name].iloc[0]
        if row["verdict"] not in FLAGGED:
            texts.append(f"dL/d{name}_t agrees with the references at every step t = 0..{T - 1}")
            continue
        if row["error"] and not row["bad_steps"]:
            continue
        bad = steps_of(row["bad_steps"])
        last = max(bad)
        if last == T - 1:
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
    groups: dict[str, dict[int, bool]] = {}
    for row in taps.itertuples():
        m = _INDEXED.match(row.tensor)
        if m and row.tensor not in stepped:
            groups.setdefault(m[1], {})[int(m[2])] = row.verdict not in FLAGGED
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


def diagnose(agreement: pd.DataFrame, faults: list[Fault], plugins: list[str],
             tap_steps: dict[str, dict], reported_taps: dict[str, set],
             references: list[str]) -> list[Finding]:  # fmt: skip
    """Every finding, case by case, in the order a user should read them."""
    findings: list[Finding] = []
    cases = list(dict.fromkeys([*agreement["case"], *(f.case for f in faults)]))
    for case in cases:
        table = agreement[agreement["case"] == case]
        mine = table[table["backend"].isin(plugins)]
        refs = table[~table["backend"].isin(plugins)]
        case_faults = [f for f in faults if f.case == case]
        order = {"fatal": 0, "fault": 1, "note": 2}
        for f in sorted(case_faults, key=lambda f: order[f.severity]):
            text = f"{f.backend}: {f.fault}: {f.message}"
            if f.traceback:
                tail = f.traceback.strip().splitlines()[-12:]
                text += "\n" + "\n".join(f"      | {line}" for line in tail)
            findings.append(Finding(case, f.fault, f.tensor, text, f.severity != "note"))
        if any(f.severity == "fatal" for f in case_faults):
            continue
        faulted = {f.tensor for f in case_faults if f.severity == "fault"}
        for _, row in mine[mine["verdict"] == "inconclusive"].iterrows():
            findings.append(Finding(case, "inconclusive", row["tensor"],
                                    f"{row['backend']}: {row['kind']} {row['tensor']!r} is "
                                    f"inconclusive: {row['reason']}", False))  # fmt: skip
        for _, row in mine[flagged(mine)].iterrows():
            if row["tensor"] in faulted and row["error"]:
                continue
            findings.append(Finding(case, "disagrees", row["tensor"],
                                    f"{row['backend']}: {_disagreement(row)}", True))  # fmt: skip
        present = [r for r in references if r in set(table["backend"]) | set(table["baseline"])]
        odd = sorted(set(mine.loc[mine["odd_one_out"].isin(plugins), "tensor"]))
        if odd:
            findings.append(Finding(case, "odd one out", "", (
                f"yours is the odd one out on {', '.join(odd)}: the other backends "
                f"({', '.join(present)}) agree among themselves there"), True))  # fmt: skip
        bad_refs = refs[flagged(refs)]
        if len(present) < 2:
            findings.append(Finding(case, "references", "",
                                    f"one reference ({', '.join(present) or 'none'}): nothing to "
                                    "cross-check it with", False))  # fmt: skip
        elif bad_refs.empty:
            findings.append(Finding(case, "references", "",
                                    f"the references agree with each other on every tensor: "
                                    f"{', '.join(present)}", False))  # fmt: skip
        else:
            which = "; ".join(f"{r.backend} vs {r.baseline} on {r.kind} {r.tensor!r}"
                              for r in bad_refs.head(4).itertuples())  # fmt: skip
            findings.append(Finding(case, "references", "", f"the references disagree among "
                                    f"themselves ({which}): judge those tensors with care", False))  # fmt: skip
        main = [p for p in plugins if p in set(mine["backend"])][:1]
        if not main:
            continue
        rows = mine[mine["backend"] == main[0]]
        has_taps = bool(tap_steps.get(case))
        reported = reported_taps.get(case, set())
        if reported:
            for text in localise(rows, tap_steps.get(case, {})):
                bad = "diverges" in text
                findings.append(Finding(case, "localised", "", text, bad))
            params_bad = rows[(rows["kind"] == "param") & flagged(rows)]
            taps_ok = not flagged(rows[rows["kind"] == "tap"]).any()
            if taps_ok and not params_bad.empty:
                names = ", ".join(params_bad["tensor"])
                findings.append(Finding(case, "localised", "", (
                    f"every reported dL/d(tap) agrees, so the gradient flowing back is right; "
                    f"the parameter gradients {names} are wrong: look at how they are formed from "
                    "it (a transpose, a sum over the batch or the steps, which h or x is used)"),
                    True))  # fmt: skip
        elif has_taps and flagged(rows).any():
            findings.append(Finding(case, "localised", "", (
                "report tap gradients too ({'grads': ..., 'taps': {...}}, the taps `gradparity "
                "describe` lists) to see at which step or stage the error starts"), False))  # fmt: skip
    return findings


def how(findings: list[Finding]) -> str:
    """Why a plug-in was flagged, in a few words (for the selftest table): its faults, or
    the tensors that disagree, and where the localisation puts the error."""
    bad = [f for f in findings if f.bad]
    if not bad:
        return ""
    faults = [f for f in bad if f.what not in ("disagrees", "odd one out", "localised")]
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
    where = next((f.text for f in bad if f.what == "localised"), "")
    m = re.search(r"(agrees for [^(:]*?(?= and)|diverges already at [^,]*)", where)
    if m:
        short += f"; {where.split(' ')[0]} {m[1]}"
    elif where.startswith("every reported"):
        short += "; every dL/d(tap) agrees"
    return short
