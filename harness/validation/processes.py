"""Every process a plug-in started, found and killed — including those that left.

A plug-in may start processes that leave the worker's process group and session
(``setsid``) and lose their parent (a double fork), so killing the worker's group misses
them, and one that holds the worker's stderr keeps the pipe open. Two marks find them:

- the worker is a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): an orphan
  among its descendants is re-parented to it rather than to init, so while it lives
  every descendant stays in its tree, whatever groups or sessions they move to;
- every descendant inherits the worker's environment, which carries a token of its own
  (``TOKEN_VARIABLE``): one that escaped after the worker died is found by it in
  ``/proc/PID/environ``.

Where ``/proc`` is missing (not Linux) only the process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

TOKEN_VARIABLE = "GRADPARITY_WORKER_TOKEN"
PR_SET_CHILD_SUBREAPER = 36
PROC = "/proc"


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_children() -> None:
    """Collect the exit status of any child that has ended (zombies of killed orphans)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _table() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process."""
    parents = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{PROC}/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # after "(comm)": state, ppid, ...
        if fields and fields[0] not in (b"Z", b"X"):
            parents[int(entry.name)] = int(fields[1])
    return parents


def _marked(pids: Iterable[int], token: str) -> set[int]:
    mark = f"{TOKEN_VARIABLE}={token}".encode() + b"\0"
    found = set()
    for pid in pids:
        try:
            with open(f"{PROC}/{pid}/environ", "rb") as f:
                if mark in f.read() + b"\0":
                    found.add(pid)
        except OSError:
            continue
    return found


def descendants(root: int, token: str | None = None) -> set[int]:
    """The live processes below ``root`` in the process tree, and any carrying ``token``
    in their environment (``root`` itself and this process left out)."""
    if not os.path.isdir(PROC):
        return set()
    parents = _table()
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    if token:
        found |= _marked(parents, token)
    return found - {root, os.getpid()}


def kill_descendants(root: int, token: str | None = None, patience: float = 2.0) -> int:
    """SIGKILL every descendant of ``root`` (see ``descendants``) until none is left or
    ``patience`` seconds have passed; ``root`` itself is spared. Returns how many died.

    Killed in rounds: a process killed while its own children live hands them to the
    subreaper (``root``), so the next round finds them again."""
    killed: set[int] = set()
    deadline = time.monotonic() + patience
    while True:
        alive = descendants(root, token)
        if not alive or time.monotonic() > deadline:
            return len(killed)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.005)


__all__ = [
    "TOKEN_VARIABLE",
    "become_subreaper",
    "descendants",
    "kill_descendants",
    "reap_children",
]
