"""Where plug-in calls run: a worker process with a time and memory limit, or this process.

``Isolated`` starts ``python -m harness.validation.worker`` on first use and again after it
died or was killed, so one case's crash, hang or memory blow-up is that case's fault row
and the next case gets a fresh process. When a case ends, every process the plug-in
started is killed, also one that left the worker's group and session
(``harness.validation.processes``), so none outlives its case or holds the worker's pipes. Its own start-up (numpy, the cases) is not
counted against the time limit; importing the plug-in is. ``InProcess`` runs the same
worker code here: no limit, no crash protection — for a callable no fresh process can
import by name (a lambda, a closure), or when asked to.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from harness.validation.processes import TOKEN_VARIABLE, kill_descendants
from harness.validation.worker import Worker, read_message, write_message

GiB = 1024**3
DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY = 4 * GiB
STARTUP_TIMEOUT = 120.0
CLEANUP = 0.5  # seconds of a case's time limit kept for killing what it started (at most)
KEEP_STDERR = 64 * 1024


class InProcess:
    """The worker's code, run in this process (``isolated`` False)."""

    isolated = False

    def __init__(self, objects: dict[str, Any] | None = None) -> None:
        self.worker = Worker(objects)

    def request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        return self.worker.handle(message)

    def add(self, text: str, obj: Any) -> None:
        self.worker.loaded[text] = obj

    def close(self) -> None:
        pass


class Isolated:
    """A worker process: each request answered within ``timeout`` seconds or killed."""

    isolated = True

    def __init__(self, memory: int = DEFAULT_MEMORY) -> None:
        self.memory = memory
        self.proc: subprocess.Popen | None = None
        self.replies: queue.Queue = queue.Queue()
        self.stderr = bytearray()
        self.stderr_total = 0
        self.starts = 0
        self.token = uuid.uuid4().hex  # in the environment of the worker and all it starts
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # --- the process
    def _start(self) -> dict[str, Any] | None:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        env.setdefault("PYTHONFAULTHANDLER", "1")
        env[TOKEN_VARIABLE] = self.token
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.validation.worker", str(int(self.memory or 0))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, env=env,
        )  # fmt: skip
        self.starts += 1
        self.replies = queue.Queue()
        self.stderr, self.stderr_total = bytearray(), 0
        proc = self.proc
        self._threads = [
            threading.Thread(target=self._read_replies, args=(proc, self.replies), daemon=True),
            threading.Thread(target=self._drain, args=(proc,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            ready = self.replies.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            ready = None
        if not (isinstance(ready, dict) and "ready" in ready):
            self._kill()
            return {"kind": "crash", "type": "", "traceback": "",
                    "message": f"the worker process did not start: {self._stderr_tail()}"}  # fmt: skip
        return None

    @staticmethod
    def _read_replies(proc: subprocess.Popen, replies: queue.Queue) -> None:
        try:
            while True:
                message = read_message(proc.stdout)
                replies.put(message)
                if message is None:
                    return
        except Exception:  # noqa: BLE001 - a torn reply from a dying worker is an EOF
            replies.put(None)

    def _drain(self, proc: subprocess.Popen) -> None:
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
        """The worker and every process it started, wherever they went; then its pipes.

        The plug-in's processes go first, while the worker (their subreaper) still holds
        them in its tree; then the worker; then any that escaped as it died. The pipes are
        closed only once their reader threads have seen the end: a thread blocked in a read
        holds the stream's lock, and closing it from here would wait for that thread."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        kill_descendants(proc.pid, self.token, patience / 2)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the worker and its own group
            except (ProcessLookupError, PermissionError):
                proc.kill()
        proc.wait()
        kill_descendants(proc.pid, self.token, patience / 2)
        try:
            proc.stdin.close()
        except OSError:
            pass
        for thread in self._threads:
            thread.join(timeout=1.0)
        if not any(thread.is_alive() for thread in self._threads):
            for stream in (proc.stdout, proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
        self._threads = []

    def close(self) -> None:
        self._kill()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self._kill()
        except Exception:  # noqa: BLE001
            pass

    # --- one request
    def request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        if self.proc is None or self.proc.poll() is not None:
            self._kill()
            failed = self._start()
            if failed:
                return {"fault": failed}
        with self._lock:
            err_before = self.stderr_total
        try:
            write_message(self.proc.stdin, message)
        except (BrokenPipeError, OSError):
            return {"fault": self._died(err_before)}
        cleanup = min(CLEANUP, timeout / 10)  # inside the limit: the case ends within ``timeout``
        try:
            reply = self.replies.get(timeout=timeout - cleanup)
        except queue.Empty:
            self._kill(cleanup)
            return {"fault": {"kind": "timeout", "type": "", "traceback": "",
                              "message": f"no answer within {timeout:g} s; the worker was killed "
                                         "(an endless loop? raise --timeout for a slow plug-in)"}}  # fmt: skip
        if reply is None:
            return {"fault": self._died(err_before)}
        if message.get("op") == "run":  # the case has ended: nothing it started lives on
            kill_descendants(self.proc.pid, self.token, cleanup)
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
        return {"kind": "crash", "type": "", "message": f"the worker process {how}",
                "traceback": self._stderr_tail()}  # fmt: skip
