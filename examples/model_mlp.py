"""A model plug-in: the gradient of the case ``mlp``, derived by hand.

    gradparity validate examples/model_mlp.py:grads --as model --case mlp

The case (``gradparity describe mlp``): h_0 = X; z_l = h_{l−1} W_l + b_l; h_l = tanh(z_l)
for l < L, z_L linear; L = (1/2N) Σ_n ‖z_L,n − Y_n‖². The function gets the parameters
and inputs as numpy arrays and returns dL/dθ for every parameter, the loss, and — so
that a wrong gradient can be traced to its layer — dL/dh[l] for the taps h[0..L−1].
"""

import numpy as np


def grads(params, inputs):
    X, Y = inputs["X"], inputs["Y"]
    depth = len(params) // 2
    hs, h = [], X
    for layer in range(1, depth + 1):  # forward, keeping each layer's input
        hs.append(h)
        z = h @ params[f"W{layer}"] + params[f"b{layer}"]
        h = np.tanh(z) if layer < depth else z
    N = len(X)
    loss = np.sum((h - Y) ** 2) / (2 * N)
    dz = (h - Y) / N  # dL/dz_L
    out, taps = {}, {}
    for layer in range(depth, 0, -1):  # backward, layer by layer
        h_in = hs[layer - 1]
        out[f"W{layer}"] = h_in.T @ dz  # z = h W + b: dW = hᵀ dz
        out[f"b{layer}"] = dz.sum(axis=0)  # b was added to every row: sum over the batch
        dh = dz @ params[f"W{layer}"].T  # dL/dh_{l−1}
        taps[f"h[{layer - 1}]"] = dh
        dz = dh * (1 - h_in**2)  # h_in = tanh(z_{l−1}): tanh' = 1 − tanh²
    return {"grads": out, "loss": loss, "taps": taps}


def jvp(params, inputs, tangent):
    """Forward mode: the tangent along θ̇ = tangent, pushed from the parameters on.
    ż_l = ḣ_{l−1} W_l + h_{l−1} Ẇ_l + ḃ_l; ḣ_l = (1 − h_l²) ż_l; L̇ = ⟨(z_L − Y)/N, ż_L⟩.

        gradparity validate examples/model_mlp.py:jvp --case mlp --mode fwd
    """
    X, Y = inputs["X"], inputs["Y"]
    depth = len(params) // 2
    h, dh, taps = X, np.zeros_like(X), {}
    for layer in range(1, depth + 1):
        taps[f"h[{layer - 1}]"] = dh  # the tangent of each layer's input
        z = h @ params[f"W{layer}"] + params[f"b{layer}"]
        dz = dh @ params[f"W{layer}"] + h @ tangent[f"W{layer}"] + tangent[f"b{layer}"]
        h, dh = (np.tanh(z), None) if layer < depth else (z, dz)
        if layer < depth:
            dh = (1 - h**2) * dz
    return {"loss": np.sum((h - Y) * dh) / len(X), "taps": taps}


def hvp(params, inputs, vector):
    """H·v by Pearlmutter's R-operator: the forward tangents along v, then the backward
    pass with every product differentiated along v too:
    R(dW_l) = ḣ_{l−1}ᵀ δ_l + h_{l−1}ᵀ Rδ_l,  R(db_l) = Σ_n Rδ_l,
    Rδ_{l−1} = (Rδ_l W_lᵀ + δ_l V_lᵀ) ⊙ (1 − h²) − 2 (δ_l W_lᵀ) ⊙ h ⊙ ḣ.

        gradparity validate examples/model_mlp.py:hvp --case mlp --mode hvp
    """
    X, Y = inputs["X"], inputs["Y"]
    depth = len(params) // 2
    hs, dhs = [X], [np.zeros_like(X)]
    for layer in range(1, depth + 1):
        z = hs[-1] @ params[f"W{layer}"] + params[f"b{layer}"]
        dz = dhs[-1] @ params[f"W{layer}"] + hs[-1] @ vector[f"W{layer}"] + vector[f"b{layer}"]
        if layer < depth:
            hs.append(np.tanh(z))
            dhs.append((1 - hs[-1] ** 2) * dz)
    delta, r_delta, out = (z - Y) / len(X), dz / len(X), {}
    for layer in range(depth, 0, -1):
        h, dh = hs[layer - 1], dhs[layer - 1]
        out[f"W{layer}"] = dh.T @ delta + h.T @ r_delta
        out[f"b{layer}"] = r_delta.sum(axis=0)
        back = delta @ params[f"W{layer}"].T
        r_back = r_delta @ params[f"W{layer}"].T + delta @ vector[f"W{layer}"].T
        delta, r_delta = back * (1 - h**2), r_back * (1 - h**2) - 2 * back * h * dh
    return out


class model:  # a namespace: every mode at once
    """gradparity validate examples/model_mlp.py:model --case mlp --mode rev,fwd,hvp"""

    grads, jvp, hvp = staticmethod(grads), staticmethod(jvp), staticmethod(hvp)
