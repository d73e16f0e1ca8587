"""The zoo's stage-form implementations: one local step's forward and hand-written
backward (``forward(*inputs) -> (out, cache)``, ``backward(d_out, cache) -> grads``),
right and wrong. Each broken one overrides the one line where its bug lives."""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


class Linear:
    stage = "linear"

    def forward(self, x, W, b):
        return x @ W + b, (x, W)

    def backward(self, dz, cache):
        x, W = cache
        return dz @ W.T, self.weight_grad(x, dz), self.bias_grad(dz)

    def weight_grad(self, x, dz):
        return x.T @ dz

    def bias_grad(self, dz):
        return dz.sum(axis=0)


class LinearWeightTransposed(Linear):
    def weight_grad(self, x, dz):
        return dz.T @ x  # BUG: dW = xᵀ dz (4×3); this is its transpose (3×4)


class LinearBiasNotSummed(Linear):
    def bias_grad(self, dz):
        return dz  # BUG: the bias was broadcast over the 5 rows: sum them


class Tanh:
    stage = "tanh"

    def forward(self, x):
        y = np.tanh(x)
        return y, y

    def backward(self, dy, y):
        return dy * (1 - y * y)


class Sigmoid:
    stage = "sigmoid"

    def forward(self, x):
        return sigmoid(x), x

    def backward(self, dy, x):
        s = sigmoid(x)
        return dy * s * (1 - s)


class SigmoidFromPreactivation(Sigmoid):
    def backward(self, dy, x):
        return dy * x * (1 - x)  # BUG: σ'(x) = σ(x)(1 − σ(x)); x is the pre-activation


class Relu:
    stage = "relu"

    def forward(self, x):
        return np.maximum(x, 0), x

    def backward(self, dy, x):
        return dy * (x > 0)


class ReluMaskAtZero(Relu):
    def backward(self, dy, x):
        return dy * (x >= 0)  # BUG: relu'(0) is 0 by convention (torch, jax): x > 0


class ReluInPlace(Relu):
    def backward(self, dy, x):
        dy[x <= 0] = 0  # BUG: writes into the caller's upstream gradient
        return dy


class SoftmaxXent:
    stage = "softmax_xent"

    def forward(self, z, y):
        shifted = z - z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -log_p[np.arange(len(z)), y].mean(), (log_p, y)

    def backward(self, d_loss, cache):
        log_p, y = cache
        dz = np.exp(log_p)
        dz[np.arange(len(y)), y] -= 1
        return d_loss * self.scale(dz, len(y)), None

    def scale(self, dz, N):
        return dz / N


class SoftmaxXentMissingMean(SoftmaxXent):
    def scale(self, dz, N):
        return dz  # BUG: the loss is a mean over the batch: divide by N


class ElmanStep:
    stage = "elman_step"

    def forward(self, x, h_prev, W_x, W_h, b):
        h = np.tanh(x @ W_x + h_prev @ W_h + b)
        return h, (x, h_prev, W_x, W_h, h)

    def backward(self, dh, cache):
        x, h_prev, W_x, W_h, h = cache
        da = dh * (1 - h * h)
        return da @ W_x.T, da @ W_h.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


class LSTMStep:
    stage = "lstm_step"

    def forward(self, x, h_prev, c_prev, W_x, W_h, b):
        H = h_prev.shape[-1]
        a = x @ W_x + h_prev @ W_h + b
        i, f, o = (sigmoid(a[:, k * H : (k + 1) * H]) for k in range(3))
        g = np.tanh(a[:, 3 * H :])
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        return (h, c), (x, h_prev, c_prev, W_x, W_h, i, f, o, g, c)

    def backward(self, d_out, cache):
        dh, dc_next = d_out
        x, h_prev, c_prev, W_x, W_h, i, f, o, g, c = cache
        tanh_c = np.tanh(c)
        dc = dc_next + dh * o * (1 - tanh_c**2)
        da = np.concatenate(
            [
                dc * g * i * (1 - i),
                self.forget(dc, c_prev, c) * f * (1 - f),
                dh * tanh_c * o * (1 - o),
                dc * i * (1 - g * g),
            ],
            axis=1,
        )
        return (da @ W_x.T, da @ W_h.T, dc * f, x.T @ da, h_prev.T @ da, da.sum(axis=0))

    def forget(self, dc, c_prev, c):
        return dc * c_prev


class LSTMStepForgetUsesNewC(LSTMStep):
    def forget(self, dc, c_prev, c):
        return dc * c  # BUG: c = f ⊙ c_prev + …: ∂c/∂f is c_prev, the cached *new* c is used


class GRUStep:
    stage = "gru_step"

    def forward(self, x, h_prev, W_x, W_h, b):
        H = h_prev.shape[-1]
        zr = sigmoid(x @ W_x[:, : 2 * H] + h_prev @ W_h[:, : 2 * H] + b[: 2 * H])
        z, r = zr[:, :H], zr[:, H:]
        n = np.tanh(x @ W_x[:, 2 * H :] + (r * h_prev) @ W_h[:, 2 * H :] + b[2 * H :])
        return (1 - z) * n + z * h_prev, (x, h_prev, W_x, W_h, z, r, n)

    def backward(self, dh, cache):
        x, h_prev, W_x, W_h, z, r, n = cache
        H = h_prev.shape[-1]
        da_n = dh * (1 - z) * (1 - n * n)
        d_rh = da_n @ W_h[:, 2 * H :].T
        da_z = self.update(dh, h_prev, n) * z * (1 - z)
        da_r = d_rh * h_prev * r * (1 - r)
        da = np.concatenate([da_z, da_r, da_n], axis=1)
        dW_h = np.concatenate([h_prev.T @ da[:, : 2 * H], (r * h_prev).T @ da_n], axis=1)
        dh_prev = dh * z + d_rh * r + da[:, : 2 * H] @ W_h[:, : 2 * H].T
        return da @ W_x.T, dh_prev, x.T @ da, dW_h, da.sum(axis=0)

    def update(self, dh, h_prev, n):
        return dh * (h_prev - n)


class GRUStepUpdateSign(GRUStep):
    def update(self, dh, h_prev, n):
        return dh * (n - h_prev)  # BUG: h = (1 − z) n + z h_prev: ∂h/∂z = h_prev − n


class Swish:
    """A custom stage: swish(x) = x σ(x), checked against finite differences only."""

    stage = "custom"
    names = ("x",)

    def inputs(self, rng):
        return (rng.standard_normal((3, 4)),)

    def forward(self, x):
        return x * sigmoid(x), x

    def backward(self, dy, x):
        s = sigmoid(x)
        return dy * self.derivative(x, s)

    def derivative(self, x, s):
        return s + x * s * (1 - s)


class SwishMissingProductRule(Swish):
    def derivative(self, x, s):
        return s  # BUG: d(x σ(x)) = σ + x σ'; the second term of the product rule is lost
