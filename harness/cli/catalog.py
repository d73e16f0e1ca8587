"""``gradparity list`` and ``gradparity describe``: the catalog, and one case's math,
options (with what each takes) and the shapes a plug-in sees."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from harness.cases import CATALOG, CaseError, select
from harness.cli.run import DEFAULT_CASE_TIMEOUT, add_limits, limits, memory_budget
from harness.selection import amount, build_cases, is_target, parse_sets


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="the cases, with family and size")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("describe", help="a case's math, options, parameters, inputs and taps")
    p.add_argument("case", help="a catalog name, or your own: path/to/file.py:NAME or module:NAME")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    add_limits(p, DEFAULT_CASE_TIMEOUT, "a case of your own (its loading, drawing and forward)")
    p.set_defaults(func=cmd_describe)


def _shape_line(arrays: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in arrays.items()) or "none"


def _why(e: Exception) -> str:
    from harness.sandbox.case import CaseFault  # a case of the user's, failed in its worker

    return str(e) if isinstance(e, (CaseError, CaseFault)) else f"{type(e).__name__}: {e}"


def cmd_list(args: argparse.Namespace) -> int:
    """The catalog; a case that cannot be built is listed with "?" and its error below, and
    the cases a plain ``gradparity run`` leaves out (slow ones) are named below it."""
    rows, broken, slow = [], [], []
    for cls in select(None, include_slow=True):
        try:
            params, _ = cls().build(0)
            size: int | str = int(sum(v.size for v in params.values()))
        except Exception as e:  # noqa: BLE001 - one broken case must not hide the others
            size = "?"
            broken.append(f"  ✗ {cls.name}: the case could not be built: {_why(e)}")
        rows.append(
            {
                "case": cls.name,
                "family": cls.family,
                "parameters": size,
                "options": " ".join(f"{k}={v}" for k, v in cls.options.items()),
            }
        )
        if cls.slow:
            slow.append(cls.name)
    print(pd.DataFrame(rows).to_string(index=False))
    for line in broken:
        print(line)
    if slow:
        which = "it" if len(slow) == 1 else "them"
        print(f"  · left out of the default run (pick {which} with --case): {', '.join(slow)}")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """A case's math, its options (with what each takes), and the shapes a plug-in sees."""
    if args.case not in CATALOG and not is_target(args.case):
        raise CaseError(
            f"no case {args.case!r}; cases: {', '.join(CATALOG)} (or path/to/file.py:NAME)"
        )
    case = build_cases([args.case], parse_sets(args.set), limits(args), memory_budget(args))[0]
    print(f"{case.label}  (family: {case.family})\n")
    print(case.doc() + "\n")
    print("options:")
    for key, value in case.cfg.items():
        default = "" if value == case.options[key] else f" (default {case.options[key]!r})"
        print(f"  {key}={value!r}{default}: {case.takes(key)}")
    if not case.cfg:
        print("  none")
    need = case.footprint()
    if need is not None:
        print(f"memory:     about {amount(need)} for the check of gradparity run (an estimate)")
    try:
        params, inputs = case.build(0)
    except Exception as e:  # noqa: BLE001 - said in one line, with exit 1
        print(f"\n✗ the case could not be built with these options: {_why(e)}")
        return 1
    print(f"parameters: {_shape_line(params)}")
    print(f"inputs:     {_shape_line(inputs)}")
    from harness.backends.numeric import taps_of

    try:
        shapes, steps = taps_of(case, params, inputs)
    except Exception as e:  # noqa: BLE001 - said in one line, with exit 1
        print(f"\n✗ the case's forward failed: {_why(e)}")
        return 1
    taps = [
        f"{n}{list(shape[1:] if steps[n] else shape)}"
        + (f" × {steps[n]} steps" if steps[n] else "")
        for n, shape in shapes.items()
    ]
    print(f"taps:       {', '.join(taps) or 'none'}")
    return 0
