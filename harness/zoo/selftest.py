"""``gradparity selftest``: validate every zoo entry and tabulate what was detected.

One worker process serves the whole zoo (it is restarted only after a crash or a
timeout), so the self-test costs the zoo's arithmetic, not hundreds of process starts.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from harness.sandbox.channel import Isolated
from harness.validation.validator import Validation, validate
from harness.zoo import ZOO, Entry

SELFTEST_REFERENCES = ["reference", "torch"]
COLUMNS = ["implementation", "form", "mode", "dtype", "expected", "detected", "how", "verdict"]


def check(
    entry: Entry, dtype: str, channel=None, references=None, timeout: float = 60.0
) -> Validation:
    return validate(
        entry.target,
        form=entry.form,
        cases=entry.make_cases() or None,
        dtype=dtype,
        references=references or SELFTEST_REFERENCES,
        timeout=timeout,
        channel=channel,
        modes=entry.modes,
    )


def row(entry: Entry, dtype: str, v: Validation) -> dict:
    detected = not v.ok
    expected = "broken" if entry.broken else "correct"
    how = v.how() if detected else ("" if entry.broken else "agrees")
    return {
        "implementation": entry.name,
        "form": entry.form,
        "mode": ",".join(entry.modes),
        "dtype": dtype,
        "expected": expected,
        "detected": "yes" if detected else "no",
        "how": how,
        "verdict": "ok"
        if detected == entry.broken
        else "MISSED"
        if entry.broken
        else "FALSE ALARM",
    }


def entries(only: list[str] | None = None) -> list[Entry]:
    """The zoo entries whose name contains one of ``only`` (all of them without it)."""
    return [e for e in ZOO if not only or any(o.lower() in e.name.lower() for o in only)]


def selftest(
    dtypes=("float64", "float32"),
    only: list[str] | None = None,
    references=None,
    timeout: float = 60.0,
    progress: Callable[[str, str], None] | None = None,
) -> pd.DataFrame:
    """One row per zoo entry × dtype: expected broken/correct, detected, how."""
    channel = Isolated()
    rows = []
    try:
        for entry in entries(only):
            for dtype in dtypes:
                if progress:
                    progress(entry.name, dtype)
                rows.append(row(entry, dtype, check(entry, dtype, channel, references, timeout)))
    finally:
        channel.close()
    return pd.DataFrame(rows, columns=COLUMNS)


def format_table(table: pd.DataFrame) -> str:
    shown = table.assign(how=table["how"].str.slice(0, 70))
    return shown.to_string(index=False)
