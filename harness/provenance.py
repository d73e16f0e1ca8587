"""What ran: the resolved path and the SHA-256 of every file of the user's code that a
run loaded (a case's file, a plug-in's file or module), said in the output's header,
``summary.json`` and ``runs.csv``, so that a verdict names the exact code it judged.

A catalog case is the package's own and has no entry; a run of catalog cases alone
writes the tables it always wrote (no column is added to ``runs.csv``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from harness.target import Target, source_file

RUNS_COLUMNS = ("case_file", "case_sha256", "plugin_file", "plugin_sha256")


@dataclass(frozen=True)
class Source:
    """One file of the user's: what it is to the run, where it is, what it holds."""

    role: str  # "case" or "plugin"
    name: str  # the case's label, or the plug-in's backend name
    path: str  # resolved
    sha256: str  # of its content as it was when the run began


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def digest(target: Target | None) -> str | None:
    """The SHA-256 of the file ``target`` is loaded from, as it is now: taken just before
    a worker loads it, so that a file rewritten by its own import is named by what ran;
    None where it has no file, "" where the file cannot be read."""
    path = source_file(target) if target is not None else None
    if path is None:
        return None
    try:
        return sha256_of(path)
    except OSError:  # gone or unreadable since it was found: said as such
        return ""


def _source(
    role: str, name: str, target: Target | None, sha256: str | None = None
) -> Source | None:
    path = source_file(target) if target is not None else None
    if path is None:
        return None
    return Source(role, name, path, digest(target) or "" if sha256 is None else sha256)


def sources(
    cases: list[Any], plugin: tuple[str, Target] | tuple[str, Target, str] | None = None
) -> list[Source]:
    """The files behind ``cases`` (those of the user's: ``harness.sandbox.case``, with the
    digest taken before their worker loaded them) and the plug-in (its backend name, its
    Target and the digest taken before it was loaded), in that order."""
    found = [
        _source(
            "case",
            case.label,
            getattr(type(case), "target", None),
            getattr(type(case), "loaded_sha256", None),
        )
        for case in cases
    ]
    if plugin is not None:
        found.append(_source("plugin", *plugin))
    return [s for s in found if s is not None]


def changed(found: list[Source]) -> list[Source]:
    """The files among ``found`` whose content is no longer what was loaded: code that ran
    later (a worker started again, a case rebuilt in the plug-in's worker) may be another."""
    out = []
    for s in found:
        try:
            now = sha256_of(s.path)
        except OSError:
            now = ""
        if now != s.sha256:
            out.append(s)
    return out


def header(found: list[Source]) -> list[str]:
    """One line a file, for the top of the command's output (a line break in a file's
    name shown as its escape: a name cannot start a line of its own)."""
    return [
        f"{s.role} {s.name}: {_one_line(s.path)} sha256 {s.sha256 or '(unreadable)'}" for s in found
    ]


def _one_line(text: str) -> str:
    return text.replace("\n", "\\x0a").replace("\r", "\\x0d")


def summary_entry(found: list[Source]) -> list[dict[str, str]]:
    """For ``summary.json``'s "sources"."""
    return [asdict(s) for s in found]


def with_sources(runs: Any, found: list[Source]) -> Any:
    """``runs`` (the runs table) with ``RUNS_COLUMNS``: each row's case file and, on the
    plug-in's rows, its file; unchanged where no file of the user's ran."""
    if not found:
        return runs
    out = runs.copy()
    cases = {s.name: s for s in found if s.role == "case"}
    plugins = {s.name: s for s in found if s.role == "plugin"}
    out["case_file"] = [cases[c].path if c in cases else "" for c in out["case"]]
    out["case_sha256"] = [cases[c].sha256 if c in cases else "" for c in out["case"]]
    mine = [
        next((p for n, p in plugins.items() if b == n or b.startswith(n + "(")), None)
        for b in out["backend"]
    ]
    out["plugin_file"] = [p.path if p else "" for p in mine]
    out["plugin_sha256"] = [p.sha256 if p else "" for p in mine]
    return out


__all__ = [
    "RUNS_COLUMNS",
    "Source",
    "changed",
    "digest",
    "header",
    "sha256_of",
    "sources",
    "summary_entry",
    "with_sources",
]
