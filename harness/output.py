"""Folders and files written whole or not at all.

Every command that writes a folder (``report``, ``validate --out``, a sweep, ``bench``)
writes it through ``staged``; ``--csv`` goes through ``write_file``. The guarantees:

- **Whole or not at all.** The files of a run are written into a hidden staging folder
  inside the output folder (the same file system, so moving a file in is a rename), and
  only when every one is written are they moved in, each by ``os.replace``, with SIGINT
  and SIGTERM held until the last is in (then delivered). A write error or an interrupt
  before that removes the staging folder and leaves the output folder as it was; a move
  that fails part way puts back what it moved. So the folder holds the whole earlier set
  or the whole new one. (A power cut or SIGKILL during the moves can still leave a mix:
  the moves are not flushed to disk one by one.)
- **No stale files, and never a user's.** A manifest (``.gradparity.json``) records which
  command kind wrote each file of the folder, and the SHA-256 of what it wrote. A commit
  removes the files its own kind wrote last time and did not write again, and only while
  they still hold exactly what was written: a file changed since, or put in its place (a
  link, a pipe), is not gradparity's any more and stays, so a manifest someone else wrote
  cannot make a commit delete a user's file. Files of another kind (``bench.md`` beside a
  report) and files gradparity did not write (the user's notes, subfolders) stay. In a
  folder without a manifest of this version (an older version's, or none) only regular
  files under the names the writer says it is known to write are removed.
- **Only regular files are read or locked.** The manifest and the lock are opened without
  following a link and without waiting on a pipe: a link or a pipe planted under either
  name is refused (the lock) or ignored (the manifest), never followed or waited on.
- **One run per folder.** ``claim`` takes an exclusive ``flock`` on ``.gradparity.lock``
  in the folder, held by this process until ``release`` or its exit (the kernel drops an
  flock with its process, so a killed run never leaves the folder locked). A second run
  is refused at once (``FolderBusy``, naming the holder's pid) rather than made to wait
  behind a run that may never end.

Only the standard library: this is the lowest layer, below every writer.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from harness import interrupts

MANIFEST = ".gradparity.json"
LOCK = ".gradparity.lock"
STAGE_PREFIX = ".gradparity-stage-"
TEMP_PREFIX = ".gradparity-tmp-"
_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Filesystems where flock is not supported: the folder is written unlocked, as before.
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


class OutputError(Exception):
    """A folder or file could not be written; the message is one sentence and says that
    what was there is as it was."""


class FolderBusy(OutputError):
    """Another process holds the folder's lock."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        self.folder, self.pid = folder, pid
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"{str(folder)!r} is being written by another gradparity run{who}")


# --- the lock


_held: dict[Path, tuple[int, int]] = {}  # folder -> (descriptor, pid that took it)
_made: dict[Path, list[Path]] = {}  # folder -> those made for it, leaf first (``claim``)


def _absolute(folder: str | os.PathLike) -> Path:
    return Path(os.path.abspath(folder))


def _pid_in(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode("ascii", "replace").strip() or 0) or None
    except (OSError, ValueError):
        return None


def _clear_stages(folder: Path) -> None:
    """Staging folders of runs that were killed before they could remove them (whoever
    holds the lock is the only one who writes here, so any found now is dead)."""
    for entry in folder.iterdir():
        if entry.name.startswith(STAGE_PREFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _open_regular(path: Path, flags: int, mode: int = 0o644) -> int:
    """A descriptor on ``path`` if it is a regular file (or, with O_CREAT, a new one):
    never through a link, never blocking on a pipe. OSError(ELOOP) names anything else."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        fd = -1
    if fd >= 0 and stat.S_ISREG(os.fstat(fd).st_mode):
        return fd
    if fd >= 0:
        os.close(fd)
    raise OSError(
        errno.ELOOP,
        f"{path.name} there is a link or not a regular file; "
        "gradparity makes that file itself: remove it",
    )


def _open_lock(path: Path) -> int:
    return _open_regular(path, os.O_RDWR | os.O_CREAT)


def claim(folder: str | os.PathLike, made: Collection[Path] = ()) -> Path:
    """Lock ``folder`` (an existing directory) for this process and return its absolute
    path; claiming a folder this process holds already is a no-op. Raises ``FolderBusy``
    when another process holds it, OSError when the lock file cannot be made. ``made``:
    the folders the command made just now for it (it, and the parents it lacked, leaf
    first), which ``release`` removes where they are still empty then (an interrupted or
    refused command leaves no folder of its own making)."""
    folder = _absolute(folder)
    if made:
        _made[folder] = [_absolute(p) for p in made]
    held = _held.get(folder)
    if held and held[1] == os.getpid():
        return folder
    path = folder / LOCK
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            raise FolderBusy(folder, pid) from None
        except OSError as e:
            os.close(fd)
            if e.errno in _NO_LOCKS:
                return folder
            raise
        # The previous holder removes the file when it lets go: if it did so between our
        # open and our flock, we hold a lock on a file nobody else will open; retry.
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        mine = os.fstat(fd)
        if now is not None and (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    _held[folder] = (fd, os.getpid())
    _clear_stages(folder)
    return folder


def release(folder: str | os.PathLike) -> None:
    """Let go of ``folder`` (removing its lock file); nothing when this process does not
    hold it. A forked child closes its copy of the descriptor and leaves the file."""
    held = _held.pop(_absolute(folder), None)
    if held is None:
        return
    fd, pid = held
    if pid == os.getpid():
        with contextlib.suppress(OSError):
            os.unlink(_absolute(folder) / LOCK)  # while still locked: see ``claim``
        for made in _made.pop(_absolute(folder), []):
            try:
                os.rmdir(made)
            except OSError:  # not empty (written, or someone's): it and those above stay
                break
    os.close(fd)


def release_all() -> None:
    """Let go of every folder this process holds."""
    for folder in list(_held):
        release(folder)


# --- the manifest


def _plain(name: object) -> bool:
    """A file name directly in the folder, and not one of ours (a manifest names no path)."""
    return (
        isinstance(name, str)
        and bool(name)
        and name not in (".", "..")
        and "/" not in name
        and "\0" not in name
        and not name.startswith(".gradparity")
    )


MANIFEST_VERSION = 2
MAX_MANIFEST_BYTES = 1 << 24  # far above any folder gradparity writes


def _digest(path: Path) -> str | None:
    """The SHA-256 of the regular file at ``path``; None for anything else (missing, a
    link, a pipe, a folder), which is never gradparity's to remove."""
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except OSError:
        return None
    sha = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _read_manifest(folder: Path) -> dict[str, tuple[str, str]] | None:
    """name -> (kind, sha256) for each file gradparity wrote into ``folder``; None without
    a manifest of this version (an older version's, none, or one that is not a regular
    file of JSON)."""
    try:
        fd = _open_regular(folder / MANIFEST, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            text = f.read(MAX_MANIFEST_BYTES + 1)
        if len(text) > MAX_MANIFEST_BYTES:
            return None
        data = json.loads(text)
        if data["version"] != MANIFEST_VERSION:
            return None
        files = data["files"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(files, dict):
        return None
    return {
        name: (entry["kind"], entry["sha256"])
        for name, entry in files.items()
        if _plain(name)
        and isinstance(entry, dict)
        and isinstance(entry.get("kind"), str)
        and isinstance(entry.get("sha256"), str)
    }


def manifest(folder: str | os.PathLike) -> dict[str, str]:
    """The files gradparity wrote into ``folder`` at the last commit of each kind, with
    their kind (``{"report.md": "report", "bench.md": "bench", ...}``); empty if none."""
    return {name: kind for name, (kind, _) in (_read_manifest(_absolute(folder)) or {}).items()}


# --- staging and the commit


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM recorded, not acted on, inside the block; delivered again at its
    end (to the handlers that were there before). Python runs signal handlers on the main
    thread only, so elsewhere nothing can interrupt the block and nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    for sig in _HELD_SIGNALS:
        before = signal.getsignal(sig)
        if before is not None:  # None: a handler set outside Python, left alone
            previous[sig] = before
            signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)


def _commit(folder: Path, stage: Path, kind: str, known: Callable[[str], bool]) -> None:
    """Move every file of ``stage`` into ``folder``, remove the files of ``kind`` it held
    before and did not get again, and record the new manifest — all, or (on an OSError)
    none of it."""
    new = sorted(p.name for p in stage.iterdir())
    for name in new:
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            raise OutputError(
                f"could not write into {str(folder)!r}: {name!r} there is a "
                "folder, where gradparity writes a file; the files there are as "
                "they were"
            )
    before = _read_manifest(folder)
    if before is None:
        owned: dict[str, str | None] = {
            p.name: None for p in folder.iterdir() if _plain(p.name) and known(p.name)
        }
        others: dict[str, tuple[str, str]] = {}
    else:
        owned = {name: sha for name, (k, sha) in before.items() if k == kind}
        others = {name: entry for name, entry in before.items() if entry[0] != kind}
    # gradparity's own: a regular file holding what was written (any, for an older version)
    stale = sorted(
        n
        for n, sha in owned.items()
        if n not in new and (d := _digest(folder / n)) is not None and sha in (None, d)
    )
    files = {n: e for n, e in others.items() if n not in new and _digest(folder / n) == e[1]}
    files.update({n: (kind, _digest(stage / n) or "") for n in new})
    (stage / MANIFEST).write_text(
        json.dumps(
            {
                "version": MANIFEST_VERSION,
                "files": {n: {"kind": k, "sha256": sha} for n, (k, sha) in sorted(files.items())},
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    previous = stage / ".previous"
    previous.mkdir()
    moves: list[tuple[Path, Path]] = []  # done so far, to undo in reverse

    def move(src: Path, dst: Path) -> None:
        os.replace(src, dst)
        moves.append((src, dst))

    with _signals_held():
        try:
            for name in [*new, MANIFEST]:
                if os.path.lexists(folder / name):
                    move(folder / name, previous / name)
                move(stage / name, folder / name)
            for name in stale:
                move(folder / name, previous / name)
        except OSError:
            undone = True
            for src, dst in reversed(moves):
                try:
                    os.replace(dst, src)
                except OSError:
                    undone = False
            if not undone:
                raise OutputError(
                    f"could not write into {str(folder)!r}, and could not put "
                    f"back every file it held; the earlier ones are in "
                    f"{str(previous)!r}"
                ) from None
            raise
        shutil.rmtree(stage, ignore_errors=True)


def _failed(folder: Path, e: OSError) -> OutputError:
    return OutputError(
        f"could not write into {str(folder)!r} ({e.strerror or e}); the files "
        "there are as they were"
    )


@contextlib.contextmanager
def staged(
    folder: str | os.PathLike,
    kind: str,
    known: Callable[[str], bool] | Collection[str] = (),
) -> Iterator[Path]:
    """Yield an empty staging folder: write the run's files there. When the block ends
    without an exception they replace ``folder``'s files of ``kind`` (see the module's
    docstring); any exception removes them and leaves ``folder`` as it was, an OSError
    (a full disk, a file-size limit) raised again as an ``OutputError`` that names the
    folder. ``known``: the names this kind writes, for a folder without a manifest.

    The folder is made if missing, and claimed for the block unless this process holds
    it already (``claim``; then it stays held)."""
    folder = _absolute(folder)
    is_known = known if callable(known) else frozenset(known).__contains__
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mine = folder not in _held
        claim(folder)
        try:
            stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=folder))
        except BaseException:
            if mine:
                release(folder)
            raise
    except OSError as e:
        raise _failed(folder, e) from None
    try:
        try:
            yield stage
            interrupts.check()  # a signal some callback swallowed: the earlier files stay
            _commit(folder, stage, kind, is_known)
        except OSError as e:
            raise _failed(folder, e) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if mine:
            release(folder)


def write_file(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write one file whole: ``write`` fills a temporary file beside it (beside the file a
    symlink points to), which then replaces it by ``os.replace`` — so a reader sees the
    earlier file or the new one, never a part. An OSError is an ``OutputError`` naming
    the path; the temporary file is removed on any exit."""
    target = Path(os.path.realpath(path))
    temp = target.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}")
    try:
        write(temp)
        if target.exists():
            shutil.copymode(target, temp)
        os.replace(temp, target)
    except OSError as e:
        raise OutputError(
            f"could not write {str(path)!r} ({e.strerror or e}); any earlier "
            "file there is unchanged"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
    return Path(path)


__all__ = [
    "FolderBusy",
    "OutputError",
    "claim",
    "manifest",
    "release",
    "release_all",
    "staged",
    "write_file",
]
