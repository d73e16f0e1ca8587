"""The worker process, ``python -m harness.sandbox.worker MEMORY OWNER``: where untrusted code runs.

The process the parent starts is the *keeper*. It ignores every signal it may ignore (so
code below it that signals its parent, ``os.kill(os.getppid(), SIGTERM)``, changes
nothing), makes a PID namespace where the kernel allows it and becomes a child subreaper
(``harness.sandbox.processes``), and starts the *worker* — in a namespace, as the child of
the namespace's process 1, a small init of ours — which it then only watches:

- when the worker ends, the keeper kills whatever the worker left behind (the kernel has
  already, in a namespace), and exits as the worker did (its status, or its signal);
- when the parent goes (its end of the request pipe closes: the parent closed the channel
  or died), the keeper kills the worker, and so everything.

Its second argument, the pid of the process that started it, is there for ``ps`` to show
whose it is. The worker (a session of its own, killed with the keeper) limits its data
segment to MEMORY bytes, then answers requests until the parent closes the pipe. A request names the
function that answers it, ``{"op": "package.module:function", ...}``; the function gets
the ``Worker`` (its ``loaded`` cache lives as long as the process) and the request, and
returns the reply. Requests and replies go over ``harness.sandbox.wire`` (data only). The
code it runs prints into captured streams, and its own file descriptors 0 and 1 are
/dev/null and stderr, so nothing it prints can corrupt a reply.

``call`` runs one piece of untrusted code: what it returns, prints and raises (an
exception with its traceback, ``sys.exit``, a MemoryError under the limit) as data.
"""

from __future__ import annotations

import codecs
import contextlib
import importlib
import io
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any, NoReturn

from harness.interrupts import Interrupted
from harness.sandbox import processes
from harness.target import LoadFault

HEAD, TAIL = 4000, 1000  # characters of printed output kept from each end
NAMESPACE_SWITCH = "GRADPARITY_PID_NAMESPACE"  # "0": subreapers alone, no PID namespace
IGNORED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGPIPE", "SIGALRM")


class Capture(io.TextIOBase):
    """A stand-in for sys.stdout/stderr that counts everything and keeps the ends: the
    characters (``size``) and the lines (``lines``, as ``str.split`` on the text without its
    final line breaks would count them) of all that was written."""

    def __init__(self) -> None:
        self.head: list[str] = []
        self.tail, self.size, self._kept = "", 0, 0
        self.breaks, self._trailing = 0, 0  # line breaks in all, and at the very end

    def write(self, s: str) -> int:
        s = str(s)
        if self._kept < HEAD:
            self.head.append(s[: HEAD - self._kept])
            self._kept += len(self.head[-1])
        self.tail = (self.tail + s[-TAIL:])[-TAIL:]
        self.size += len(s)
        self.breaks += s.count("\n")
        end = len(s) - len(s.rstrip("\n"))
        self._trailing = self._trailing + end if end == len(s) else end
        return len(s)

    def writable(self) -> bool:
        return True

    @property
    def lines(self) -> int:
        return self.breaks - self._trailing + 1 if self.size else 0

    def text(self) -> str:
        """All of it, or where it outgrew ``HEAD + TAIL`` characters, its first ``HEAD``
        and last ``TAIL`` with a line between that counts what was left out."""
        head = "".join(self.head)
        if self.size <= HEAD:
            return head
        if self.size <= HEAD + TAIL:  # the tail holds all that came after the head
            return head + self.tail[len(self.tail) - (self.size - HEAD) :]
        return f"{head}\n[... {self.size - HEAD - TAIL} characters left out ...]\n{self.tail}"


class FdCapture:
    """For the duration of a call, file descriptors 1 and 2 are a pipe that a thread reads
    into a ``Capture``: what the code wrote below Python's streams (``os.write(1, …)``, C
    code, a subprocess that inherits them) is the call's, as data, never written past
    gradparity onto its stdout. In a worker (``TEE``) it also goes on to the worker's own
    stderr, where the last words of a crash are looked for."""

    def __init__(self) -> None:
        self.capture = Capture()
        self._saved: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FdCapture:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()  # type: ignore[union-attr]
        try:
            read, write = os.pipe()
            saved = os.dup(1), os.dup(2)
        except OSError:  # no descriptor left: the call runs uncaptured below Python
            return self
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        self._saved = saved
        tee = saved[1] if TEE else None
        self._thread = threading.Thread(target=self._read, args=(read, tee), daemon=True)
        self._thread.start()
        return self

    def _read(self, read: int, tee: int | None) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        with contextlib.suppress(OSError):
            while chunk := os.read(read, 65536):
                self.capture.write(decoder.decode(chunk))
                if tee is not None:
                    with contextlib.suppress(OSError):
                        os.write(tee, chunk)
        self.capture.write(decoder.decode(b"", final=True))
        os.close(read)

    def __exit__(self, *exc: object) -> None:
        if self._saved is None:
            return
        for stream in (sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()  # type: ignore[union-attr]
        with contextlib.suppress(Exception):  # C's stdio buffers, where C code printed
            import ctypes

            ctypes.CDLL(None).fflush(None)
        for fd, saved in zip((1, 2), self._saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        self._saved = None
        if self._thread is not None:  # the pipe's end: unless a process it started holds it
            self._thread.join(timeout=1.0)


TEE = False  # set in a worker process: fd-level output also goes on to its stderr


class OsExit(SystemExit):
    """``os._exit`` called by code run in this process (``harness.sandbox.InProcess``):
    raised in its place, so that the command's exit status stays its own."""


@contextlib.contextmanager
def no_os_exit() -> Iterator[None]:
    """For the duration, ``os._exit`` raises ``OsExit`` instead of ending this process (a
    crash, a signal or a C library's ``exit`` still would: only a worker bounds those)."""
    import posix

    here = os.getpid()
    saved = os._exit

    def refused(status: int) -> NoReturn:
        if os.getpid() != here:  # a process the plug-in forked ends as it asks
            saved(status)
        raise OsExit(status)

    os._exit = posix._exit = refused
    try:
        yield
    finally:
        os._exit = posix._exit = saved


def error(fault_name: str, e: BaseException) -> dict[str, Any]:
    """A fault as data: its name, the exception's type and message, the traceback (its ends)."""
    tb = traceback.format_exc()
    if len(tb) > 6000:
        tb = tb[:1500] + "\n[...]\n" + tb[-4000:]
    out: dict[str, Any] = {
        "fault_name": fault_name,
        "type": type(e).__name__,
        "message": f"{type(e).__name__}: {e}",
        "traceback": tb,
    }
    facts = getattr(e, "facts", None)  # what the message says, as data (harness exceptions)
    if isinstance(facts, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in facts.items()
    ):
        out["facts"] = dict(facts)
    return out


def call(fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)``, with what it printed (capped) and how long it took; what it raised
    is ``error``: the fault "memory", "exit" (``sys.exit``), "exception", or the LoadFault's
    own ("import error", "missing attribute") for a target that would not load."""
    saved = sys.stdout, sys.stderr
    out, err = Capture(), Capture()
    record: dict[str, Any] = {"error": None, "value": None}
    below = FdCapture().__enter__()
    start = time.perf_counter()
    sys.stdout, sys.stderr = out, err
    try:
        record["value"] = fn(*args)
    except Interrupted:  # this command was interrupted (code run in its own process)
        raise
    except LoadFault as e:  # a file that would not import: its own traceback, not ours
        record["error"] = {
            "fault_name": e.fault_name,
            "type": "",
            "message": e.message,
            "traceback": e.traceback,
        }
        if (
            e.fault_name not in LoadFault.FAULT_NAMES
        ):  # raised by the code itself, named as it chose
            record["error"] = error("exception", e)
    except MemoryError as e:
        record["error"] = error("memory", e)
    except SystemExit as e:
        record["error"] = {
            "fault_name": "exit",
            "type": "SystemExit",
            "message": f"{'os._exit' if isinstance(e, OsExit) else 'sys.exit'}({e.code!r})",
            "traceback": traceback.format_exc(),
        }
    except BaseException as e:  # noqa: BLE001 - everything untrusted code raises is reported
        record["error"] = error("exception", e)
    finally:
        sys.stdout, sys.stderr = saved
        below.__exit__()
    fd = below.capture
    record.update(
        seconds=time.perf_counter() - start,
        stdout=out.text(),
        stdout_chars=out.size,
        stdout_lines=out.lines,
        stderr=err.text(),
        stderr_chars=err.size,
        stderr_lines=err.lines,
        fd=fd.text(),
        fd_chars=fd.size,
        fd_lines=fd.lines,
    )
    return record


class Worker:
    """Answers requests, in a worker process or (``harness.sandbox.InProcess``) here."""

    def __init__(self, objects: dict[str, Any] | None = None) -> None:
        self.loaded: dict[str, Any] = dict(objects or {})

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        module, _, name = str(request["op"]).partition(":")
        return getattr(importlib.import_module(module), name)(self, request)


# --- the processes ----------------------------------------------------------------------------


def _ignore_signals() -> None:
    for name in IGNORED:
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def _default_signals() -> None:
    for name in IGNORED:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _exit_as(status: int) -> None:
    """End this process as a child ended with ``status`` (a waitpid status)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the worker's crash, not ours
        except (ImportError, ValueError, OSError):
            pass
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def keep(memory: int) -> None:
    """The keeper: start the worker (under a namespace's init where there is one), watch
    it and the parent, clean up, and exit as the worker did."""
    _ignore_signals()
    namespace = os.environ.get(NAMESPACE_SWITCH) != "0" and processes.new_pid_namespace()
    processes.become_subreaper()
    keeper = os.getpid()
    status_r, status_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(status_r)
        processes.die_with_parent()
        if namespace:
            _init(memory, status_w)
        os.close(status_w)
        _work(memory, False, keeper)
    os.close(status_w)
    watch = os.dup(0)  # never read: its POLLHUP says the parent has gone
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    poller = select.poll()
    poller.register(watch, 0)
    status = None
    while status is None:
        try:
            while True:
                pid, code = os.waitpid(-1, os.WNOHANG)  # the child, or orphans given to us
                if pid == 0:
                    break
                if pid == child:
                    status = code
        except ChildProcessError:
            status = 0 if status is None else status
        if status is None and poller.poll(50):
            os.kill(child, signal.SIGKILL)
    if namespace:  # the worker's own status, as its init reported it
        reported = os.read(status_r, 64)
        status = int(reported) if reported.strip().isdigit() else status
    processes.kill_descendants(os.getpid(), patience=2.0)
    _exit_as(status)


def _init(memory: int, status_w: int) -> None:
    """Process 1 of the worker's PID namespace: start the worker, reap every orphan, and
    when the worker ends, report its status and end — the kernel then kills whatever is
    left in the namespace. (The worker is not process 1 itself: the kernel shields that
    one from signals sent inside its namespace, its own SIGKILL and SIGABRT included.)"""
    worker = os.fork()
    if worker == 0:
        os.close(status_w)
        _work(memory, True, None)
    while True:
        try:
            pid, code = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == worker:
            os.write(status_w, str(code).encode())
            os._exit(0)


def _work(memory: int, namespace: bool, keeper: int | None) -> None:
    os.setsid()
    _default_signals()
    processes.die_with_parent()
    if keeper is not None and os.getppid() != keeper:  # the keeper died before that line
        os._exit(1)
    serve(memory, namespace)
    os._exit(0)


def serve(memory: int, namespace: bool) -> None:
    """The worker: limits, streams, then requests until the parent closes the pipe."""
    import faulthandler

    from harness.sandbox.wire import read_message, write_message

    if memory > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
        except (ImportError, ValueError, OSError):  # no such limit on this system
            pass
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    global TEE
    TEE = True
    faulthandler.enable(file=os.dup(2))  # the worker's stderr, whatever fd 2 is during a call
    import harness.cases  # noqa: F401  (numpy and the catalog, before the first timed request)

    processes.become_subreaper()  # orphans stay below this process (the namespace's init: already)
    worker = Worker()
    write_message(replies, {"ready": True, "namespace": namespace})
    while True:
        request = read_message(requests)  # from the parent: trusted
        if request is None:
            return
        processes.reap_children()  # the zombies of processes the parent killed after a request
        try:
            reply = worker.handle(request)
        except MemoryError as e:
            reply = {"fault": error("memory", e)}
        except SystemExit as e:  # raised outside ``call``, by code the op ran
            reply = {
                "fault": {
                    "fault_name": "exit",
                    "type": "SystemExit",
                    "message": f"sys.exit({e.code!r})",
                    "traceback": "",
                }
            }
        except BaseException as e:  # noqa: BLE001 - whatever it was, the parent hears of it
            reply = {"fault": error("exception", e)}
        try:
            write_message(replies, reply)
        except TypeError as e:  # the reply holds something that is not data
            write_message(replies, {"fault": error("wrong type", e)})


if __name__ == "__main__":
    keep(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
