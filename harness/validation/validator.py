"""``validate``: your implementation against the references, case by case.

    from harness import validate
    v = validate("examples/model_mlp.py:grads", form="model", cases=["mlp"])
    v.ok            # True iff every tensor agrees and no fault was found
    print(v.text()) # the agreement table, the faults and the diagnostics
    v.agreement     # the tidy table (as ``gradparity run``), v.faults the fault table

The plug-in becomes one more Backend; its Results go through the same comparison as the
references' (``harness.compare``), and the diagnostics read the tables that come out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.backends import DEFAULT_BACKENDS, UnknownBackend, get_backend, references_asked
from harness.cases import Case
from harness.compare import (
    AGREEING,
    Comparison,
    Verdict,
    baseline_odd,
    compared,
    counted,
    flagged,
    listing,
)
from harness.escaping import code, lit, terminal, write_csv
from harness.modes import DEFAULT_MODES, parse_modes
from harness.provenance import Source, changed, digest, header, sources, summary_entry, with_sources
from harness.result import BUILD, Result
from harness.runner import noise_plan, resolve_cases
from harness.sandbox.channel import DEFAULT_MEMORY, DEFAULT_TIMEOUT, InProcess, Isolated, fault
from harness.sandbox.wire import conforms
from harness.selection import check_comparable
from harness.target import BadTarget, Target, locate, parse_target, target_of
from harness.validation.aside import helper, wanted
from harness.validation.backend import PluginBackend, PluginResult
from harness.validation.checks import MAX_OUTPUT, fatal
from harness.validation.diagnose import case_label, diagnose, how
from harness.validation.faults import FAULT_COLUMNS, Fault
from harness.validation.findings import Finding, Topic
from harness.validation.forms import FORMS, described
from harness.validation.forms.base import NeedCases, named_cases
from harness.validation.jobs import run_cases
from harness.validation.plugin_calls import LOAD, LOAD_REPLY
from harness.validation.printed import Printed, printed_by, terminal_lines

STATEFUL = {"state across calls", "non-deterministic"}  # what another order of cases can change

__all__ = ["NeedCases", "Validation", "validate"]


@dataclass
class Validation:
    """What ``validate`` found: the comparison, the faults and the diagnostics."""

    comparison: Comparison
    plugin: str
    form: str
    references: list[str]
    faults: list[Fault] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dtype: str = "float64"
    seed: int = 0
    printed: list[Printed] = field(default_factory=list)  # what the plug-in printed
    sources: list[Source] = field(default_factory=list)  # the files of the user's that ran
    # the form checks the plug-in against its own forward alone by design (a custom stage,
    # a Function without a case): no reference is asked of it (``unreferenced``)
    own_forward_alone: bool = False
    findings: list[Finding] = field(init=False)

    def __post_init__(self) -> None:
        results = self.comparison.results
        mine = [r for r in results if r.backend.startswith(self.plugin)]
        tap_steps: dict[str, dict] = {}
        reported: dict[str, set] = {}
        for r in results:  # over the modes: a mode without taps (hvp) adds none
            if r.backend == self.comparison.baseline:
                tap_steps.setdefault(r.case, {}).update(r.tap_steps)
        for r in mine:
            if r.backend == self.plugin:
                reported.setdefault(r.case, set()).update(r.taps)
        self.findings = diagnose(
            self.comparison.agreement,
            self.faults,
            self.plugins,
            tap_steps,
            reported,
            self.references,
            self.dtype,
        )
        self.findings += [
            Finding(
                r.case,
                Topic.CASE_FAILED,
                "{error}",
                True,
                evidence="build",
                facts={"error": r.error or ""},
            )
            for r in results
            if r.backend == BUILD
        ]
        ids = self.comparison.identities
        self.findings += [
            Finding(
                f"{r['case']} ({r['mode']})",
                Topic.IDENTITY,
                "{identity} identity broken: {reason}",
                True,
                backend=r["backend"],
                evidence="identities",
                facts={"identity": r["identity"], "reason": r["reason"]},
            )
            for _, r in ids[ids["backend"].isin(self.plugins) & ~ids["ok"]].iterrows()
        ]

    @property
    def unbuilt(self) -> list[str]:
        """The cases that could not be built: nothing was checked there."""
        return [r.case for r in self.comparison.results if r.backend == BUILD]

    @property
    def plugins(self) -> list[str]:
        """The plug-in's backend names: its own and, for a stage, the finite differences of
        its own forward."""
        return [self.plugin, f"{self.plugin}(fd)"]

    @property
    def agreement(self) -> pd.DataFrame:
        return self.comparison.agreement

    @property
    def fault_table(self) -> pd.DataFrame:
        return pd.DataFrame([f.row() for f in self.faults], columns=FAULT_COLUMNS)

    @property
    def mine(self) -> pd.DataFrame:
        table = self.agreement
        return table[table["backend"].isin(self.plugins)]

    @property
    def unsupported(self) -> dict[str, str]:
        """case -> the function the plug-in lacks there: the cases it cannot run, counted
        apart (a partial engine that is right wherever it runs agrees)."""
        return {
            r.case: r.unsupported
            for r in self.comparison.results
            if r.backend == self.plugin and r.unsupported
        }

    @property
    def ok(self) -> bool:
        """Every tensor of the plug-in that ran agrees (at least one did), and nothing is
        wrong with how it behaved."""
        mine = self.mine
        rows_ok = not flagged(mine).any() and bool(
            (compared(mine) & mine["verdict"].isin(AGREEING)).any()
        )
        ids = self.comparison.identities
        held = not (ids["backend"].isin(self.plugins) & ~ids["ok"].astype(bool)).any()
        return (
            rows_ok
            and held
            and not self.unbuilt
            and not self.references_failed
            and not self.unreferenced
            and not self.modes_not_compared
            and not any(f.severity != "note" for f in self.faults)
        )

    @property
    def modes_not_compared(self) -> list[str]:
        """The modes asked for (``harness.modes``) in which no tensor of the plug-in was
        compared (it supplies no such derivative, or every case skipped it): the agreement
        in the others is no claim about them, and asking for them is no success."""
        asked = list(dict.fromkeys(self.comparison.runs["mode"]))
        mine = self.mine
        answered = set(mine.loc[compared(mine), "mode"])
        return [m for m in asked if m not in answered]

    @property
    def unreferenced(self) -> list[str]:
        """The cases on which no reference ran (none applies, none was left after the
        form's choice, or each failed or was unsupported), where the form asks for one: the
        plug-in was held against its own forward at most, which vouches only for its
        backward's consistency with that forward, right or wrong."""
        if self.own_forward_alone:
            return []
        runs = self.comparison.runs
        ran = set(
            runs.loc[(runs["status"] == "ok") & runs["backend"].isin(self.references), "case"]
        )
        return [str(c) for c in dict.fromkeys(runs["case"]) if c not in ran]

    @property
    def references_failed(self) -> dict[str, list[str]]:
        """case -> the references that failed there (a failed run, not a skip): the
        plug-in was judged against the others alone (finite differences, say), and a case
        that fails in any way is no success (a case written with np. where xp. is needed)."""
        runs = self.comparison.runs
        failed = runs[(runs["status"] == "failed") & runs["backend"].isin(self.references)]
        return {
            str(case): list(dict.fromkeys(g["backend"]))
            for case, g in failed.groupby("case", sort=False)
        }

    @property
    def verdict(self) -> str:
        """The run in a few words, what the text and the report say: "agrees" (``ok``);
        "faults" (the plug-in misbehaved); "disagrees"; "baseline disagrees" (every
        disagreement is on a tensor where the baseline is the odd one out: the fault is
        the baseline's); "nothing compared" (no tensor of the plug-in was compared: it was
        unsupported or skipped on every case); "inconclusive" (the oracle could not judge
        what was compared). Only "agrees" is a success."""
        if self.ok:
            return "agrees"
        if any(f.severity != "note" for f in self.faults):
            return "faults"
        table = self.agreement
        mine = table["backend"].isin(self.plugins)
        ids = self.comparison.identities
        broken = (ids["backend"].isin(self.plugins) & ~ids["ok"].astype(bool)).any()
        if (flagged(table) & mine & ~baseline_odd(table)).any() or broken or self.unbuilt:
            return "disagrees"
        if (baseline_odd(table) & mine).any():
            return "baseline disagrees"
        if self.references_failed:
            return "references failed"
        if self.unreferenced:
            return "no reference"
        if not (compared(table) & mine).any():
            return "nothing compared"
        return "mode not compared" if self.modes_not_compared else "inconclusive"

    @property
    def headline(self) -> str:
        """The verdict as the predicate of a sentence about the plug-in."""
        return {
            "agrees": "agrees with the references",
            "baseline disagrees": "agrees with the references but the baseline, which is "
            "the odd one out",
            "nothing compared": "was compared with nothing (unsupported or skipped on every case)",
            "references failed": "could not be judged where the references failed",
            "no reference": "was held against no reference on some case",
            "mode not compared": "was compared with nothing in a mode asked for",
            "inconclusive": "could not be judged (inconclusive)",
        }.get(self.verdict, "does not agree with the references")

    @property
    def references_ran(self) -> list[str]:
        """The references that ran on at least one case (not those skipped everywhere)."""
        runs = self.comparison.runs
        ran = set(runs.loc[runs["status"] == "ok", "backend"])
        return [r for r in self.references if r in ran]

    @property
    def references_agree(self) -> bool:
        refs = self.agreement[~self.agreement["backend"].isin(self.plugins)]
        return not flagged(refs).any()

    def how(self) -> str:
        return how(self.findings)

    def text(self) -> str:
        """The agreement grid, the diagnostics and a verdict line."""
        from harness.console import format_agreement

        shown = self.agreement[self.agreement["verdict"] != Verdict.FAILED]
        lines = header(self.sources)
        lines += [format_agreement(self.agreement)] if not shown.empty else []
        lines += terminal_lines(self.printed)  # fenced, labelled: never taken for ours
        lines += self.notes
        runs = self.comparison.runs
        failed = runs[(runs["status"] == "failed") & runs["backend"].isin(self.references)]
        for (case, error), g in failed.groupby(["case", "error"], sort=False):  # once each
            lines.append(
                f"  {Verdict.FAILED.mark} {case}: the reference{'s' * (len(g) > 1)} "
                f"{listing(list(g['backend']))} failed: {error}"
            )
        flagged_cases = {f.case for f in self.findings if f.bad}
        lines += [
            f.line()
            for f in self.findings
            if f.case in flagged_cases or f.caution or f.topic == "output flood"  # a flood: a note
        ]
        unsupported = self.unsupported
        mine = self.mine
        answered = {
            case_label(c, m)
            for c, m in mine.loc[compared(mine), ["case", "mode"]].itertuples(False)
        }
        unresolved = {
            case_label(c, m)
            for c, m in mine.loc[
                mine["verdict"] == Verdict.INCONCLUSIVE, ["case", "mode"]
            ].itertuples(False)
        }
        clean = [
            c
            for c in dict.fromkeys(f.case for f in self.findings)
            if c not in flagged_cases
            and c not in unresolved  # not said to agree where the oracle could not tell
            and c not in unsupported
            and c not in self.references_failed
            and c in answered  # a mode the plug-in did not answer is not said to agree
        ]
        noisy = self.mine[self.mine["verdict"] == Verdict.WITHIN_NOISE]
        for case, g in noisy.groupby("case", sort=False):
            lines.append(
                f"  {Verdict.WITHIN_NOISE.mark} {case}: {counted(len(g), 'tensor')} {'agrees' if len(g) == 1 else 'agree'} within the problem's own rounding "
                f"noise (up to {g['noise_floor'].max():.1e} of the scale), beyond the "
                "fixed tolerance: the references themselves are good to "
                f"{g['digits'].min():.1f} digits there"
            )
        if clean:
            refs = ", ".join(self.references_ran) or "finite differences of its own forward"
            what = (
                ("case", "cases")
                if all(" (" not in c for c in clean)
                else ("case and mode", "cases and modes")
            )
            lines.append(
                f"  · {counted(len(clean), *what)} {'agrees' if len(clean) == 1 else 'agree'} with the references ({refs}) on every "
                f"tensor reported: {', '.join(clean[:8])}{' …' if len(clean) > 8 else ''}"
            )
        for missing in dict.fromkeys(unsupported.values()):  # one line per missing function
            where = [case for case, w in unsupported.items() if w == missing]
            lines.append(
                f"  {Verdict.UNSUPPORTED.mark} unsupported, {missing}: {counted(len(where), 'case')}, {', '.join(where)}"
            )
        ran = self.mine[self.mine["verdict"] != Verdict.UNSUPPORTED]
        n = len(ran)
        n_ok = int(ran["verdict"].isin(AGREEING).sum())
        n_faults = sum(f.severity != "note" for f in self.faults)
        cases = len(dict.fromkeys(self.agreement["case"])) or len(self.comparison.cases)
        verdict = self.verdict.upper()
        odd = self.agreement[baseline_odd(self.agreement)]
        if self.verdict == "baseline disagrees":
            tensors = len(odd.drop_duplicates(["case", "mode", "kind", "tensor"]))
            verdict = (
                f"THE BASELINE DISAGREES — {odd['baseline'].iloc[0]} is the odd one out "
                f"on {counted(tensors, 'tensor')}, where yours agrees with the other references"
            )
        elif self.verdict == "references failed":
            failed = self.references_failed
            failing = list(dict.fromkeys(r for names in failed.values() for r in names))
            runs = self.comparison.runs
            there = runs[runs["case"].isin(list(failed)) & (runs["status"] == "ok")]
            others = [r for r in self.references if r in set(there["backend"])]
            verdict += (
                f" — {listing(failing)} failed on {counted(len(failed), 'case')} "
                f"({', '.join(list(failed)[:8])}{' …' if len(failed) > 8 else ''}): the plug-in "
                + (
                    f"was compared with {listing(others)} alone there"
                    if others
                    else "was compared with nothing there"
                )
            )
        elif self.verdict == "mode not compared":
            skipped = self.comparison.runs
            skipped = skipped[
                (skipped["backend"] == self.plugin)
                & skipped["mode"].isin(self.modes_not_compared)
                & (skipped["status"] == "skipped")
            ]
            why = "; ".join(dict.fromkeys(skipped["error"].dropna().astype(str)))
            verdict += (
                f" — asked for {listing(self.modes_not_compared)} and compared with nothing "
                f"there{f' ({why})' if why else ''}"
            )
        elif self.verdict == "no reference":
            lone = self.unreferenced
            verdict += (
                f" — no reference ran on {counted(len(lone), 'case')} "
                f"({', '.join(lone[:8])}{' …' if len(lone) > 8 else ''}): none applies or "
                "none was left (the notes say why), and finite differences of your own "
                "forward vouch only for your backward's consistency with that forward; "
                "add --reference all"
            )
        elif self.verdict == "nothing compared":
            verdict += (
                " — no tensor of the plug-in was compared: it was unsupported or "
                "skipped on every case, or its tensors have no elements"
            )
        apart = f", {counted(len(unsupported), 'case')} unsupported" if unsupported else ""
        lines.append(
            f"\n{self.plugin} ({self.form}): {n_ok}/{n} tensors agree over {counted(cases, 'case')}"
            f"{apart}, {counted(n_faults, 'fault')}: {verdict}"
        )
        return terminal("\n".join(lines))  # a plug-in's control characters shown, not sent

    __str__ = text

    def blocks(self) -> list:
        """The validation's verdict, its diagnostics and the plug-in's tracebacks as report
        blocks: every string the plug-in supplied goes in as literal text or verbatim code."""
        from harness.report.render import Bullets, Code, Heading, Para

        verdict = self.headline
        refs = ", ".join(code(r) for r in self.references_ran) or "none"
        blocks = [
            Heading(f"Validation of {self.plugin} ({self.form})", 1),
            Para(f"**{lit(self.plugin)} {verdict}.** References: {refs}."),
            Heading("Diagnostics", 2),
            Bullets(
                tuple(f"{lit(f.case)}: {lit(f.text.splitlines()[0])}" for f in self.findings)
                or ("nothing to report",)
            ),
        ]
        if self.printed:
            blocks.append(Heading(f"What {self.plugin} printed", 2))
            for printed in self.printed:
                blocks += [Para(lit(printed.title)), Code(printed.text.rstrip("\n"))]
        tracebacks = [f for f in self.faults if f.traceback]
        if tracebacks:
            blocks.append(Heading("Tracebacks", 2))
            for f in tracebacks:
                blocks += [Heading(f"{f.case}: {f.fault}", 3), Code(f.traceback.rstrip())]
        return blocks

    def write(self, out: str | Path) -> list[Path]:
        """agreement.csv, runs.csv, faults.csv and diagnostics.md under ``out`` (and the
        full report, where ``harness.report`` can write one from a Comparison): all of
        them or, on a write error or an interrupt, none (``staged_report``)."""
        from harness.report.files import staged_report
        from harness.report.render import to_markdown

        out = Path(os.path.abspath(out))
        names = []
        with staged_report(out) as stage:
            runs = with_sources(self.comparison.runs, self.sources)
            for name, table in (
                ("agreement", self.agreement),
                ("runs", runs),
                ("faults", self.fault_table),
            ):
                write_csv(table, stage / f"{name}.csv")
                names.append(f"{name}.csv")
            (stage / "diagnostics.md").write_text(to_markdown(self.blocks()), encoding="utf-8")
            names.append("diagnostics.md")
            names += self._full_report(stage)
        return [out / name for name in names]

    def _full_report(self, out: Path) -> list[str]:
        """report.md and report.html as ``gradparity report`` lays them out, with the
        validation's verdict and diagnostics first; the names written. Best effort: where
        that module cannot render this comparison, what it wrote is taken back and the
        CSVs and diagnostics.md above stand alone, beside report-error.txt. A write error
        is no rendering problem: it goes up, and nothing is written."""
        before = set(os.listdir(out))
        try:
            import json

            from harness.report.document import document
            from harness.report.files import summary
            from harness.report.render import to_html, to_markdown

            c = self.comparison
            facts = summary(c, c.cases, self.dtype, self.seed)
            facts["sources"] = summary_entry(self.sources)
            write_csv(c.magnitudes, out / "magnitudes.csv")
            (out / "summary.json").write_text(json.dumps(facts, indent=2, allow_nan=False) + "\n")
            blocks = self.blocks() + document(c, c.cases, facts, pd.DataFrame(), out)
            (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
            (out / "report.html").write_text(
                to_html(blocks, f"gradparity: {self.plugin}"), encoding="utf-8"
            )
        except OSError:
            raise
        except Exception as e:  # noqa: BLE001 - the tables and diagnostics are written already
            for name in set(os.listdir(out)) - before:
                (out / name).unlink()
            (out / "report-error.txt").write_text(
                terminal(f"report.md not written: {type(e).__name__}: {e}\n")
            )
            return ["report-error.txt"]
        return ["report.md", "report.html", "magnitudes.csv", "summary.json"]


def _channel(target: Any, isolate: bool, memory: int, notes: list[str]):
    """The Target to send and where to run it."""
    spec: Target | None
    if isinstance(target, Target):
        spec, obj = target, None
    elif isinstance(target, str):
        spec, obj = parse_target(target), None
    else:
        spec, obj = target_of(target), target
        if spec is None:
            name = getattr(target, "__qualname__", type(target).__name__)
            spec = Target(f"<{name}>", name.replace("<", "").replace(">", ""))
            if isolate:
                notes.append(
                    f"  · {name} cannot be imported by name in a fresh process; it runs "
                    "in this one (no time limit, no crash protection)"
                )
            isolate = False
    if obj is None:  # named: its file or module must be there (found, not imported)
        locate(spec)
    if not isolate:
        channel = InProcess()
        if obj is not None:
            channel.add(spec.text, obj)
        return spec, channel
    return spec, Isolated(memory)


def validate(
    target: str | Callable | Any,
    form: str | None = None,
    cases: Iterable[Case | str] | None = None,
    dtype: str = "float64",
    references: list[str] | None = None,
    baseline: str | None = None,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    memory: int = DEFAULT_MEMORY,
    max_output: int = MAX_OUTPUT,
    isolate: bool = True,
    channel: Any = None,
    progress: Callable[[str, str], None] | None = None,
    jobs: int = 1,
    noise: int | None = None,
    modes: Iterable[str] | None = None,
) -> Validation:
    """Validate ``target`` (a TARGET string, or the function/engine/stage object itself).

    ``form``: a name of ``harness.validation.forms.FORMS`` (default: guessed from the
    object). ``cases``:
    names, patterns or Case instances (a model plug-in needs them, unless it has a
    ``cases`` attribute; an engine defaults to the catalog; a stage is its own case).
    ``references``: backend names, ``"all"`` for every one of ``gradparity run``'s (default:
    ``harness.backends.DEFAULT_REFERENCES``, the tape, manual and numeric). ``timeout`` (s, per case)
    and ``memory`` (bytes of address space, 0 = no limit) bound the worker process;
    ``channel``: a worker to share between validations (it is then not closed).
    ``jobs > 1``: this process and ``jobs - 1`` more share the cases, each with a worker
    of its own (``harness.validation.jobs``); everything reported is as with ``jobs=1``.
    Where the plug-in runs in this process or in ``channel``, the cases run one by one
    (and the notes say so). ``noise``: where the noise floor is measured, on the
    references only (``harness.runner.noise_plan``): None, the baseline with K = 4 runs;
    K > 0, every autodiff reference with K runs; 0, not at all. ``modes``: which
    derivatives (``harness.modes``): a model plug-in supplies a JVP for "fwd" and an H·v
    for "hvp" (``harness.validation.backend.PluginBackend``); default "rev".
    """
    modes = parse_modes(modes)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number of processes, at least 1, not {jobs!r}")
    if form is not None and form not in FORMS:
        raise ValueError(f"form must be one of {', '.join(FORMS)}, not {form!r}")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be float64 or float32, not {dtype!r}")
    references = references_asked(references, baseline)
    check_comparable(references, baseline, references=True)
    notes: list[str] = []
    spec, own = _channel(target, isolate, memory, notes)
    if channel is not None and not isinstance(own, InProcess):
        own.close()
        own = channel
    elif channel is not None and isinstance(channel, InProcess) and isinstance(own, InProcess):
        channel.worker.loaded.update(own.worker.loaded)
        own = channel
    if jobs > 1 and (channel is not None or not isinstance(own, Isolated)):
        where = "in the channel given" if channel is not None else "in this process"
        notes.append(
            f"  · jobs={jobs}: the plug-in runs {where}, so the cases run one after another"
        )
        jobs = 1
    try:  # the jax reference's helper starts first, while the plug-in loads
        with helper(wanted(references, jobs)) as aside:
            return _validate(
                spec,
                own,
                form,
                cases,
                dtype,
                references,
                baseline,
                seed,
                timeout,
                max_output,
                notes,
                progress,
                jobs,
                memory,
                noise,
                modes,
                aside,
            )
    finally:
        if own is not channel:
            own.close()


def _validate(
    spec,
    channel,
    form,
    cases,
    dtype,
    references,
    baseline,
    seed,
    timeout,
    max_output,
    notes,
    progress,
    jobs=1,
    memory=DEFAULT_MEMORY,
    noise=None,
    modes=DEFAULT_MODES,
    aside=None,
) -> Validation:
    name = f"plugin:{spec.name}"
    loaded_sha256 = digest(spec)  # before it is imported: an import may rewrite its file
    info = channel.request({"op": LOAD, "target": spec.data(), "form": form}, timeout, end=False)
    miss = conforms(info, LOAD_REPLY)
    if miss:
        info = fault("malformed reply", f"the plug-in's worker broke the protocol: {miss}")
    faults: list[Fault] = []
    form = form or info.get("form") or "model"
    problem = info.get("fault")
    if problem is not None and problem.get("fault_name") == "missing attribute":
        # the module loaded but has no such name: a typo in TARGET, like a missing file
        raise BadTarget(f"TARGET {spec.text!r}: {problem.get('message')}")
    if problem is None and info.get("form") == "unknown":
        problem = {"fault_name": "wrong type", "message": f"{spec.text} is neither {described()}"}
    plugin_form = FORMS.get(form)
    needs = plugin_form.needs if plugin_form is not None else ()
    if problem is None and needs:
        missing = [a for a in needs if a not in info.get("attributes", needs)]
        if missing:
            problem = {
                "fault_name": "missing attribute",
                "message": f"{spec.text} lacks {', '.join(missing)}, which the {form} form needs",
            }
    if plugin_form is not None:
        chosen, problem = plugin_form.checked_on(info, cases, problem, spec.text, resolve_cases)
    else:  # not a plug-in at all: its fault, once per case asked for
        chosen = named_cases(info, cases, problem, resolve_cases)
    found = sources(chosen, (name, spec, loaded_sha256) if loaded_sha256 is not None else None)
    if problem is not None:
        fault_name, message, tb = fatal(problem)
        for case in chosen or [None]:
            faults.append(
                Fault(case.label if case else "(load)", name, "", fault_name, message, tb)
            )
        results: list[Result] = [
            PluginResult(c.label, name, dtype, error=f"{fault_name}: {message}", faults=[])
            for c in chosen
        ]
        comparison = Comparison(results, name, chosen)
        return Validation(
            comparison,
            name,
            form,
            [],
            faults,
            notes,
            dtype,
            seed,
            printed_by(info, "(load)", name),
            found,
        )
    printed = printed_by(info, "(load)", name)
    if info.get("stdout_chars", 0) + info.get("stderr_chars", 0) > max_output:
        faults.append(
            Fault(
                "(load)",
                name,
                "",
                "output flood",
                f"importing {spec.text} printed "
                f"{info['stdout_chars'] + info['stderr_chars']:,} characters",
            )
        )
    # the references
    own_forward_alone = False
    if plugin_form is not None:
        # by design, where the form would take no reference even of every backend
        own_forward_alone = not plugin_form.references(info, list(DEFAULT_BACKENDS), chosen, [])
        references = plugin_form.references(info, references, chosen, notes)
    instances: list[Any] = []
    for ref in references:
        try:
            instances.append(get_backend(ref))
        except UnknownBackend:
            raise
        except Exception as e:  # noqa: BLE001 - a reference that cannot start is a failed cell
            instances.append(e)
    plugin = PluginBackend(spec, form, channel, timeout, max_output, name=name, modes=modes)
    names = [*references, name]
    if baseline is None:
        baseline = (
            "reference"
            if "reference" in references
            else (references[0] if references else f"{name}(fd)")
        )
    setup = (spec, form, references, timeout, memory, max_output, name, modes)
    plan = noise_plan(names, [*instances, plugin], baseline, noise)
    results, shared = run_cases(
        chosen,
        instances,
        names,
        plugin,
        dtype,
        seed,
        progress,
        jobs,
        setup,
        notes,
        plan,
        modes,
        aside,
    )
    for r in results:
        if isinstance(r, PluginResult):
            faults += r.faults
            printed += r.printed
        elif r.backend == name and r.error:  # the plug-in backend itself broke
            faults.append(Fault(r.case, name, "", "exception", r.error))
    if shared and any(f.fault in STATEFUL for f in faults):
        notes.append(
            f"  · jobs={jobs}: the plug-in keeps state from call to call, and its cases "
            "were shared among processes: its numbers may differ from those of jobs=1, "
            "where each case follows all those before it"
        )
    faults += [
        Fault(
            "(load)",
            name,
            "",
            "source changed",
            f"{s.role} {s.name}: {s.path} changed while it ran (sha256 {s.sha256 or '(unreadable)'} "
            "when loaded): what ran later may be other code than the one named",
        )
        for s in changed(found)
    ]
    comparison = Comparison(results, baseline, chosen)
    return Validation(
        comparison,
        name,
        form,
        references,
        faults,
        notes,
        dtype,
        seed,
        printed,
        found,
        own_forward_alone,
    )
