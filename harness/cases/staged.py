"""Staged functions: the chain rule card's examples, and the graph shapes backprop must get right."""

from __future__ import annotations

import numpy as np

from harness.cases.base import Case, at_least, footprint_of, register


@register
class AffineSquare(Case):
    """The card's first example, elementwise over a vector x of n values.

    u = 3x + 1,   y = u²,   L = Σ_i y_i.
    Closed form: dL/dx = dy/du · du/dx = 2u · 3;  dL/du = 2u.
    """

    name, family = "card_affine_square", "staged"
    options = {"n": 5}
    allowed = {"n": at_least(1)}

    def footprint(self) -> int:
        """Arrays x (n); tensors dL/dx and dL/du (2n); graph 3x, + 1, u² (3n)."""
        return footprint_of(self.n, 2 * self.n, 3 * self.n, 3)

    def setup(self, rng):
        return {"x": rng.standard_normal(self.n)}, {}

    def loss(self, xp, p, inputs):
        u = xp.tap("u", 3 * p["x"] + 1)
        return xp.sum(u**2)


@register
class SigmoidUnit(Case):
    """The card's second example: one sigmoid unit over a batch, squared error.

    a = X w + b   (X: N×D, w: D, b: scalar),   z = σ(a),   L = (1/2N) Σ_n (z_n − t_n)².
    Closed form: dL/dz = (z − t)/N,  dL/dw = Xᵀ (dL/dz · z(1 − z)),  dL/db = Σ_n dL/dz_n · z_n(1 − z_n).
    """

    name, family = "card_sigmoid_unit", "staged"
    options = {"N": 8, "D": 3}
    allowed = {"N": at_least(1), "D": at_least(1)}

    def footprint(self) -> int:
        """Arrays w, b, X, t (D + 1 + N·D + N); tensors the gradients and the taps a and z
        (D + 1 + 2N); graph X w, + b, σ, z − t and its square (5N)."""
        N, D = self.N, self.D
        return footprint_of(D + 1 + N * D + N, D + 1 + 2 * N, 5 * N, 5)

    def setup(self, rng):
        params = {"w": rng.standard_normal(self.D), "b": rng.standard_normal(())}
        inputs = {"X": rng.standard_normal((self.N, self.D)), "t": rng.uniform(0, 1, self.N)}
        return params, inputs

    def loss(self, xp, p, x):
        a = xp.tap("a", x["X"] @ p["w"] + p["b"])
        z = xp.tap("z", xp.sigmoid(a))
        return xp.sum((z - x["t"]) ** 2) / (2 * self.N)


@register
class DeepChain(Case):
    """A deep composition: a vector s passes through K stages, four kinds in turn.

    s_0 = x;  for k = 0..K−1 with scalars a_k, c_k:
      k mod 4 = 0:  s_{k+1} = tanh(a_k s_k + c_k)
      k mod 4 = 1:  s_{k+1} = s_k + a_k σ(s_k + c_k)
      k mod 4 = 2:  s_{k+1} = log(1 + exp(a_k s_k + c_k))           (softplus)
      k mod 4 = 3:  s_{k+1} = (a_k s_k + c_k) / (1 + s_k²)
    L = Σ_i s_K,i².  Every s_k is tapped as ``s[k]``; dL/ds_k is a product of k-many
    local derivatives, so an error in any one stage shows from that stage down.
    """

    name, family = "deep_chain", "staged"
    options = {"K": 24, "n": 6}
    allowed = {"K": at_least(1), "n": at_least(1)}

    def footprint(self) -> int:
        """Arrays x, a, c (n + 2K); tensors their gradients and the taps s[0] … s[K]
        (n + 2K + (K + 1)·n); graph 4 values of n per stage (the widest: s + c, σ, a ⊙ σ
        and the sum) and s ⊙ s (4K·n + n)."""
        K, n = self.K, self.n
        return footprint_of(n + 2 * K, n + 2 * K + (K + 1) * n, 4 * K * n + n, 4 * K + 1)

    def setup(self, rng):
        params = {
            "x": rng.standard_normal(self.n),
            "a": rng.uniform(0.8, 1.6, self.K),
            "c": rng.uniform(-0.3, 0.3, self.K),
        }
        return params, {}

    def loss(self, xp, p, inputs):
        s = xp.tap("s[0]", p["x"])
        for k in range(self.K):
            a, c = p["a"][k], p["c"][k]
            if k % 4 == 0:
                s = xp.tanh(a * s + c)
            elif k % 4 == 1:
                s = s + a * xp.sigmoid(s + c)
            elif k % 4 == 2:
                s = xp.log(1 + xp.exp(a * s + c))
            else:
                s = (a * s + c) / (1 + s * s)
            s = xp.tap(f"s[{k + 1}]", s)
        return xp.sum(s * s)


@register
class FanOutFanIn(Case):
    """One variable reaching the loss along several paths, which must be added.

    p1 = x ⊙ y,  p2 = tanh(x),  p3 = x³,  q = p1 ⊙ p2 + p3 + x,   L = Σ_i q_i · exp(x_i / 4).
    x reaches L along five paths (through p1, p2, p3, directly into q, and the
    exp(x/4) factor); dL/dx is the sum of all five contributions.
    """

    name, family = "fan_out_fan_in", "staged"
    options = {"n": 7}
    allowed = {"n": at_least(1)}

    def footprint(self) -> int:
        """Arrays x, y (2n); tensors their gradients and the taps p1, p2, p3, q (6n);
        graph p1, p2, p3, p1 ⊙ p2, + p3, q, x/4, exp and q ⊙ exp (9n)."""
        return footprint_of(2 * self.n, 6 * self.n, 9 * self.n, 9)

    def setup(self, rng):
        return {"x": rng.standard_normal(self.n), "y": rng.standard_normal(self.n)}, {}

    def loss(self, xp, p, inputs):
        x = p["x"]
        p1 = xp.tap("p1", x * p["y"])
        p2 = xp.tap("p2", xp.tanh(x))
        p3 = xp.tap("p3", x**3)
        q = xp.tap("q", p1 * p2 + p3 + x)
        return xp.sum(q * xp.exp(x / 4))


@register
class BiasBroadcast(Case):
    """A bias broadcast over a batch, and a per-row scale broadcast over columns.

    Y = tanh(X W + b) ⊙ s,   X: N×D,  W: D×H,  b: H (added to every row),  s: N×1,
    L = mean(Y²).  dL/db = Σ_n dL/d(XW + b)_n: broadcasting forward is summing backward.
    """

    name, family = "bias_broadcast", "staged"
    options = {"N": 6, "D": 4, "H": 3}
    allowed = {"N": at_least(1), "D": at_least(1), "H": at_least(1)}

    def footprint(self) -> int:
        """Arrays W, b, s, X (D·H + H + N + N·D); tensors the gradients and the tap a
        (D·H + H + N + N·H); graph X W, + b, tanh, ⊙ s and y ⊙ y (5 N·H)."""
        N, D, H = self.N, self.D, self.H
        return footprint_of(D * H + H + N + N * D, D * H + H + N + N * H, 5 * N * H, 5)

    def setup(self, rng):
        params = {
            "W": rng.standard_normal((self.D, self.H)) / np.sqrt(self.D),
            "b": rng.standard_normal(self.H),
            "s": rng.standard_normal((self.N, 1)),
        }
        return params, {"X": rng.standard_normal((self.N, self.D))}

    def loss(self, xp, p, x):
        a = xp.tap("a", x["X"] @ p["W"] + p["b"])
        y = xp.tanh(a) * p["s"]
        return xp.mean(y * y)


@register
class SoftmaxXent(Case):
    """Softmax cross-entropy over a batch: a linear classifier.

    Z = X W + b  (N×C),   L = −(1/N) Σ_n log softmax(Z_n)[y_n].
    dL/dZ_n = (softmax(Z_n) − onehot(y_n)) / N.
    """

    name, family = "softmax_xent", "staged"
    options = {"N": 8, "D": 5, "C": 4}
    allowed = {"N": at_least(1), "D": at_least(1), "C": at_least(1)}

    def footprint(self) -> int:
        """Arrays W, b, X, y (D·C + C + N·D + N); tensors the gradients and the tap Z
        (D·C + C + N·C); graph X W, + b, and the softmax's shifted logits, their exp and
        the probabilities (5 N·C)."""
        N, D, C = self.N, self.D, self.C
        return footprint_of(D * C + C + N * D + N, D * C + C + N * C, 5 * N * C, 5)

    def setup(self, rng):
        params = {"W": rng.standard_normal((self.D, self.C)), "b": rng.standard_normal(self.C)}
        inputs = {"X": rng.standard_normal((self.N, self.D)), "y": rng.integers(0, self.C, self.N)}
        return params, inputs

    def loss(self, xp, p, x):
        z = xp.tap("Z", x["X"] @ p["W"] + p["b"])
        return xp.softmax_cross_entropy(z, x["y"])


@register
class EveryPrimitive(Case):
    """One function through every primitive (N×D input, all shapes small).

    A = X W + b;   B = relu(A) − σ(A) ⊙ c;   E = exp(−B²) / (1 + B²);
    F = [tanh(B), log(1 + E)]  (concatenated along columns, N×2H);
    G = reshape(Fᵀ, (N, 2H));   S = G[:, ::2]  (the even columns, N×H);
    m = mean(S, axis=0)  (H);   r = sum(S, axis=1)  (N);
    L = Σ_j m_j² + mean(r)³ − logsumexp(r) + xent(G, y) + (−Σ_j b_j) / 2,
    xent(G, y) = −(1/N) Σ_n log softmax(G_n)[y_n].
    Uses add, sub, mul, div, neg, pow, matmul, exp, log, tanh, sigmoid, relu, sum, mean,
    reshape, transpose, slicing, concatenate, logsumexp and softmax cross-entropy.
    """

    name, family = "every_primitive", "staged"
    options = {"N": 4, "D": 3, "H": 5}
    allowed = {"N": at_least(1), "D": at_least(1), "H": at_least(1)}
    smooth = False  # relu

    def footprint(self) -> int:
        """Arrays W, b, c, X, y (D·H + 2H + N·D + N); tensors the gradients and the taps
        A, B (N·H each) and F (2 N·H); graph 26 values of N·H: A's 2, B's 4, E's 5 (B²,
        −B², exp, 1 + B², the quotient), F's 6 (tanh, 1 + E, log, the concatenation of 2),
        G and S (3), and the cross-entropy's 3 over G (6)."""
        N, D, H = self.N, self.D, self.H
        return footprint_of(D * H + 2 * H + N * D + N, D * H + 2 * H + 4 * N * H, 26 * N * H, 26)

    def setup(self, rng):
        params = {
            "W": rng.standard_normal((self.D, self.H)),
            "b": rng.standard_normal(self.H),
            "c": rng.uniform(0.5, 1.5, self.H),
        }
        inputs = {
            "X": rng.standard_normal((self.N, self.D)),
            "y": rng.integers(0, 2 * self.H, self.N),
        }
        return params, inputs

    def loss(self, xp, p, x):
        a = xp.tap("A", x["X"] @ p["W"] + p["b"])
        b = xp.tap("B", xp.relu(a) - xp.sigmoid(a) * p["c"])
        e = xp.exp(-(b**2)) / (1 + b**2)
        f = xp.tap("F", xp.concat([xp.tanh(b), xp.log(1 + e)], axis=1))
        g = xp.reshape(xp.permute_dims(f, (1, 0)), (self.N, 2 * self.H))
        s = g[:, ::2]
        m = xp.mean(s, axis=0)
        r = xp.sum(s, axis=1)
        return (
            xp.sum(m * m)
            + xp.mean(r) ** 3
            - xp.logsumexp(r)
            + xp.softmax_cross_entropy(g, x["y"])
            + -xp.sum(p["b"]) / 2
        )
