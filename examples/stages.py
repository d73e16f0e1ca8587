"""Stage plug-ins: one local step, its forward and a hand-written backward.

    gradparity validate examples/stages.py:Linear --as stage
    gradparity validate examples/stages.py:Tanh --as stage

``forward(*inputs)`` returns (out, cache); ``backward(d_out, cache)`` returns one gradient
per input. Each is checked against the harness's own definition of the stage on the
references, and against finite differences of this forward.
"""

import numpy as np


class Linear:
    """z = x W + b  (x: N×I, W: I×O, b: O, added to every row)."""

    stage = "linear"

    def forward(self, x, W, b):
        return x @ W + b, (x, W)

    def backward(self, dz, cache):
        x, W = cache
        return dz @ W.T, x.T @ dz, dz.sum(axis=0)  # dx, dW, db


class Tanh:
    """y = tanh(x); its derivative from the output: 1 − y²."""

    stage = "tanh"

    def forward(self, x):
        y = np.tanh(x)
        return y, y

    def backward(self, dy, y):
        return dy * (1 - y * y)
