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
