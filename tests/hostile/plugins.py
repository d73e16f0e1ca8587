"""Plug-ins (model form, for the case card_affine_square) that attack the process that
judges them, for tests/test_hostile.py. Each returns the correct gradient, so that what
gradparity says about it comes from the attack alone. $GP_TAG names their processes and
$GP_MARKER the file an attack would create in the parent."""

import os
import pickle
import signal
import struct
import subprocess

import numpy as np


def _grads(params):
    return {"x": 2 * (3 * params["x"] + 1) * 3}


class _Payload:
    """Unpickling this runs a shell command: what a pickle-reading parent would do."""

    def __reduce__(self):
        command = f"touch {os.environ['GP_MARKER']}; sleep {os.environ['GP_TAG']} &"
        return (os.system, (command,))


def pickles_into_the_reply(params, inputs):
    """Writes a pickle frame (8-byte length, then the pickle) into every pipe it holds,
    the reply pipe among them."""
    frame = pickle.dumps({"calls": _Payload()})
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                os.write(fd, struct.pack("<Q", len(frame)) + frame)
        except OSError:
            pass
    return _grads(params)


def escapes_and_exits(params, inputs):
    """A child with no environment, in a session of its own; then the worker ends."""
    subprocess.Popen(["sleep", os.environ["GP_TAG"]], env={}, start_new_session=True)
    os._exit(0)


def signals_its_parent(params, inputs):
    os.kill(os.getppid(), signal.SIGTERM)
    return _grads(params)


def hides_a_write(params, inputs):
    """Replaces numpy's NaN test, then writes into the arrays it was given."""
    np.isnan = lambda a: np.ones(np.shape(a), dtype=bool)
    grads = _grads(params)
    params["x"][0] = 123.0
    return grads


def empty_gradient(params, inputs):
    """The right gradient of ``empty_parameter``: it has no elements to check."""
    return {"W": np.zeros((0, 3))}


def writes_into_the_judges_stdout(params, inputs):
    """Finds the gradparity command by its command line and writes a forged verdict into
    its stdout through /proc/PID/fd/1; records in $GP_MARKER what it found and could do."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
        except OSError:
            continue
        if b"harness.cli" in words and any(b"writes_into_the_judges_stdout" in w for w in words):
            try:
                with open(f"/proc/{entry}/fd/1", "w") as out:
                    out.write(f"FORGED AGREES {os.environ['GP_TAG']}\n")
                found.append(f"{entry} opened")
            except OSError as e:
                found.append(f"{entry} refused {e.errno}")
    with open(os.environ["GP_MARKER"], "w") as f:
        f.write("\n".join(found))
    return _grads(params)
