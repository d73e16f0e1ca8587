"""Every process untrusted code started, found by what the kernel says, and killed.

Code in a worker may start processes that leave the worker's process group and session
(``setsid``), lose their parent (a double fork), wipe their environment, and outlive the
worker (it calls ``os._exit``). None of that hides them from the kernel:

- **Child subreapers** (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): the worker and its
  keeper (the process between it and us) both are one, so an orphan below the worker is
  re-parented to the worker while it lives and to the keeper after it died, never to init:
  every process the code started stays in the worker's tree, then the keeper's, where a
  walk of ``/proc`` finds it.
- **A PID namespace** besides, where Linux lets this user make one (root, or an
  unprivileged user namespace): the worker lives in a namespace of its own, whose process
  1 is a small init of ours. When that ends, the kernel kills every process left in the
  namespace; from inside, no process outside it can be named, so none can be signalled.

Where neither exists (not Linux) only the worker's process group is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
PROC = "/proc"


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to ask
        return None


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    libc = _libc()
    try:
        return libc is not None and libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except AttributeError:  # pragma: no cover - no prctl
        return False


def keep_out_of_proc() -> None:
    """Make this process non-dumpable (Linux; else nothing): its ``/proc/PID/fd`` (and
    memory) can then be opened only by a process with CAP_SYS_PTRACE over it, not merely by
    one of the same user — so a plug-in cannot write into the judging process's stdout by
    opening ``/proc/PID/fd/1``. A worker in a user namespace of its own has no capability
    outside it, root included. (Core dumps of this process are off too.)"""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def die_with_parent() -> None:
    """SIGKILL this process when the thread that started it ends (Linux; else nothing)."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def new_pid_namespace() -> bool:
    """Put this process's next child in a PID namespace of its own, and this process in a
    user namespace mapping this user to itself (root too: inside it, root has no capability
    over the processes outside, so it cannot open the judging process's ``/proc`` files;
    where the kernel refuses a user namespace to root, the PID namespace alone). False
    where the kernel says no to both (no namespaces, or unprivileged user namespaces
    turned off): nothing has changed."""
    libc = _libc()
    if libc is None or not os.path.isdir(PROC):
        return False
    uid, gid = os.geteuid(), os.getegid()
    tries = [CLONE_NEWPID | CLONE_NEWUSER] + ([CLONE_NEWPID] if uid == 0 else [])
    try:
        flags = next((f for f in tries if libc.unshare(f) == 0), 0)
    except AttributeError:  # pragma: no cover - no unshare
        return False
    if not flags:
        return False
    if flags & CLONE_NEWUSER:
        try:  # this user stays this user inside (files it writes are still its own)
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError:
            pass
    return True


def reap_children() -> None:
    """Collect the exit status of any child that has ended (zombies of killed orphans)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _parents() -> dict[int, int]:
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


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    if not os.path.isdir(PROC):
        return []
    return sorted(p for p, parent in _parents().items() if parent == pid)


def descendants(root: int) -> set[int]:
    """The live processes below ``root`` in the process tree (``root`` left out)."""
    if not os.path.isdir(PROC):
        return set()
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found - {root, os.getpid()}


def kill_descendants(root: int, patience: float = 2.0, spare: frozenset[int] = frozenset()) -> int:
    """SIGKILL every descendant of ``root`` (but those in ``spare``) until none is left or
    ``patience`` seconds have passed. Returns how many were killed.

    In rounds: a process killed while its own children live hands them to the nearest
    subreaper, still below ``root``, so the next round finds them. Each round stops every
    process first (SIGSTOP), so that none can fork while its siblings are being killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + patience
    while True:
        alive = descendants(root) - spare
        if not alive or time.monotonic() > deadline:
            return len(killed)
        for how in (signal.SIGSTOP, signal.SIGKILL):
            for pid in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, how)
        killed |= alive
        time.sleep(0.002)


__all__ = [
    "become_subreaper",
    "children",
    "descendants",
    "die_with_parent",
    "keep_out_of_proc",
    "kill_descendants",
    "new_pid_namespace",
    "reap_children",
]
