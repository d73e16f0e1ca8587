"""Your own model, checked three ways: an LSTM written once against the array API standard
(the forward: ``MyLSTM``), and its backward derived by hand in numpy (``grads``).

    gradparity describe examples/my_lstm.py:MyLSTM
    gradparity run --case examples/my_lstm.py:MyLSTM --set T=20
    gradparity validate examples/my_lstm.py:grads --case examples/my_lstm.py:MyLSTM

``run`` differentiates the forward with the tape, torch and jax, and checks them against
finite differences; ``validate`` holds the hand-written backward to all of them, tensor
by tensor and step by step (``grads`` returns dL/dh_t and dL/dc_t too, so a wrong step of
the BPTT is found where it starts).

The forward is ordinary array code: ``xp`` is whatever array library runs it (numpy,
torch, jax, the tape), so it uses the standard's names (``xp.tanh``, ``xp.concat``,
``@``) and gradparity's extras (``xp.sigmoid``, ``xp.tap``, ``xp.scan``).
"""

from __future__ import annotations

import numpy as np

from harness.cases import Case, at_least


class MyLSTM(Case):
    """A one-layer LSTM read out at its last step, on a batch of B sequences.

    [i, f, o, g] = [x_t, h_{t−1}] W + b   (W: (D+H)×4H, four H-wide blocks);
    i, f, o = σ(·), g = tanh(·);  c_t = f ⊙ c_{t−1} + i ⊙ g;  h_t = o ⊙ tanh(c_t);
    h_0 = c_0 = 0;  L = ½ (1/B) ‖h_T V − y‖²  (V: H×O).
    Taps: h and c (dL/dh_t, dL/dc_t at every step).
    """

    name, family = "my_lstm", "user"
    options = {"T": 12, "H": 5, "D": 3, "B": 2, "O": 2}
    allowed = {k: at_least(1) for k in options}

    def setup(self, rng):
        D, H, O = self.D, self.H, self.O  # noqa: E741 - the docstring's names
        params = {
            "W": rng.standard_normal((D + H, 4 * H)) / np.sqrt(D + H),
            "b": np.concatenate([np.zeros(H), np.ones(H), np.zeros(2 * H)]),  # forget bias 1
            "V": rng.standard_normal((H, O)) / np.sqrt(H),
        }
        inputs = {
            "x": rng.standard_normal((self.T, self.B, D)),
            "y": rng.standard_normal((self.B, O)),
            "h0": np.zeros((self.B, H)),
        }
        return params, inputs

    def loss(self, xp, p, inputs):
        H = self.H

        def step(state, x_t):
            h, c = state
            a = xp.concat([x_t, h], axis=1) @ p["W"] + p["b"]
            i, f = xp.sigmoid(a[:, :H]), xp.sigmoid(a[:, H : 2 * H])
            o, g = xp.sigmoid(a[:, 2 * H : 3 * H]), xp.tanh(a[:, 3 * H :])
            c = xp.tap("c", f * c + i * g)
            h = xp.tap("h", o * xp.tanh(c))
            return (h, c), None

        (h, _), _ = xp.scan(step, (inputs["h0"], inputs["h0"]), inputs["x"])
        d = h @ p["V"] - inputs["y"]
        return xp.sum(d * d) / (2 * self.B)


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


def grads(params, inputs):
    """The backward by hand: the forward again, keeping what the backward needs, then BPTT
    from the last step to the first."""
    W, b, V = params["W"], params["b"], params["V"]
    x, y = inputs["x"], inputs["y"]
    T, B = x.shape[0], x.shape[1]
    H = V.shape[0]
    h, c = inputs["h0"], inputs["h0"]
    cache = []
    for t in range(T):  # forward
        z = np.concatenate([x[t], h], axis=1)
        a = z @ W + b
        i, f = _sigmoid(a[:, :H]), _sigmoid(a[:, H : 2 * H])
        o, g = _sigmoid(a[:, 2 * H : 3 * H]), np.tanh(a[:, 3 * H :])
        c_prev, c = c, f * c + i * g
        h = o * np.tanh(c)
        cache.append((z, i, f, o, g, c_prev, c))
    d = h @ V - y
    loss = np.sum(d * d) / (2 * B)
    dV = h.T @ (d / B)
    dh = (d / B) @ V.T  # dL/dh_T
    dc_next = np.zeros_like(h)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    taps_h, taps_c = np.zeros((T, B, H), x.dtype), np.zeros((T, B, H), x.dtype)
    for t in reversed(range(T)):  # backward through time
        z, i, f, o, g, c_prev, c = cache[t]
        taps_h[t] = dh
        tanh_c = np.tanh(c)
        dc = dh * o * (1 - tanh_c**2) + dc_next  # both paths into c_t: via h_t, and via c_{t+1}
        taps_c[t] = dc
        da = np.concatenate(
            [
                dc * g * i * (1 - i),  # di
                dc * c_prev * f * (1 - f),  # df
                dh * tanh_c * o * (1 - o),  # do
                dc * i * (1 - g**2),  # dg
            ],
            axis=1,
        )
        dW += z.T @ da
        db += da.sum(axis=0)
        dz = da @ W.T
        dh = dz[:, x.shape[2] :]  # dL/dh_{t−1}
        dc_next = dc * f  # dL/dc_{t−1} through the cell state
    return {"grads": {"W": dW, "b": db, "V": dV}, "loss": loss, "taps": {"h": taps_h, "c": taps_c}}
