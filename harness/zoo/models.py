"""The zoo's model-form implementations: hand-written backprop for one case, right and wrong.

``MLPBackprop`` is a correct layer-by-layer backprop; each broken MLP below overrides
the one method where the bug people really write lives. The recurrent ones run the
forward passes of ``reference.manual`` and write their own BPTT loop, with one mistake
each. ``manual`` is the textbook backprop of ``reference/manual.py`` itself.
"""

from __future__ import annotations

import numpy as np

import reference.manual
from harness.backends.hand_derived import runner_for


def manual(params, inputs, case):
    """The textbook backprop (reference/manual.py) as a model plug-in."""
    loss, grads, taps, _ = runner_for(case)(case, params, inputs)
    return {"grads": grads, "loss": loss, "taps": taps}


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


class MLPBackprop:
    """A multilayer perceptron's backprop, written out: z_l = h_{l−1} W_l + b_l,
    h_l = φ(z_l), the pre-activations z_l cached in the forward pass."""

    def __call__(self, params, inputs, case):
        cache = self.forward(params, inputs, case)
        grads, taps = self.backward(params, cache, case)
        return {"grads": grads, "loss": cache["loss"], "taps": taps}

    def activation(self, z, act):
        return {"tanh": np.tanh, "sigmoid": _sigmoid, "relu": lambda a: np.maximum(a, 0)}[act](z)

    def forward(self, params, inputs, case):
        hs, zs, h = [], [], inputs["X"]
        for l in range(1, case.depth + 1):  # noqa: E741
            hs.append(h)
            z = h @ params[f"W{l}"] + params[f"b{l}"]
            zs.append(z)
            h = self.activation(z, case.act) if l < case.depth else z
        loss, dz = self.loss(h, inputs, case)
        return {"hs": hs, "zs": zs, "loss": loss, "dz": dz}

    def loss(self, z, inputs, case):
        """(L, dL/dz) for the output z."""
        N = len(z)
        if case.objective == "mse":
            r = z - inputs["Y"]
            return np.sum(r * r) / (2 * N), r / N
        shifted = z - z.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        y = inputs["y"]
        loss = -np.sum(np.log(p[np.arange(N), y])) / N
        p[np.arange(N), y] -= 1
        return loss, self.xent_scale(p, N)

    def xent_scale(self, d, N):
        return d / N

    def activation_backward(self, dh, z, act):
        """dL/dz from dL/dh, with φ' evaluated at the cached pre-activation z."""
        if act == "tanh":
            return dh * (1 - np.tanh(z) ** 2)
        if act == "sigmoid":
            s = _sigmoid(z)
            return dh * s * (1 - s)
        return dh * (z > 0)

    def weight_grad(self, h, dz):
        return h.T @ dz

    def bias_grad(self, dz):
        return dz.sum(axis=0)

    def backward(self, params, cache, case):
        grads, taps, dz = {}, {}, cache["dz"]
        for l in range(case.depth, 0, -1):  # noqa: E741
            grads[f"W{l}"] = self.weight_grad(cache["hs"][l - 1], dz)
            grads[f"b{l}"] = self.bias_grad(dz)
            dh = dz @ params[f"W{l}"].T
            taps[f"h[{l - 1}]"] = dh
            if l > 1:
                dz = self.activation_backward(dh, self.cached_z(cache, l - 1), case.act)
        return grads, taps

    def cached_z(self, cache, layer):
        return cache["zs"][layer - 1]


class BiasMean(MLPBackprop):
    def bias_grad(self, dz):
        return dz.mean(axis=0)  # BUG: the bias is added to every row: its gradient is the sum


class BiasNotSummed(MLPBackprop):
    def bias_grad(self, dz):
        return dz  # BUG: one gradient per row, never summed over the batch


class WeightTransposed(MLPBackprop):
    def weight_grad(self, h, dz):
        return dz.T @ h  # BUG: dW = hᵀ dz, not dzᵀ h (the transpose, O×I)


class SigmoidFromPreactivation(MLPBackprop):
    def activation_backward(self, dh, z, act):
        return dh * z * (1 - z)  # BUG: σ'(z) = σ(z)(1 − σ(z)), not z(1 − z)


class XentMissingMean(MLPBackprop):
    def xent_scale(self, d, N):
        return d  # BUG: the loss is a mean over the batch: dL/dz carries 1/N


class CachedOverwritten(MLPBackprop):
    """The forward computes tanh in place, over the pre-activation it cached."""

    def activation(self, z, act):
        return np.tanh(z, out=z)  # BUG: z is cached for the backward, and now holds tanh(z)


class ReluMaskWrongLayer(MLPBackprop):
    def cached_z(self, cache, layer):
        return cache["zs"][-layer - 1]  # BUG: counts from the wrong end (zs[layer − 1] is right)


class GradsNotReset(MLPBackprop):
    """Gradient buffers kept between calls and added into, never zeroed."""

    def __init__(self):
        self.buffers: dict[str, np.ndarray] = {}

    def backward(self, params, cache, case):
        grads, taps = super().backward(params, cache, case)
        for name, g in grads.items():
            if name in self.buffers:
                self.buffers[name] += g  # BUG: the buffers are never reset between calls
            else:
                self.buffers[name] = g.copy()
        return dict(self.buffers), taps


class WrongNames(MLPBackprop):
    def __call__(self, params, inputs, case):
        out = super().__call__(params, inputs, case)
        out["grads"] = {f"d{k}": g for k, g in out["grads"].items()}  # BUG: dW1, not W1
        return out


class DropoutLeftOn(MLPBackprop):
    """Dropout (p = 0.2) on the hidden layers, left on in the gradient check."""

    def activation(self, z, act):
        mask = np.random.default_rng().random(z.shape) > 0.2  # BUG: unseeded, and on
        self.mask = mask
        return super().activation(z, act) * mask / 0.8


class MutatesInputs(MLPBackprop):
    def forward(self, params, inputs, case):
        X = inputs["X"]
        X -= X.mean(axis=0)  # BUG: "centre the inputs", in place: the caller's X changes
        return super().forward(params, inputs, case)


# --- recurrent: BPTT with one mistake each ------------------------------------------------


def _elman(params, inputs, case, *, carry=True, keep=None, shift=0):
    loss, cache = reference.manual.elman_forward(
        params, inputs["X"], inputs["Y"], inputs["h0"], case.act, case.objective
    )
    hs, X, W_h = cache["hs"], inputs["X"], params["W_h"]
    dW_y, dL_dh = reference.manual.readout_backward(cache["readout"], hs, params["W_y"])
    da = np.zeros_like(dL_dh)
    dh_next = np.zeros_like(hs[0])
    T = len(X)
    for t in range(T - 1, -1, -1):
        if keep is not None and t < T - keep:
            break
        if carry:
            dL_dh[t] += dh_next
        da[t], dh_next = reference.manual.elman_step_backward(dL_dh[t], hs[t + 1], W_h, case.act)
    if keep is not None:
        dL_dh[: T - keep] = 0
    grads = reference.manual.unroll_grads(X, hs, da)
    grads["W_h"] = reference.manual.sum_outer(hs[shift : T + shift], da)
    return {"grads": {**grads, "W_y": dW_y}, "loss": loss, "taps": {"h": dL_dh}}


def elman_missing_dh_next(params, inputs, case):
    """BUG: dL/dh_t gets its own readout's gradient only, not dh_next from step t+1."""
    return _elman(params, inputs, case, carry=False)


def elman_truncated(params, inputs, case):
    """BUG: BPTT stops 3 steps back from the end (a truncation nobody asked for)."""
    return _elman(params, inputs, case, keep=3)


def elman_off_by_one(params, inputs, case):
    """BUG: dW_h = Σ_t h_tᵀ da_t, with h_t where h_{t−1} belongs (hs shifted by one)."""
    return _elman(params, inputs, case, shift=1)


def lstm_missing_cell_path(params, inputs, case):
    """BUG: dc_{t−1} = dc_t ⊙ f is dropped: the cell state's gradient reaches back only
    through h, so the LSTM's long path is cut."""
    loss, cache = reference.manual.lstm_forward(
        params, inputs["X"], inputs["Y"], inputs["h0"], inputs["c0"], case.objective
    )
    gates, hs, cs, X, W_h = cache["gates"], cache["hs"], cache["cs"], inputs["X"], params["W_h"]
    dW_y, dL_dh = reference.manual.readout_backward(cache["readout"], hs, params["W_y"])
    dL_dc, da = np.empty_like(dL_dh), np.empty_like(gates)
    dh_next = np.zeros_like(hs[0])
    for t in range(len(X) - 1, -1, -1):
        dL_dh[t] += dh_next
        da[t], dh_next, dL_dc[t], _ = reference.manual.lstm_step_backward(
            dL_dh[t],
            np.zeros_like(cs[0]),
            gates[t],
            cs[t],
            cs[t + 1],
            W_h,  # BUG: dc_next = 0
        )
    grads = {**reference.manual.unroll_grads(X, hs, da), "W_y": dW_y}
    return {"grads": grads, "loss": loss, "taps": {"h": dL_dh, "c": dL_dc}}


def gru_update_sign_swapped(params, inputs, case):
    """BUG: h = (1 − z) n + z h_prev, so dz = dh ⊙ (h_prev − n); written (n − h_prev)."""
    loss, cache = reference.manual.gru_forward(
        params, inputs["X"], inputs["Y"], inputs["h0"], case.objective
    )
    gates, hs, X, W_h = cache["gates"], cache["hs"], inputs["X"], params["W_h"]
    H = hs.shape[-1]
    dW_y, dL_dh = reference.manual.readout_backward(cache["readout"], hs, params["W_y"])
    da, dh_next = np.empty_like(gates), np.zeros_like(hs[0])
    for t in range(len(X) - 1, -1, -1):
        dL_dh[t] += dh_next
        z, r, n = reference.manual.blocks(gates[t], 3)
        h_prev, dh = hs[t], dL_dh[t]
        da_n = dh * (1 - z) * (1 - n * n)
        d_rh = da_n @ W_h[:, 2 * H :].T
        da_z = dh * (n - h_prev) * z * (1 - z)  # BUG: the sign of the update gate's gradient
        da_r = d_rh * h_prev * r * (1 - r)
        da_zr = np.concatenate([da_z, da_r], axis=-1)
        dh_next = dh * z + d_rh * r + da_zr @ W_h[:, : 2 * H].T
        da[t] = np.concatenate([da_zr, da_n], axis=-1)
    grads = reference.manual.unroll_grads(X, hs, da)
    grads["W_h"][:, 2 * H :] = reference.manual.sum_outer(
        gates[..., H : 2 * H] * hs[:-1], da[..., 2 * H :]
    )
    return {"grads": {**grads, "W_y": dW_y}, "loss": loss, "taps": {"h": dL_dh}}


mlp = MLPBackprop()
bias_mean = BiasMean()
bias_not_summed = BiasNotSummed()
weight_transposed = WeightTransposed()
sigmoid_from_preactivation = SigmoidFromPreactivation()
xent_missing_mean = XentMissingMean()
cached_overwritten = CachedOverwritten()
relu_mask_wrong_layer = ReluMaskWrongLayer()
grads_not_reset = GradsNotReset()
wrong_names = WrongNames()
dropout_left_on = DropoutLeftOn()
mutates_inputs = MutatesInputs()
