"""Recurrent unrolls with full weight matrices: Elman RNN, LSTM, GRU.

Every unroll goes through ``xp.scan`` (JAX: one ``lax.scan``; the others: a loop), and
taps dL/dh_t at every step (and dL/dc_t for the LSTM). Row-vector convention: a batch
of B rows, x_t: B×D, h_t: B×H. The largest singular value of the recurrent matrix is
set exactly by the option ``sigma``.
"""

from __future__ import annotations

import numpy as np

from harness.cases import manual_backprop
from harness.cases.base import Allowed, Case, CaseError, at_least, footprint_of, one_of, register


def recurrent_matrix(rng: np.random.Generator, rows: int, cols: int, sigma: float, spectrum: str):
    """A rows×cols matrix whose largest singular value is exactly ``sigma``.

    "random": a Gaussian matrix rescaled (its singular values keep their spread);
    "flat":   every singular value equal to sigma (a scaled orthogonal matrix)."""
    a = rng.standard_normal((rows, cols))
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    if spectrum == "random":
        s = s * (sigma / s[0])
    elif spectrum == "flat":
        s = np.full_like(s, sigma)
    else:
        raise CaseError(f"spectrum must be 'random' or 'flat', not {spectrum!r}")
    return (u * s) @ vt


class Unroll(Case):
    """Shared set-up of the recurrent cases: sizes, inputs, targets and the two losses."""

    options = {
        "T": 30,
        "H": 8,
        "D": 3,
        "B": 2,
        "O": 2,
        "sigma": 0.9,
        "spectrum": "random",
        "x_scale": 1.0,
        "bias_scale": 0.1,
        "objective": "last",
    }
    allowed = {
        **{k: at_least(1) for k in ("T", "H", "D", "B", "O")},
        "sigma": at_least(0), "spectrum": one_of("random", "flat"), "x_scale": Allowed(),
        "bias_scale": Allowed(), "objective": one_of("last", "sum"),
    }  # fmt: skip
    gates = 1  # how many H-wide blocks the recurrent matrix has (LSTM 4, GRU 3)
    tapped = 1  # B×H values tapped at each step, and states started from zeros (LSTM: h, c)
    saved = 5  # B×H values each step computes that its backward reads (see ``footprint``)

    def footprint(self) -> int:
        """Counted from the options (``footprint_of``): the arrays are W_x (D × GH), W_h
        (H × GH), b (GH), W_y (H × O), the inputs X and Y (T × B × (D + O)) and the zero
        states (``tapped`` × B × H); the tensors compared, a gradient per parameter and
        ``tapped`` taps of T × B × H; the graph, ``saved`` B × H values per step (the
        class's docstring lists them), and with the loss summed over steps its readout
        (h W_y, its difference from y and its square: 3 × B × O) at each step."""
        T, B, H, D, O, G = self.T, self.B, self.H, self.D, self.O, self.gates  # noqa: E741
        params = D * G * H + H * G * H + G * H + H * O
        inputs = T * B * (D + O) + self.tapped * B * H
        readout = 3 * B * O if self.objective == "sum" else 0
        return footprint_of(
            params + inputs,
            params + self.tapped * T * B * H,
            T * (self.saved * B * H + readout),
            T * (self.saved + (3 if readout else 0)),
        )

    def setup(self, rng):
        H, G = self.H, self.gates
        params = {
            "W_x": rng.standard_normal((self.D, G * H)) / np.sqrt(self.D),
            "W_h": recurrent_matrix(rng, H, G * H, self.sigma, self.spectrum),
            "b": self.bias(rng),
            "W_y": rng.standard_normal((H, self.O)) / np.sqrt(H),
        }
        inputs = {
            "X": self.x_scale * rng.standard_normal((self.T, self.B, self.D)),
            "Y": rng.standard_normal((self.T, self.B, self.O)),
        }
        return params, inputs

    def bias(self, rng):
        return self.bias_scale * rng.standard_normal(self.gates * self.H)

    def readout(self, xp, p, h, y):
        """½ (1/B) Σ ‖h W_y − y‖², the per-step loss."""
        d = h @ p["W_y"] - y
        return xp.sum(d * d) / (2 * self.B)

    def unroll(self, xp, p, x, cell, init):
        """Run ``cell`` over the sequence and apply the chosen loss to its h_t."""
        last = self.objective == "last"

        def step(state, xy):
            x_t, y_t = xy
            state, h = cell(state, x_t)
            return state, (None if last else self.readout(xp, p, h, y_t))

        state, losses = xp.scan(step, init, (x["X"], x["Y"]))
        if last:
            h_T = state[0] if isinstance(state, tuple) else state
            return self.readout(xp, p, h_T, x["Y"][self.T - 1, ...])
        return xp.sum(losses)


@register
class Elman(Unroll):
    """Elman RNN.

    h_0 = 0;  a_t = x_t W_x + h_{t−1} W_h + b;  h_t = φ(a_t),  φ = tanh (or sigmoid, option act).
    objective "last": L = ½ (1/B) ‖h_T W_y − y_T‖²;   "sum": L = Σ_t ½ (1/B) ‖h_t W_y − y_t‖².
    σ_max(W_h) = sigma exactly. Taps: h (dL/dh_t, every step).
    Pascanu, Mikolov & Bengio (2013): ‖dL/dh_t‖ ≤ (σ_max·γ)^(T−t) ‖dL/dh_T‖ for the "last"
    objective, with γ = max φ' = 1 (tanh), 1/4 (sigmoid).
    Memory: each step keeps 5 values of B × H (x_t W_x, h W_h, their sum, + b, φ).
    """

    name, family = "elman", "elman"
    manual = manual_backprop.ELMAN
    options = {**Unroll.options, "act": "tanh"}
    allowed = {**Unroll.allowed, "act": one_of("tanh", "sigmoid")}

    def loss(self, xp, p, x):
        phi = getattr(xp, self.act)

        def cell(h, x_t):
            h = xp.tap("h", phi(x_t @ p["W_x"] + h @ p["W_h"] + p["b"]))
            return h, h

        return self.unroll(xp, p, x, cell, x["h0"])

    def setup(self, rng):
        params, inputs = super().setup(rng)
        inputs["h0"] = np.zeros((self.B, self.H))
        return params, inputs


@register
class ElmanVanishing(Elman):
    """Elman RNN, vanishing configuration: σ_max(W_h) = 0.9, tanh, loss on the last step,
    T = 60: σ_max·γ = 0.9 < 1, so ‖dL/dh_t‖ ≤ 0.9^(T−t) ‖dL/dh_T‖."""

    name = "elman_vanishing"
    options = {**Elman.options, "T": 60, "sigma": 0.9}


@register
class ElmanExploding(Elman):
    """Elman RNN, exploding configuration: every singular value of W_h is 1.3 (a scaled
    orthogonal matrix), inputs scaled to 1e-6 and biases 0 so h_t stays in tanh's linear
    regime (φ' ≈ 1): ‖dL/dh_t‖ grows ≈ 1.3 per step back from T."""

    name = "elman_exploding"
    options = {
        **Elman.options,
        "T": 40,
        "sigma": 1.3,
        "spectrum": "flat",
        "x_scale": 1e-6,
        "bias_scale": 0.0,
    }


@register
class ElmanSigmoid(Elman):
    """Elman RNN with sigmoid units: γ = max σ' = 1/4, so with σ_max = 2, σ_max·γ = 0.5."""

    name = "elman_sigmoid"
    options = {**Elman.options, "act": "sigmoid", "sigma": 2.0}


@register
class LSTM(Unroll):
    """LSTM (Hochreiter & Schmidhuber 1997, with a forget gate, Gers et al. 2000).

    [i, f, o, g] = x_t W_x + h_{t−1} W_h + b   (four H-wide blocks, W_h: H×4H);
    i, f, o = σ(·),  g = tanh(·);   c_t = f ⊙ c_{t−1} + i ⊙ g;   h_t = o ⊙ tanh(c_t);
    h_0 = c_0 = 0. Objectives as for the Elman RNN. The forget-gate bias starts at +1.
    σ_max(W_h) = sigma exactly. Taps: h (dL/dh_t) and c (dL/dc_t), every step.
    Memory: each step keeps 25 values of B × H: x_t W_x, h W_h, their sum and + b (4 × 4),
    the four gates' σ and tanh, f ⊙ c, i ⊙ g, c, tanh(c) and h.
    """

    name, family = "lstm", "lstm"
    manual = manual_backprop.LSTM
    gates, tapped, saved = 4, 2, 25

    def bias(self, rng):
        b = super().bias(rng)
        b[self.H : 2 * self.H] += 1.0
        return b

    def setup(self, rng):
        params, inputs = super().setup(rng)
        inputs["h0"] = np.zeros((self.B, self.H))
        inputs["c0"] = np.zeros((self.B, self.H))
        return params, inputs

    def loss(self, xp, p, x):
        H = self.H

        def cell(state, x_t):
            h, c = state
            a = x_t @ p["W_x"] + h @ p["W_h"] + p["b"]
            i, f = xp.sigmoid(a[:, :H]), xp.sigmoid(a[:, H : 2 * H])
            o, g = xp.sigmoid(a[:, 2 * H : 3 * H]), xp.tanh(a[:, 3 * H :])
            c = xp.tap("c", f * c + i * g)
            h = xp.tap("h", o * xp.tanh(c))
            return (h, c), h

        return self.unroll(xp, p, x, cell, (x["h0"], x["c0"]))


@register
class GRU(Unroll):
    """GRU (Cho et al. 2014).

    [z, r] = σ(x_t W_x[:, :2H] + h_{t−1} W_h[:, :2H] + b[:2H]);
    n = tanh(x_t W_x[:, 2H:] + (r ⊙ h_{t−1}) W_h[:, 2H:] + b[2H:]);
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1};   h_0 = 0.
    Objectives as for the Elman RNN. σ_max(W_h) = sigma exactly (W_h: H×3H). Taps: h.
    Memory: each step keeps 20 values of B × H: for [z, r] the two products, their sum,
    + b and σ (5 × 2); for n, r ⊙ h, its two products, their sum, + b and tanh (6); and
    1 − z, (1 − z) ⊙ n, z ⊙ h and h (4).
    """

    name, family = "gru", "gru"
    manual = manual_backprop.GRU
    gates, saved = 3, 20

    def setup(self, rng):
        params, inputs = super().setup(rng)
        inputs["h0"] = np.zeros((self.B, self.H))
        return params, inputs

    def loss(self, xp, p, x):
        H = self.H

        def cell(h, x_t):
            zr = xp.sigmoid(x_t @ p["W_x"][:, : 2 * H] + h @ p["W_h"][:, : 2 * H] + p["b"][: 2 * H])
            z, r = zr[:, :H], zr[:, H:]
            n = xp.tanh(
                x_t @ p["W_x"][:, 2 * H :] + (r * h) @ p["W_h"][:, 2 * H :] + p["b"][2 * H :]
            )
            h = xp.tap("h", (1 - z) * n + z * h)
            return h, h

        return self.unroll(xp, p, x, cell, x["h0"])
