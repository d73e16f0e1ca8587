"""Multilayer perceptrons: depth, width, activation, loss and initialisation configurable."""

from __future__ import annotations

import numpy as np

from harness.cases import manual_backprop
from harness.cases.base import Allowed, Case, CaseError, at_least, footprint_of, one_of, register

ACTIVATIONS = ("tanh", "sigmoid", "relu")
INITS = ("standard", "glorot")
# The MLP of about a million parameters (1,002,826) on which `gradparity bench` measures the
# cost of checking and `gradparity bench --peers` times each checker.
MILLION = {"depth": 4, "width": 576, "D": 576, "C": 10, "N": 64}


def init_weight(rng: np.random.Generator, fan_in: int, fan_out: int, init: str) -> np.ndarray:
    """ "standard": U(±1/√fan_in), torch nn.Linear's default (Var = 1/(3·fan_in));
    "glorot": Glorot & Bengio (2010)'s normalized init U(±√6/√(fan_in+fan_out))
    (Var = 2/(fan_in+fan_out))."""
    if init == "standard":
        bound = 1 / np.sqrt(fan_in)
    elif init == "glorot":
        bound = np.sqrt(6 / (fan_in + fan_out))
    else:
        raise CaseError(f"init must be one of {INITS}, not {init!r}")
    return rng.uniform(-bound, bound, (fan_in, fan_out))


@register
class MLP(Case):
    """A multilayer perceptron of L layers on a batch.

    h_0 = X (N×D);  for l = 1..L:  z_l = h_{l−1} W_l + b_l,   h_l = φ(z_l) for l < L;
    the output z_L is linear.  φ ∈ {tanh, sigmoid, relu}.
    objective "mse":  L = (1/2N) Σ_n ‖z_L,n − Y_n‖²   (Y: N×C targets);
    objective "xent": L = −(1/N) Σ_n log softmax(z_L,n)[y_n]   (y: integer classes).
    Widths: D → width (L−1 times) → C. Biases start at 0; weights by ``init``
    (standard U(±1/√fan_in), or Glorot's U(±√6/√(fan_in+fan_out))).
    Taps ``h[l]`` = h_l for l = 0..L−1 (the input of layer l+1), so dL/dh[l] is the
    gradient back-propagated to each layer. ``x_scale`` scales the inputs (small values
    keep tanh/sigmoid near their linear regime).
    """

    name, family = "mlp", "mlp"
    manual = manual_backprop.MLP
    options = {
        "depth": 4,
        "width": 16,
        "D": 8,
        "C": 4,
        "N": 16,
        "act": "tanh",
        "objective": "mse",
        "init": "standard",
        "x_scale": 1.0,
    }
    allowed = {
        **{k: at_least(1) for k in ("depth", "width", "D", "C", "N")},
        "act": one_of(*ACTIVATIONS), "objective": one_of("mse", "xent"),
        "init": one_of(*INITS), "x_scale": Allowed(),
    }  # fmt: skip

    @property
    def smooth(self) -> bool:  # type: ignore[override]
        return self.act != "relu"

    def footprint(self) -> int:
        """Counted from the options (``footprint_of``), with the widths n_0 = D,
        n_1 … n_(L−1) = width, n_L = C: the arrays are the weights and biases
        (Σ_l n_(l−1)·n_l + n_l) and the inputs X (N × D) and Y (N × C, or y: N); the
        tensors compared, a gradient per parameter and the taps h[l] (N × n_l, l < L);
        the graph, 3 values of N × n_l per layer (h W, + b, φ; at the output z, its
        difference from the targets and its square)."""
        n = [self.D] + [self.width] * (self.depth - 1) + [self.C]
        params = sum(a * b + b for a, b in zip(n, n[1:], strict=False))
        inputs = self.N * self.D + (self.N * self.C if self.objective == "mse" else self.N)
        taps = sum(self.N * w for w in n[:-1])
        return footprint_of(params + inputs, params + taps, 3 * self.N * sum(n[1:]), 3 * self.depth)

    def setup(self, rng):
        widths = [self.D] + [self.width] * (self.depth - 1) + [self.C]
        params = {}
        for l in range(1, self.depth + 1):  # noqa: E741
            params[f"W{l}"] = init_weight(rng, widths[l - 1], widths[l], self.init)
            params[f"b{l}"] = np.zeros(widths[l])
        inputs = {"X": self.x_scale * rng.standard_normal((self.N, self.D))}
        if self.objective == "mse":
            inputs["Y"] = rng.standard_normal((self.N, self.C))
        else:
            inputs["y"] = rng.integers(0, self.C, self.N)
        return params, inputs

    def loss(self, xp, p, x):
        phi = getattr(xp, self.act)
        h = x["X"]
        for l in range(1, self.depth + 1):  # noqa: E741
            h = xp.tap(f"h[{l - 1}]", h)
            z = h @ p[f"W{l}"] + p[f"b{l}"]
            h = phi(z) if l < self.depth else z
        if self.objective == "mse":
            d = h - x["Y"]
            return xp.sum(d * d) / (2 * self.N)
        return xp.softmax_cross_entropy(h, x["y"])


def _variant(name: str, doc: str, **defaults) -> type[Case]:
    """Register an MLP under another name with other defaults."""
    cls = type(name, (MLP,), {"name": name, "options": {**MLP.options, **defaults}})
    cls.__doc__ = (MLP.__doc__ or "") + "\n" + doc
    return register(cls)


_variant(
    "mlp_sigmoid_xent",
    "Variant: sigmoid units, softmax cross-entropy.",
    act="sigmoid",
    objective="xent",
)
_variant(
    "mlp_relu_xent", "Variant: relu units, softmax cross-entropy.", act="relu", objective="xent"
)
_variant(
    "mlp_deep_standard",
    "Variant for Glorot & Bengio's experiment: 8 layers of width 64, inputs scaled to 0.05\n"
    "(tanh's near-linear regime), the standard init: Var(dL/dh) shrinks ≈ 1/3 per layer.",
    depth=8,
    width=64,
    D=64,
    C=64,
    N=32,
    x_scale=0.05,
)
_variant(
    "mlp_deep_glorot",
    "Variant for Glorot & Bengio's experiment: as mlp_deep_standard, with Glorot's\n"
    "normalized init: Var(dL/dh) stays ≈ constant across layers.",
    depth=8,
    width=64,
    D=64,
    C=64,
    N=32,
    x_scale=0.05,
    init="glorot",
)
