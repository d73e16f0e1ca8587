"""Cases of a user's that misbehave in every way a case can, for tests/test_hostile.py.

gradparity loads a case of the user's in a worker process and runs it only there: each of
these must end as one failed row that names what it did (or, for a clean case that leaves
processes behind, with nothing left running), never as the end of the command, a hang, or
an exit status it chose. A test names the processes it may leave with $GP_TAG, which a
`sleep` carries as its argument, so that `ps` finds them.
"""

import ctypes
import os
import subprocess
import sys

import numpy as np

from harness.cases import case


def _setup(rng, n=3):
    return {"W": rng.standard_normal((n, n))}, {"x": rng.standard_normal(n)}


def _loss(xp, params, inputs):
    return xp.sum(xp.tanh(params["W"] @ inputs["x"]) ** 2)


@case(setup=_setup)
def clean(xp, params, inputs):
    """L = Σ tanh(W x)²."""
    return _loss(xp, params, inputs)


@case(setup=_setup)
def exits_0(xp, params, inputs):
    """sys.exit(0) in the loss: a CI job must not read it as success."""
    sys.exit(0)


@case(setup=_setup)
def exits_3(xp, params, inputs):
    sys.exit(3)


@case(setup=_setup)
def os_exit_7(xp, params, inputs):
    os._exit(7)


@case(setup=_setup)
def segfaults(xp, params, inputs):
    return ctypes.string_at(0)


@case(setup=_setup)
def loops(xp, params, inputs):
    while True:
        pass


@case(setup=_setup)
def spawns(xp, params, inputs):
    """A correct loss that leaves a process running behind it."""
    subprocess.Popen(["sleep", os.environ["GP_TAG"]])
    return _loss(xp, params, inputs)


@case(setup=_setup)
def escapes(xp, params, inputs):
    """A process with no environment, in a session of its own; then the worker ends."""
    subprocess.Popen(["sleep", os.environ["GP_TAG"]], env={}, start_new_session=True)
    os._exit(0)


@case(setup=lambda rng: ({"W": np.zeros((0, 3))}, {"x": rng.standard_normal(3)}))
def empty_parameter(xp, params, inputs):
    """Its one parameter has no elements: a gradient of it compares nothing."""
    return xp.sum(params["W"] @ inputs["x"]) + xp.sum(inputs["x"])
