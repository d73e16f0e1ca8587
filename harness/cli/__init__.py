"""The ``gradparity`` command: it parses, then runs one command, each of which composes
the layers below it (select → run → compare → write). Nothing in the package imports it.

    list, describe          harness.cli.catalog
    run, report             harness.cli.run
    validate, selftest      harness.cli.validate
    bench                   harness.cli.bench

Exit codes: 0 no disagreement; 1 a disagreement, a fault or a failed backend; 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from harness import compile_cache
from harness.interrupts import Interrupted, handled


class _OneLineParser(argparse.ArgumentParser):
    """argparse, refusing bad input in one line (``gradparity run: error: argument --dtype:
    invalid choice: …``) and exit 2: its message names the option and what it takes, so the
    usage block it would print first only pushes that line out of sight."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    commands: dict[str, argparse.ArgumentParser] = {}  # the root's: each command's parser

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an option the command does not take is refused by that
        command's parser, so the line says ``gradparity run: error: …``."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            owner = self.commands.get(getattr(parsed, "command", None), self)
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def parser() -> argparse.ArgumentParser:
    """Every command's options (argparse only: each command imports its work when it runs,
    so ``gradparity list`` stays instant)."""
    from harness.cli import bench, catalog, run, validate

    ap = _OneLineParser(
        prog="gradparity",
        description="Run one computation through several implementations of the chain rule "
        "and show, tensor by tensor, whether their gradients agree.",
    )
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    for module in (catalog, run, validate, bench):
        module.add_commands(sub)
    ap.commands = dict(sub.choices)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command; bad input is exit 2 with one sentence, never a traceback;
    so is a write error, with exit 1 (the folder keeps its earlier files).

    Everything printed on stdout and stderr is shown, never sent, as far as control
    characters go (``escaping.console``): a case's or a plug-in's words cannot move the
    cursor, clear the screen or plant a link.

    Output piped into a program that stops reading (``gradparity run | head``) ends the
    command quietly, with the shell's status for SIGPIPE (141), after the work in flight
    has been cleaned up (plug-in workers included). SIGINT and SIGTERM end it with one
    line and 130 or 143 (``harness.interrupts``), every process it started killed."""
    with handled(last_resort=_kill_children) as pending:
        try:
            from harness.escaping import console  # the imports, too, may meet an interrupt
            from harness.sandbox.processes import keep_out_of_proc

            keep_out_of_proc()  # no worker may open this process's stdout through /proc

            with console():
                try:
                    code = _main(argv)
                except Exception:
                    # code the signal crossed may have turned it into an error of its own
                    # (matplotlib's renderer: "Invalid bounding box"): the signal wins
                    pending.check()
                    raise
            pending.check()  # a signal Python swallowed (in a weakref callback) ends it too
            return code
        except Interrupted as e:  # the finally blocks on its way here have run
            _kill_children()
            print(f"gradparity: interrupted by {e}", file=sys.stderr)
            return e.code


def _main(argv: Sequence[str] | None) -> int:
    from harness.backends import UnknownBackend
    from harness.cases import CaseError
    from harness.output import OutputError, release_all
    from harness.selection import UsageError

    compile_cache.enable()  # before a worker starts or JAX loads: both read it then
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return code
    except (UsageError, CaseError, UnknownBackend) as e:
        print(f"gradparity: error: {e}", file=sys.stderr)
        return 2
    except OutputError as e:  # the work was done, writing it failed; nothing half-written
        print(f"gradparity: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Python's advice (docs: "Note on SIGPIPE"): point stdout at devnull, so that the
        # interpreter's last flush at exit finds nothing to write into the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    finally:
        _close_workers()
        release_all()  # the output folders this command claimed


def _close_workers() -> None:
    """Every sandbox worker this command started, closed (if the sandbox was used)."""
    channel = sys.modules.get("harness.sandbox.channel")
    if channel is not None:
        channel.close_all()


def _kill_children() -> None:
    """After an interrupt: every process this one started and that is still there (a
    pool's, a Dask cluster's, a worker's and all below them), killed — all but
    multiprocessing's resource tracker, which ends by itself once this process has."""
    from harness.sandbox import processes

    _close_workers()
    tracker = getattr(
        sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None
    )
    spare = frozenset(pid for pid in [getattr(tracker, "_pid", None)] if isinstance(pid, int))
    processes.kill_descendants(os.getpid(), patience=2.0, spare=spare)


__all__ = ["main", "parser"]
