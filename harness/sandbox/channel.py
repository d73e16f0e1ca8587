"""Where untrusted code runs: a worker process with a time and memory limit, or this one.

``Isolated`` starts ``python -m harness.sandbox.worker`` (its keeper and worker, see that
module) on first use and again after it died or was killed, so one request's crash, hang
or memory blow-up is that request's fault and the next gets a fresh process. After each
request, every process the worker's code started is killed (``harness.sandbox.processes``),
so none outlives its request or holds the worker's pipes; closing the channel kills them
all. Its own start-up (numpy, the cases) is not counted against the time limit.

A reply is read with ``harness.sandbox.wire`` (data only); one that breaks the protocol
is a fault ("malformed reply") and the worker is killed, since nothing it sends after that
can be trusted to belong to the right request.

``InProcess`` runs the same worker code here: no limit, no crash protection — for code no
fresh process can import by name (a lambda, a closure), or when asked to. Its messages go
through the same wire, so both channels hand back the same data.

Every live ``Isolated`` is known to ``close_all``, which a command calls when it is
interrupted, so that no worker outlives the command.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

from harness.interrupts import Interrupted
from harness.sandbox import processes
from harness.sandbox.wire import LIMIT, Malformed, encode, read_message, write_message
from harness.sandbox.worker import OsExit, Worker, error, no_os_exit

GiB = 1024**3
DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY = 4 * GiB
STARTUP_TIMEOUT = 120.0
CLEANUP = 0.5  # seconds of a request's time limit kept for killing what it started (at most)
KEEP_STDERR = 64 * 1024
_LIVE: weakref.WeakSet = weakref.WeakSet()


def fault(fault_name: str, message: str, traceback: str = "") -> dict[str, Any]:
    """A reply that says the request failed, as the worker's own faults say it."""
    return {
        "fault": {"fault_name": fault_name, "type": "", "message": message, "traceback": traceback}
    }


class InProcess:
    """The worker's code, run in this process (``isolated`` False)."""

    isolated = False

    def __init__(self, objects: dict[str, Any] | None = None) -> None:
        self.worker = Worker(objects)

    def request(
        self, message: dict[str, Any], timeout: float | None = None, end: bool = True
    ) -> dict[str, Any]:
        header_and_data = encode(message)
        request = _decoded(header_and_data)
        try:
            with no_os_exit():  # the plug-in's os._exit(0) would end the command with status 0
                reply = self.worker.handle(request)
        except MemoryError as e:
            return fault("memory", f"MemoryError: {e}")
        except OsExit as e:  # raised outside ``call``
            return fault("exit", f"os._exit({e.code!r})")
        except SystemExit as e:  # raised outside ``call`` (its answer's __repr__, say), as a
            return fault("exit", f"sys.exit({e.code!r})")  # worker's ``serve`` says it
        except (Interrupted, KeyboardInterrupt):  # this command's, not the plug-in's
            raise
        except BaseException as e:  # noqa: BLE001 - whatever it was, as a worker reports it
            return {"fault": error("exception", e)}
        try:
            return _decoded(encode(reply))
        except TypeError as e:
            return fault("wrong type", f"the reply is not data: {e}")

    def add(self, text: str, obj: Any) -> None:
        self.worker.loaded[text] = obj

    def close(self) -> None:
        pass


def _decoded(frame: bytes) -> Any:
    import io

    return read_message(io.BytesIO(frame))


class Isolated:
    """A worker process: each request answered within ``timeout`` seconds or killed.

    ``memory``: the worker's data-segment limit in bytes (0: none). ``starts`` counts the
    worker processes started; ``namespace`` says whether the last one has a PID namespace
    of its own (else subreapers keep its processes in view)."""

    isolated = True

    def __init__(self, memory: int = DEFAULT_MEMORY) -> None:
        self.memory = memory
        self.proc: subprocess.Popen | None = None
        self.worker_pid: int | None = None
        self.namespace = False
        self.replies: queue.Queue = queue.Queue()
        self.stderr = bytearray()
        self.stderr_total = 0
        self.starts = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        _LIVE.add(self)

    # --- the process
    def _start(self) -> dict[str, Any] | None:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        env.setdefault("PYTHONFAULTHANDLER", "1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.sandbox.worker",
                str(int(self.memory or 0)),
                str(os.getpid()),
            ],  # whose worker it is, for `ps` (and a curious plug-in)
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        self.starts += 1
        self.replies = queue.Queue()
        self.stderr, self.stderr_total = bytearray(), 0
        proc = self.proc
        limit = max(int(self.memory), GiB) if self.memory else LIMIT  # no reply outgrows it
        self._threads = [
            threading.Thread(
                target=self._read_replies, args=(proc, self.replies, limit), daemon=True
            ),
            threading.Thread(target=self._drain, args=(proc,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            ready = self.replies.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            ready = None
        if not (isinstance(ready, dict) and ready.get("ready") is True):
            self._kill()
            return fault("crash", f"the worker process did not start: {self._stderr_tail()}")[
                "fault"
            ]
        self.namespace = bool(ready.get("namespace"))
        self.worker_pid = proc.pid  # the end of the keeper's chain (its init's, in a namespace)
        while len(children := processes.children(self.worker_pid)) == 1:
            self.worker_pid = children[0]
        return None

    @staticmethod
    def _read_replies(proc: subprocess.Popen, replies: queue.Queue, limit: int) -> None:
        try:
            while True:
                message = read_message(proc.stdout, limit)
                replies.put(message)
                if message is None:
                    return
        except Malformed as e:
            replies.put(e)
        except (OSError, ValueError):  # the pipe closed under us: the worker was killed
            replies.put(None)

    def _drain(self, proc: Any) -> None:  # a Popen with its stderr a pipe (read1)
        """Keep the first and last bytes of the worker's fd-level stderr, count them all."""
        while True:
            try:
                chunk = proc.stderr.read1(65536)
            except (OSError, ValueError):  # closed when the worker was killed
                return
            if not chunk:
                return
            with self._lock:
                self.stderr_total += len(chunk)
                self.stderr += chunk
                if len(self.stderr) > 2 * KEEP_STDERR:
                    del self.stderr[KEEP_STDERR // 2 : len(self.stderr) - KEEP_STDERR]

    def _stderr_tail(self, limit: int = 2000) -> str:
        with self._lock:
            text = bytes(self.stderr).decode("utf-8", "replace")
        return text[-limit:].strip() or "(nothing on stderr)"

    def _kill(self, patience: float = 2.0) -> None:
        """The worker and every process below its keeper; then the keeper and its pipes.

        The pipes are closed only once their reader threads have seen the end: a thread
        blocked in a read holds the stream's lock, and closing it from here would wait
        for that thread."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            processes.kill_descendants(proc.pid, patience=patience)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the keeper (its group is its own)
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            proc.kill()
        proc.wait()
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        for thread in self._threads:
            thread.join(timeout=1.0)
        if not any(thread.is_alive() for thread in self._threads):
            for stream in (proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        self._threads = []
        self.worker_pid = None

    def close(self) -> None:
        self._kill()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self._kill()

    # --- one request
    def request(
        self, message: dict[str, Any], timeout: float | None = None, end: bool = True
    ) -> dict[str, Any]:
        """The worker's reply to ``message`` (a dict, data only), or ``{"fault": …}``:
        a timeout, a crash, a reply that breaks the protocol. ``end``: the request is a
        whole piece of work, and what its code started is killed after it."""
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        if self.proc is None or self.proc.poll() is not None:
            self._kill()
            failed = self._start()
            if failed:
                return {"fault": failed}
        with self._lock:
            err_before = self.stderr_total
        assert self.proc is not None  # started above
        try:
            write_message(self.proc.stdin, message)
        except (BrokenPipeError, OSError):
            return {"fault": self._died(err_before)}
        cleanup = min(
            CLEANUP, timeout / 10
        )  # inside the limit: the request ends within ``timeout``
        try:
            reply = self.replies.get(timeout=timeout - cleanup)
        except queue.Empty:
            self._kill(cleanup)
            return fault(
                "timeout",
                f"no answer within {timeout:g} s; the worker was killed (an "
                "endless loop? raise --timeout for slow code)",
            )
        if isinstance(reply, Malformed):
            self._kill(cleanup)
            return fault(
                "malformed reply",
                f"the worker's reply broke the protocol ({reply}); "
                "something wrote into its reply pipe, so it was killed",
            )
        if reply is None:
            return {"fault": self._died(err_before)}
        if not isinstance(reply, dict):
            self._kill(cleanup)
            return fault("malformed reply", f"the worker replied with a {type(reply).__name__}")
        if end and self.worker_pid is not None:  # the work has ended: nothing it started lives on
            processes.kill_descendants(self.worker_pid, patience=cleanup)
        with self._lock:
            reply["fd_stderr_bytes"] = self.stderr_total - err_before
        return reply

    def _died(self, err_before: int) -> dict[str, Any]:
        proc = self.proc
        code = proc.wait(timeout=10) if proc is not None else None
        self._kill()
        if code is not None and code < 0:
            try:
                how = f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
            if -code == signal.SIGKILL:
                how += " (out of memory?)"
        else:
            how = f"exited with status {code} (os._exit, or a C library calling exit)"
        return {
            "fault_name": "crash",
            "type": "",
            "message": f"the worker process {how}",
            "traceback": self._stderr_tail(8000),
        }


def close_all() -> None:
    """Kill every worker this process started (and all they started): on an interrupt."""
    for channel in list(_LIVE):
        with contextlib.suppress(Exception):
            channel.close()


__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_TIMEOUT",
    "GiB",
    "InProcess",
    "Isolated",
    "close_all",
    "fault",
]
