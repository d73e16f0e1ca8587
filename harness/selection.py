"""What every command needs before the work starts: the cases chosen and configured, and
the options checked — bad input is a ``UsageError`` (exit 2) with a sentence, raised
before anything is computed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.cases import Case, select
from harness.target import BadTarget, LoadFault, load, parse_target


class UsageError(Exception):
    """Bad command-line input: exit 2 with the message."""


def parse_sets(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["T=1000", "H=64"]`` -> ``{"T": "1000", "H": "64"}``."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE (for example --set T=100), not {pair!r}")
        out[key.strip()] = value.strip()
    return out


def check_jobs(jobs: int) -> int:
    """``--jobs`` counts processes: 1 or more."""
    if jobs < 1:
        raise UsageError(f"--jobs takes a number of processes, 1 or more, not {jobs}")
    return jobs


def is_target(pattern: str) -> bool:
    """``path/to/file.py:NAME`` or ``package.module:NAME``: a case of the user's."""
    return ":" in pattern


def load_case(spec: str) -> type[Case]:
    """The Case subclass that ``spec`` names (a file or a module, and the name in it),
    ready to configure; bad syntax, a file that does not import, a missing name or an
    object that is not a case are usage errors that say which."""
    try:
        target = parse_target(spec)
        found = load(target)
    except BadTarget as e:
        raise UsageError(f"--case {spec!r}: {e}") from None
    except LoadFault as e:
        detail = e.traceback.strip().splitlines()[-1] if e.traceback else ""
        raise UsageError(f"--case {spec!r}: {e.message}" + (f" ({detail})" if detail and
                         detail not in e.message else "")) from None  # fmt: skip
    if not (isinstance(found, type) and issubclass(found, Case)):
        raise UsageError(
            f"--case {spec!r} is not a case (it is of type {type(found).__name__}): write a Case subclass "
            "(setup(self, rng) and loss(self, xp, params, inputs)) or decorate a loss "
            "function with @harness.cases.case"
        )
    if not hasattr(found, "name"):
        found.name = found.__name__
    if not hasattr(found, "family"):
        found.family = "user"
    clashes = [k for k in found.options if k in vars(Case) or callable(getattr(found, k, None))]
    if clashes:
        raise UsageError(f"--case {spec!r}: options {clashes} hide attributes of the class")
    found.loaded_from = target  # a worker process loads it again from here
    return found


def build_cases(patterns: Sequence[str] | None, sets: dict[str, str]) -> list[Case]:
    """The selected cases, each configured with the ``--set`` options it has.

    A pattern with a colon is a case of the user's (``load_case``); any other selects from
    the catalog. An option no selected case has is an error that lists the options they do
    have; a value of the wrong type or out of its range names the case, the option and the
    range.
    """
    classes: list[type[Case]] = [] if patterns else select(None)
    for pattern in patterns or []:
        found = [load_case(pattern)] if is_target(pattern) else select([pattern])
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
    return [cls(**{k: v for k, v in sets.items() if k in cls.options}) for cls in classes]


def check_comparable(
    backends: Sequence[str] | None, baseline: str | None, references: bool = False
) -> None:
    """Refuse, before any work, a selection that leaves nothing to compare: everything is
    compared with the baseline, so a run needs a backend beside it (``backends`` are
    those of ``--backend``, None for the default ones; the baseline is added to them).
    With ``references`` (validate: the plug-in is compared with one of ``backends``, the
    references), the baseline must be one of them."""
    from harness.backends import DEFAULT_BACKENDS

    names = list(dict.fromkeys(DEFAULT_BACKENDS if backends is None else backends))
    if references:
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


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path) -> None:
    """Raise OSError unless a file can be created in ``folder``."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".gradparity-probe-"):
        pass


def output_folder(path: str | os.PathLike, option: str = "--out") -> Path:
    """A folder the command can write into: it exists and takes a new file, or it can be
    made. Made here (empty) when missing, so a later failure cannot be a surprise."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a file; {option} takes a folder to write into")
    blocker = _nearest_existing(folder.parent if not folder.exists() else folder)
    if not blocker.is_dir():
        raise UsageError(
            f"{option} {str(path)!r}: the folder cannot be made, {str(blocker)!r} is a file"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _probe(folder)
    except OSError as e:
        raise UsageError(
            f"{option} {str(path)!r}: cannot write into that folder ({e.strerror or e})"
        ) from None
    return folder


def output_file(path: str | os.PathLike, option: str) -> Path:
    """A file the command can write: its folder exists and takes it, and it is not a folder."""
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a folder; {option} takes a file name")
    folder = file.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {str(path)!r}: the folder {str(folder)!r} does not exist")
    try:
        if file.exists():
            with open(file, "a", encoding="utf-8"):
                pass
        else:
            _probe(folder)
    except OSError as e:
        raise UsageError(
            f"{option} {str(path)!r}: cannot write that file ({e.strerror or e})"
        ) from None
    return file


__all__ = [
    "UsageError",
    "build_cases",
    "check_comparable",
    "is_target",
    "load_case",
    "check_jobs",
    "output_file",
    "output_folder",
    "parse_sets",
]
