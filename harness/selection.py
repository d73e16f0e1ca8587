"""What every command needs before the work starts: the cases chosen and configured, and
the options checked — bad input is a ``UsageError`` (exit 2) with a sentence, raised
before anything is computed.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import output
from harness.cases import Case, select
from harness.sandbox.case import Limits, LoadError, load


class UsageError(Exception):
    """Bad command-line input: exit 2 with the message."""


# The stated limits of the numbers the commands take (in each option's --help too).
MAX_JOBS = 256
"""--jobs: each job is a process that loads numpy, torch and jax, about 256 MiB before it
computes anything, so 256 of them hold 64 GiB, more than the machines gradparity runs on
have; and more processes than cores only queue for them."""
SEED_LIMIT = 2**32
"""A seed is a whole number from 0 to 2**32 − 1. numpy's ``default_rng``, which draws every
case's arrays, takes any whole number ≥ 0 (negative ones are its error); 2**32 − 1 is where
``np.random.seed`` and ``RandomState`` stop, so a seed gradparity takes is one every numpy
seeding function takes."""
MAX_POINTS = 10_000
"""A sweep's points, by default (``--max-points`` raises it): each point is a whole check,
seconds to minutes, so 10,000 are hours to weeks of work; a larger grid is a typo more often
than a plan (``T=1-1000000000`` for ``T=1,1000000000``)."""
POINTS_CEILING = 1_000_000
"""The most ``--max-points`` itself takes: the grid is listed, and every point's cases
built, before the first point runs."""


def parse_sets(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["T=1000", "H=64"]`` -> ``{"T": "1000", "H": "64"}``."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE (for example --set T=100), not {pair!r}")
        if "\n" in pair:  # other control characters: escaped where the label is shown
            raise UsageError(
                f"--set {key.strip()}: {value!r} holds a line break; a value is one line of "
                "text (it is part of the case's label, which begins lines of the output)"
            )
        out[key.strip()] = value.strip()
    return out


def machine_memory() -> int:
    """This machine's physical memory, in bytes (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0


def amount(nbytes: float) -> str:
    """Bytes in words, to two significant digits: ``"45 GiB"``, ``"2.4 TiB"``."""
    units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    i = 0
    while nbytes >= 1024 and i < len(units) - 1:
        nbytes, i = nbytes / 1024, i + 1
    return f"{nbytes:.2g} {units[i]}" if nbytes < 10 else f"{nbytes:.0f} {units[i]}"


def check_memory(cases: Sequence[Case], budget: tuple[int, str]) -> None:
    """Refuse, before anything is drawn, a case whose estimated need (``Case.footprint``)
    exceeds ``budget``: (bytes, what they are, in words). A case that cannot say (a case
    of the user's, bounded by its worker's --memory instead) is not refused."""
    most, what = budget
    for case in cases:
        need = case.footprint()
        if need is not None and need > most:
            raise UsageError(
                f"case {case.label!r} needs about {amount(need)} of memory (gradparity's "
                f"estimate for its options), more than {what} ({amount(most)}): choose "
                f"smaller options (gradparity describe {case.name} lists them), or add "
                "--no-memory-check to run it anyway"
            )


def is_target(pattern: str) -> bool:
    """``path/to/file.py:NAME`` or ``package.module:NAME``: a case of the user's."""
    return ":" in pattern


def load_case(spec: str, limits: Limits | None = None) -> type[Case]:
    """The case that ``spec`` names (a file or a module, and the name in it), ready to
    configure. It is loaded in a worker process, never here (``harness.sandbox.case``):
    what comes back is what the case is, and its code runs only in workers, within
    ``limits``. Bad syntax, a file that does not import (or exits, crashes, hangs while
    importing), a missing name or an object that is not a case are usage errors that say
    which."""
    try:
        return load(spec, limits or Limits())
    except LoadError as e:
        raise UsageError(f"--case {spec!r}: {e}") from None


def build_cases(
    patterns: Sequence[str] | None,
    sets: dict[str, str],
    limits: Limits | None = None,
    memory: tuple[int, str] | None = None,
) -> list[Case]:
    """The selected cases, each configured with the ``--set`` options it has.

    A pattern with a colon is a case of the user's (``load_case``, run within ``limits``);
    any other selects from the catalog. An option no selected case has is an error that lists the options they do
    have; a value of the wrong type or out of its range names the case, the option and the
    range. With ``memory`` (bytes, and what they are in words), a case whose options need
    more is refused with its estimate (``check_memory``).
    """
    classes: list[type[Case]] = [] if patterns else select(None)
    for pattern in patterns or []:
        found = [load_case(pattern, limits)] if is_target(pattern) else select([pattern])
        classes += [c for c in found if c not in classes]
    unused = set(sets) - {k for cls in classes for k in cls.options}
    if unused:
        known = sorted({k for cls in classes for k in cls.options})
        names = ", ".join(repr(k) for k in sorted(unused))
        which = classes[0].name if len(classes) == 1 else f"the {len(classes)} selected cases"
        raise UsageError(
            f"no selected case takes option {names}; the options of {which}: "
            f"{', '.join(known) or 'none'} (`gradparity describe CASE` lists them with their ranges)"
        )
    cases = [cls(**{k: v for k, v in sets.items() if k in cls.options}) for cls in classes]
    if memory is not None:
        check_memory(cases, memory)
    return cases


def check_comparable(
    backends: Sequence[str] | None, baseline: str | None, references: bool = False
) -> None:
    """Refuse, before any work, a selection that leaves nothing to compare: everything is
    compared with the baseline, so a run needs a backend beside it (``backends`` are
    those of ``--backend``, None for the default ones; the baseline is added to them).
    With ``references`` (validate: the plug-in is compared with one of ``backends``, the
    references), the baseline must be one of them."""
    from harness.backends import DEFAULT_BACKENDS, references_asked

    names = list(dict.fromkeys(DEFAULT_BACKENDS if backends is None else backends))
    if references:
        names = references_asked(None if backends is None else list(backends), baseline)
        if baseline is not None and baseline not in names:
            raise UsageError(
                f"--baseline {baseline!r} is not one of the references ({', '.join(names)}): "
                f"the plug-in is compared with one of them; add --reference {baseline} or "
                "choose one of those"
            )
        return
    if not [b for b in names if b != baseline]:
        raise UsageError(
            f"only the baseline {baseline!r} is chosen (--backend {' --backend '.join(names)}): "
            "nothing to compare it with; add a backend to compare (--backend reference, "
            "--backend jax, …) or choose another --baseline"
        )


# --- output paths, checked before any work starts


def _given(path: str | os.PathLike, option: str, what: str) -> Path:
    """The path as an absolute one, fixed now: code that runs later (a case's file, an
    in-process plug-in) may change the working directory."""
    text = os.fspath(path)
    if not text or "\0" in text:
        raise UsageError(f"{option} takes {what}, not {text!r}")
    return Path(os.path.abspath(text))


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path) -> None:
    """Raise OSError unless a file can be created in ``folder``."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".gradparity-probe-"):
        pass


def output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """The absolute path of a folder the command can write into: it exists and takes a
    new file, or it can be made (made here, empty, so a later failure cannot be a
    surprise); and no other gradparity run is writing it — it is claimed for this one
    (``harness.output.claim``) until the command ends."""
    folder = _given(path, option, "a folder to write into")
    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(
                f"{option} {str(path)!r} is a file; {option} takes a folder to write into"
            )
        if folder.is_symlink() and not folder.exists():  # mkdir would say "File exists"
            raise UsageError(
                f"{option} {str(path)!r} is a link to {os.readlink(folder)!r}, which does not "
                f"exist; {option} takes a folder to write into (make the folder it points to)"
            )
        blocker = _nearest_existing(folder.parent if not folder.exists() else folder)
        if not blocker.is_dir():
            raise UsageError(
                f"{option} {str(path)!r}: the folder cannot be made, {str(blocker)!r} is a file"
            )
        made = [p for p in (folder, *folder.parents) if not p.exists()]  # leaf first
        folder.mkdir(parents=True, exist_ok=True)
        _probe(folder)
        output.claim(folder, made=made)
    except output.FolderBusy as e:
        who = f" (pid {e.pid})" if e.pid else ""
        raise UsageError(
            f"{option} {str(path)!r} is being written by another gradparity run{who}: wait "
            "for it to end or choose another folder"
        ) from None
    except OSError as e:
        raise UsageError(
            f"{option} {str(path)!r}: cannot write into that folder ({e.strerror or e})"
        ) from None
    return folder


def output_file(path: str | os.PathLike, option: str) -> Path:
    """The absolute path of a file the command can write: a regular file or none yet (it
    is replaced whole, ``harness.output.write_file``), in a folder that exists and takes
    a new file."""
    file = _given(path, option, "the name of a file to write")
    try:
        if file.is_dir():
            raise UsageError(f"{option} {str(path)!r} is a folder; {option} takes a file name")
        if file.exists() and not file.is_file():
            raise UsageError(
                f"{option} {str(path)!r} is not a regular file (a device, a pipe or a "
                f"socket); {option} takes the name of a file to write"
            )
        target = Path(os.path.realpath(file))
        if not target.parent.is_dir():
            raise UsageError(
                f"{option} {str(path)!r}: the folder {str(file.parent)!r} does not exist"
            )
        if len(os.fsencode(target.name)) > os.pathconf(target.parent, "PC_NAME_MAX"):
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        _probe(target.parent)
    except OSError as e:
        raise UsageError(
            f"{option} {str(path)!r}: cannot write that file ({e.strerror or e})"
        ) from None
    return file


__all__ = [
    "MAX_JOBS",
    "MAX_POINTS",
    "POINTS_CEILING",
    "SEED_LIMIT",
    "UsageError",
    "amount",
    "build_cases",
    "check_comparable",
    "check_memory",
    "is_target",
    "load_case",
    "machine_memory",
    "output_file",
    "output_folder",
    "parse_sets",
]
