"""The ADBench / GradBench LSTM objective, exactly as they define it, on their published input.

Source of the definition: microsoft/ADBench ``src/python/modules/PyTorch/lstm_objective.py``
(and GradBench ``evals/lstm``); input ``data/lstm/lstm_l2_c1024.txt`` (MIT licence), shipped
as package data in ``harness/cases/data/adbench/`` with the golden values ADBench's tests
expect, their attribution and licence (``LICENSE`` there).
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import numpy as np

from harness.cases import manual_backprop
from harness.cases.base import Case, CaseError, at_least, footprint_of, one_of, register


def data_file(name: str) -> Traversable:
    """One of the ADBench files shipped with the package (``importlib.resources``)."""
    return resources.files("harness.cases").joinpath("data", "adbench", name)


def golden() -> dict[str, Any]:
    """ADBench's expected objective, its tolerance and the 266-element gradient."""
    return json.loads(data_file("golden.json").read_text(encoding="utf-8"))


def read_lstm_input(path: Traversable) -> dict[str, np.ndarray]:
    """Parse ADBench's LSTM input: a header ``l c b``; 2l rows of main parameters (4b each);
    3 rows of extra parameters (b each); 2l rows of state (b each); c rows of sequence."""
    tokens = path.read_text(encoding="utf-8").split()
    layers, chars, bits = (int(t) for t in tokens[:3])
    values = np.array(tokens[3:], dtype=np.float64)
    sizes = [2 * layers * 4 * bits, 3 * bits, 2 * layers * bits, chars * bits]
    if values.size != sum(sizes):
        raise CaseError(
            f"{path}: expected {sum(sizes)} numbers after the header, got {values.size}"
        )
    main, extra, state, seq = np.split(values, np.cumsum(sizes)[:-1])
    return {
        "main": main.reshape(2 * layers, 4 * bits),
        "extra": extra.reshape(3, bits),
        "state": state.reshape(2 * layers, bits),
        "sequence": seq.reshape(chars, bits),
    }


@register
class ADBenchLSTM(Case):
    """ADBench's LSTM objective (l stacked layers, diagonal weights, b bits, c characters).

    Per layer k, with weight row w_k (4b) and bias row β_k (4b), elementwise:
      [f, i, o, g] = [x, h, x, h] ⊙ w_k + β_k        (four b-wide blocks)
      c ← c ⊙ σ(f) + σ(i) ⊙ tanh(g);   h ← σ(o) ⊙ tanh(c);   x ← h  (input of the next layer)
    Predict at step t from x_t: x = x_t ⊙ e_0, run the layers, ŷ = x ⊙ e_1 + e_2 (extra rows e).
    ŷnorm = ŷ − log(2 + Σ_j exp(ŷ_j))  — ADBench's code writes Python's ``sum(exp(ŷ), 2)``,
    whose start value 2 is part of the published objective.
    L = −(1/((c−1)·b)) Σ_{t=0}^{c−2} Σ_j s_{t+1,j} · ŷnorm_{t,j}, with x_0 = s_0, state carried.
    Parameters: main (2l×4b), extra (3×b). Inputs: state (2l×b), sequence (c×b).
    ``source="adbench"`` reads the published input l=2, c=1024, b=14 (its tests expect
    L = 0.66666518); ``source="random"`` draws one of size l, c, b from the seed.
    Taps: h (the top layer's hidden state, every step).
    """

    name, family = "adbench_lstm", "lstm"
    manual = manual_backprop.ADBENCH_LSTM
    options = {"source": "adbench", "l": 2, "c": 1024, "b": 14}
    allowed = {
        "source": one_of("adbench", "random"),
        "l": at_least(1),
        "c": at_least(2),
        "b": at_least(1),
    }

    def footprint(self) -> int:
        """Counted from the options (``footprint_of``): the arrays are main (2l × 4b),
        extra (3 × b), state (2l × b) and the sequence (c × b); the tensors compared, a
        gradient per parameter and the tap h ((c − 1) × b); the graph, per step and
        layer 21 values of b (the concatenation, × w and + w of 4b each, three σ, two tanh,
        c ⊙ σ(f), σ(i) ⊙ tanh(g), c, h), and per step 6 of the prediction (x ⊙ e_0,
        × e_1, + e_2, exp, ŷnorm, s ⊙ ŷnorm)."""
        l, c, b = self.l, self.c, self.b  # noqa: E741
        params = 2 * l * 4 * b + 3 * b
        return footprint_of(
            params + 2 * l * b + c * b,
            params + (c - 1) * b,
            (c - 1) * (21 * l + 6) * b,
            (c - 1) * (16 * l + 12),
        )

    def setup(self, rng):
        if self.source == "adbench":
            path = data_file("lstm_l2_c1024.txt")
            if not path.is_file():
                raise CaseError(
                    f"case {self.name!r}: ADBench's input is not at {path} (a "
                    "broken install?); use --set source=random"
                )
            data = read_lstm_input(path)
            if (self.l, self.c, self.b) != (2, 1024, 14):
                data = self._cut(data)
        elif self.source == "random":
            l, c, b = self.l, self.c, self.b  # noqa: E741
            data = {
                "main": rng.uniform(0, 1, (2 * l, 4 * b)),
                "extra": rng.uniform(0, 1, (3, b)),
                "state": rng.uniform(0, 1, (2 * l, b)),
                "sequence": rng.integers(0, 2, (c, b)).astype(np.float64),
            }
        else:  # pragma: no cover - `allowed` admits no other source
            raise CaseError(f"case {self.name!r}: source must be 'adbench' or 'random'")
        params = {"main": data["main"], "extra": data["extra"]}
        return params, {"state": data["state"], "sequence": data["sequence"]}

    def _cut(self, data):
        """A prefix of the published input: c ≤ 1024 characters (l and b must stay 2, 14)."""
        if (self.l, self.b) != (2, 14) or not 2 <= self.c <= 1024:
            raise CaseError(
                "source='adbench' has l=2, b=14 and at most c=1024; use source='random'"
            )
        return {**data, "sequence": data["sequence"][: self.c]}

    def loss(self, xp, p, x):
        w, e, b = p["main"], p["extra"], self.b
        layers = x["state"].shape[0] // 2
        init = tuple(x["state"][k, ...] for k in range(2 * layers))
        seq = x["sequence"]

        def step(state, xy):
            x_t, target = xy
            h_in = x_t * e[0, ...]
            new = []
            for k in range(layers):
                h, c = state[2 * k], state[2 * k + 1]
                gates = xp.concat([h_in, h, h_in, h]) * w[2 * k, ...] + w[2 * k + 1, ...]
                forget, ingate = xp.sigmoid(gates[:b]), xp.sigmoid(gates[b : 2 * b])
                outgate, change = xp.sigmoid(gates[2 * b : 3 * b]), xp.tanh(gates[3 * b :])
                c = c * forget + ingate * change
                h = outgate * xp.tanh(c)
                if k == layers - 1:
                    h = xp.tap("h", h)
                new += [h, c]
                h_in = h
            y_hat = h_in * e[1, ...] + e[2, ...]
            y_norm = y_hat - xp.log(2 + xp.sum(xp.exp(y_hat)))
            return tuple(new), xp.sum(target * y_norm)

        _, per_step = xp.scan(step, init, (seq[: self.c - 1, ...], seq[1 : self.c, ...]))
        return -xp.sum(per_step) / ((self.c - 1) * b)
