"""The zoo's forward-mode and second-order implementations (``harness.modes``), in the
model form: ``jvp(params, inputs, tangent, case)`` and ``hvp(params, inputs, vector,
case)``, hand-written, right and wrong.

Forward mode pushes a tangent from the parameters on (θ̇ = u): the product rule gives
(h W)˙ = ḣ W + h Ẇ, an activation multiplies by its derivative, φ'(z) ż. H·v is Pearlmutter's
R-operator (1994): the forward pass's tangents along v, then the backward pass
differentiated along v too — every term of backprop gets its product-rule partner.
"""

from __future__ import annotations

import numpy as np

import reference.manual


def _phi(z, act):
    return {"tanh": np.tanh, "sigmoid": reference.manual.sigmoid, "relu": reference.manual.relu}[
        act
    ](z)


class ForwardMLP:
    """J·u for the MLP case: ż_l = ḣ_{l−1} W_l + h_{l−1} Ẇ_l + ḃ_l, ḣ_l = φ'(z_l) ż_l,
    L̇ = ⟨∂L/∂z_L, ż_L⟩; taps h[l] (the layers' inputs) with their tangents."""

    def __call__(self, params, inputs, tangent, case):
        h, dh, taps = inputs["X"], np.zeros_like(inputs["X"]), {}
        for l in range(1, case.depth + 1):  # noqa: E741
            taps[f"h[{l - 1}]"] = dh
            z = h @ params[f"W{l}"] + params[f"b{l}"]
            dz = dh @ params[f"W{l}"] + h @ tangent[f"W{l}"] + tangent[f"b{l}"]
            if l < case.depth:
                h = _phi(z, case.act)
                dh = self.activation_tangent(dz, z, h, case.act)
            else:
                h, dh = z, dz
        target = inputs["Y"] if case.objective == "mse" else inputs["y"]
        forward, backward = reference.manual.LOSSES[case.objective]
        _, cache = forward(h, target)
        return {"loss": np.sum(backward(cache) * dh), "taps": taps}

    def activation_tangent(self, dz, z, h, act):
        """ḣ = φ'(z) ż, φ' read from the output h = φ(z)."""
        return reference.manual.ACTIVATIONS[act][1](dz, h)


class TanhJVPFromPreactivation(ForwardMLP):
    def activation_tangent(self, dz, z, h, act):
        return dz * (1 - z * z)  # BUG: tanh' = 1 − tanh(z)², not 1 − z²


class ForwardElman:
    """J·u for the Elman case: ȧ_t = x_t Ẇ_x + ḃ + ḣ_{t−1} W_h + h_{t−1} Ẇ_h,
    ḣ_t = φ'(a_t) ȧ_t, L̇ = (1/B) Σ_t ⟨r_t, ḣ_t W_y + h_t Ẇ_y⟩; tap h, T × B × H."""

    def __call__(self, params, inputs, tangent, case):
        X, h = inputs["X"], inputs["h0"]
        dh = np.zeros_like(h)
        hs, dhs = [], []
        for t in range(len(X)):
            a = X[t] @ params["W_x"] + h @ params["W_h"] + params["b"]
            da = (
                X[t] @ tangent["W_x"]
                + tangent["b"]
                + self.recurrent(dh, params)
                + h @ tangent["W_h"]
            )
            h = _phi(a, case.act)
            dh = reference.manual.ACTIVATIONS[case.act][1](da, h)
            hs.append(h)
            dhs.append(dh)
        steps = [len(X) - 1] if case.objective == "last" else range(len(X))
        dloss = sum(
            np.sum(
                (hs[t] @ params["W_y"] - inputs["Y"][t])
                * (dhs[t] @ params["W_y"] + hs[t] @ tangent["W_y"])
            )
            for t in steps
        )
        return {"loss": dloss / h.shape[0], "taps": {"h": np.stack(dhs)}}

    def recurrent(self, dh, params):
        """The tangent h_{t−1} passes on through the recurrence: ḣ_{t−1} W_h."""
        return dh @ params["W_h"]


class ElmanJVPMissingFanOut(ForwardElman):
    def recurrent(self, dh, params):
        # BUG: h_{t−1} fans out, to its readout and to step t; its tangent is carried on
        # only through the readout (ḣ_{t−1} W_h is dropped)
        return np.zeros_like(dh @ params["W_h"])


class HessianMLP:
    """H·v for the tanh MLP with the mse loss, by the R-operator: forward tangents
    ż_l, ḣ_l along v; backward δ_L = (z_L − Y)/N, Rδ_L = ż_L/N; for each layer
    R(dW_l) = ḣ_{l−1}ᵀ δ_l + h_{l−1}ᵀ Rδ_l, R(db_l) = Σ_n Rδ_l,
    R(dh_{l−1}) = Rδ_l W_lᵀ + δ_l V_lᵀ, and with δ_{l−1} = dh_{l−1} ⊙ (1 − h²):
    Rδ_{l−1} = R(dh_{l−1}) ⊙ (1 − h²) − 2 dh_{l−1} ⊙ h ⊙ ḣ (the curvature of tanh)."""

    def __call__(self, params, inputs, vector, case):
        hs, dhs = [inputs["X"]], [np.zeros_like(inputs["X"])]
        for l in range(1, case.depth + 1):  # noqa: E741
            z = hs[-1] @ params[f"W{l}"] + params[f"b{l}"]
            dz = dhs[-1] @ params[f"W{l}"] + hs[-1] @ vector[f"W{l}"] + vector[f"b{l}"]
            if l < case.depth:
                hs.append(np.tanh(z))
                dhs.append((1 - hs[-1] ** 2) * dz)
        N = len(z)
        delta, r_delta, out = (z - inputs["Y"]) / N, dz / N, {}
        for l in range(case.depth, 0, -1):  # noqa: E741
            h, dh = hs[l - 1], dhs[l - 1]
            out[f"W{l}"] = dh.T @ delta + h.T @ r_delta
            out[f"b{l}"] = r_delta.sum(axis=0)
            if l > 1:
                back = delta @ params[f"W{l}"].T
                r_back = r_delta @ params[f"W{l}"].T + delta @ vector[f"W{l}"].T
                delta = back * (1 - h**2)
                r_delta = r_back * (1 - h**2) + self.curvature(back, h, dh)
        return out

    def curvature(self, back, h, dh):
        """The product rule on (1 − h²): d/dε (1 − h²) = −2 h ḣ."""
        return -2 * back * h * dh


class GaussNewtonMLP(HessianMLP):
    def curvature(self, back, h, dh):
        return np.zeros_like(back)  # BUG: tanh's curvature dropped: not the Hessian's H·v


forward_mlp = ForwardMLP()
tanh_jvp_from_preactivation = TanhJVPFromPreactivation()
forward_elman = ForwardElman()
elman_jvp_missing_fan_out = ElmanJVPMissingFanOut()
hessian_mlp = HessianMLP()
gauss_newton_mlp = GaussNewtonMLP()
