"""Textbook backprop: backward passes derived by hand, no tape at all.

Each model has a forward function, which returns the loss and a *cache* (the values the
backward pass will need, and nothing else), and a backward function, which takes the
cache and returns the gradients. Every backward function states its formula.

Conventions: row vectors, a batch of rows (h: N×H or B×H), so a layer is z = h W + b.
``dX`` means dL/dX, an array of X's shape. A recurrent unroll keeps the states of every
step stacked along a leading axis: ``hs[t]`` is h_t for t = 0..T, hs[0] the initial state.
The arithmetic stays in the dtype of the arrays it is given (float64 or float32).

This module imports numpy and nothing else (and the standard library's type hints).
"""

from collections.abc import Callable
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
Cache = dict[str, Any]  # a stage's saved values, of as many kinds as the stage needs


# --- activations: forward, and backward from the forward's *output* -------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{−x}), written so that e^{...} never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def relu(x: np.ndarray) -> np.ndarray:
    """relu(x) = max(x, 0)."""
    return np.maximum(x, 0)


def tanh_backward(dh: np.ndarray, h: np.ndarray) -> np.ndarray:
    """h = tanh(z):  dz = dh ⊙ (1 − h²)."""
    return dh * (1 - h * h)


def sigmoid_backward(dh: np.ndarray, h: np.ndarray) -> np.ndarray:
    """h = σ(z):  dz = dh ⊙ h ⊙ (1 − h)."""
    return dh * h * (1 - h)


def relu_backward(dh: np.ndarray, h: np.ndarray) -> np.ndarray:
    """h = max(z, 0):  dz = dh ⊙ [h > 0]  (h > 0 exactly where z > 0; 0 at the kink)."""
    return dh * (h > 0)


# name -> (forward, backward(dh, h) -> dz)
Elementwise = Callable[[np.ndarray], np.ndarray]
ACTIVATIONS: dict[str, tuple[Elementwise, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "tanh": (np.tanh, tanh_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "relu": (relu, relu_backward),
}


# --- the linear layer --------------------------------------------------------------------


def linear_forward(h: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z = h W + b  (h: N×I, W: I×O, b: O, broadcast over the N rows)."""
    return h @ W + b


def linear_backward(
    dz: np.ndarray, h: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z = h W + b:  dW = hᵀ dz,  db = Σ_n dz_n,  dh = dz Wᵀ.  Returns (dh, dW, db)."""
    return dz @ W.T, h.T @ dz, dz.sum(axis=0)


# --- losses: forward gives L and a cache, backward gives dL/dz -------------------------------


def mse_forward(z: np.ndarray, Y: np.ndarray) -> tuple[float, Cache]:
    """L = (1/2N) Σ_n ‖z_n − Y_n‖² over the N rows. Cache: the residual z − Y."""
    residual = z - Y
    return np.sum(residual * residual) / (2 * len(z)), {"residual": residual}


def mse_backward(cache: Cache) -> np.ndarray:
    """L = (1/2N) Σ_n ‖z_n − Y_n‖²:  dz = (z − Y) / N."""
    residual = cache["residual"]
    return residual / len(residual)


def softmax_xent_forward(z: np.ndarray, y: np.ndarray) -> tuple[float, Cache]:
    """L = −(1/N) Σ_n log softmax(z_n)[y_n], y integer classes, with
    log softmax(z) = z − log Σ_j e^{z_j} evaluated after subtracting max z (no overflow).
    Cache: log softmax(z) and y."""
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -np.sum(log_p[np.arange(len(z)), y]) / len(z), {"log_p": log_p, "y": y}


def softmax_xent_backward(cache: Cache) -> np.ndarray:
    """L = −(1/N) Σ_n log softmax(z_n)[y_n]:  dz_n = (softmax(z_n) − onehot(y_n)) / N."""
    log_p, y = cache["log_p"], cache["y"]
    dz = np.exp(log_p)
    dz[np.arange(len(dz)), y] -= 1
    return dz / len(dz)


# name -> (forward, backward)
LOSSES = {"mse": (mse_forward, mse_backward), "xent": (softmax_xent_forward, softmax_xent_backward)}


# --- the multilayer perceptron -------------------------------------------------------------


def mlp_forward(
    params: Arrays, X: np.ndarray, target: np.ndarray, act: str = "tanh", objective: str = "mse"
) -> tuple[float, Cache]:
    """h_0 = X;  z_l = h_{l−1} W_l + b_l;  h_l = φ(z_l) for l < L, z_L linear;
    L = mse(z_L, Y) or softmax cross-entropy(z_L, y).  Parameters W1, b1, …, WL, bL.

    Cache: h_0..h_{L−1} (each layer's input; φ'(z_l) is read from h_l = φ(z_l)), the
    parameters, and the loss's own cache."""
    depth = sum(1 for k in params if k.startswith("W"))
    phi = ACTIVATIONS[act][0]
    hs, h = [], X
    for layer in range(1, depth + 1):
        hs.append(h)
        z = linear_forward(h, params[f"W{layer}"], params[f"b{layer}"])
        h = phi(z) if layer < depth else z
    loss, loss_cache = LOSSES[objective][0](h, target)
    return loss, {
        "hs": hs,
        "params": params,
        "act": act,
        "objective": objective,
        "loss": loss_cache,
    }


def mlp_backward(cache: Cache, input_grad: bool = True) -> tuple[Arrays, list[np.ndarray | None]]:
    """Layer by layer from the top, starting from dz_L given by the loss:

        dW_l = h_{l−1}ᵀ dz_l,   db_l = Σ_n dz_l,n,   dh_{l−1} = dz_l W_lᵀ,
        dz_{l−1} = φ'(z_{l−1}) ⊙ dh_{l−1}.

    Returns (grads by parameter name, [dL/dh_0, …, dL/dh_{L−1}]). dL/dh_0 = dL/dX is one
    more matrix product that no parameter needs: ``input_grad=False`` skips it (None)."""
    hs, params = cache["hs"], cache["params"]
    phi_backward = ACTIVATIONS[cache["act"]][1]
    dz = LOSSES[cache["objective"]][1](cache["loss"])
    grads: Arrays = {}
    dL_dh: list[np.ndarray | None] = [None] * len(hs)
    for layer in range(len(hs), 0, -1):
        h, W = hs[layer - 1], params[f"W{layer}"]
        if layer == 1 and not input_grad:
            grads["W1"], grads["b1"] = h.T @ dz, dz.sum(axis=0)
            break
        dh, grads[f"W{layer}"], grads[f"b{layer}"] = linear_backward(dz, h, W)
        dL_dh[layer - 1] = dh
        if layer > 1:
            dz = phi_backward(dh, h)  # h = h_{l−1} = φ(z_{l−1})
    return grads, dL_dh


# --- recurrent unrolls: what Elman, LSTM and GRU share ----------------------------------------
#
# Steps t = 1..T; arrays indexed from 0: hs[t] = h_t (hs[0] = h_0), X[t−1] = x_t, and the
# returned dL_dh[t−1] = dL/dh_t. BPTT walks t = T..1 keeping dh_next, the gradient that
# reaches h_t through step t+1; the TOTAL dL/dh_t is its own readout's gradient + dh_next.


def readout_forward(
    hs: np.ndarray, W_y: np.ndarray, Y: np.ndarray, objective: str
) -> tuple[float, Cache]:
    """Per-step loss ℓ_t = ½ (1/B) ‖h_t W_y − y_t‖²;  "last": L = ℓ_T,  "sum": L = Σ_t ℓ_t.
    Every read step in one batched product. Cache: which steps were read, the residuals."""
    T, B = len(hs) - 1, hs.shape[1]
    steps = slice(T - 1, T) if objective == "last" else slice(0, T)
    residual = hs[1:][steps] @ W_y - Y[steps]
    return np.sum(residual * residual) / (2 * B), {"steps": steps, "residual": residual}


def readout_backward(
    cache: Cache, hs: np.ndarray, W_y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """With r_t = h_t W_y − y_t:  dW_y = (1/B) Σ_t h_tᵀ r_t,  ∂ℓ_t/∂h_t = (1/B) r_t W_yᵀ.

    Returns dW_y and the *direct* gradient of L with respect to each h_t through its own
    readout (T×B×H, zero at unread steps): the array BPTT then adds dh_next to."""
    steps, residual = cache["steps"], cache["residual"]
    B = hs.shape[1]
    dW_y = sum_outer(hs[1:][steps], residual) / B
    direct = np.zeros_like(hs[1:])
    direct[steps] = residual @ W_y.T / B
    return dW_y, direct


def sum_outer(a: np.ndarray, da: np.ndarray) -> np.ndarray:
    """Σ_t a_tᵀ da_t over steps (and rows): the gradient of a weight W used at every step
    as a_t W. One matrix product over the T·B stacked rows, not a loop."""
    return a.reshape(-1, a.shape[-1]).T @ da.reshape(-1, da.shape[-1])


def blocks(a: np.ndarray, k: int) -> list[np.ndarray]:
    """The k equal blocks of the last axis, as views: [i, f, o, g] = blocks(gates, 4)."""
    width = a.shape[-1] // k
    return [a[..., j * width : (j + 1) * width] for j in range(k)]


def unroll_grads(X: np.ndarray, hs: np.ndarray, da: np.ndarray) -> Arrays:
    """a_t = x_t W_x + h_{t−1} W_h + b at every step, the same weights each time:
    dW_x = Σ_t x_tᵀ da_t,   dW_h = Σ_t h_{t−1}ᵀ da_t,   db = Σ_t Σ_n da_t,n."""
    return {"W_x": sum_outer(X, da), "W_h": sum_outer(hs[:-1], da), "b": da.sum(axis=(0, 1))}


# --- Elman RNN ---------------------------------------------------------------------------


def elman_forward(
    params: Arrays,
    X: np.ndarray,
    Y: np.ndarray,
    h0: np.ndarray,
    act: str = "tanh",
    objective: str = "last",
) -> tuple[float, Cache]:
    """a_t = x_t W_x + h_{t−1} W_h + b;  h_t = φ(a_t);  readout loss on h_t.
    The input part x_t W_x + b of every step is one product before the loop.
    Cache: hs (T+1 × B × H; φ'(a_t) is read from h_t) and X."""
    phi, W_h = ACTIVATIONS[act][0], params["W_h"]
    a_in = X @ params["W_x"] + params["b"]
    hs = np.empty((len(X) + 1, *h0.shape), dtype=a_in.dtype)
    hs[0] = h0
    for t in range(len(X)):
        hs[t + 1] = phi(a_in[t] + hs[t] @ W_h)
    loss, readout = readout_forward(hs, params["W_y"], Y, objective)
    return loss, {"hs": hs, "X": X, "params": params, "act": act, "readout": readout}


def elman_step_backward(
    dh: np.ndarray, h: np.ndarray, W_h: np.ndarray, act: str
) -> tuple[np.ndarray, np.ndarray]:
    """h_t = φ(a_t), a_t = x_t W_x + h_{t−1} W_h + b, with dh = the total dL/dh_t:
    da_t = φ'(a_t) ⊙ dh,   dh_{t−1} (through step t) = da_t W_hᵀ.  Returns (da_t, that)."""
    da = ACTIVATIONS[act][1](dh, h)
    return da, da @ W_h.T


def elman_backward(cache: Cache) -> tuple[Arrays, np.ndarray]:
    """BPTT: for t = T..1,  dL/dh_t = ∂ℓ_t/∂h_t + dh_next;  (da_t, dh_next) = step back.
    Then the weight gradients as sums over steps. Returns (grads, dL/dh: T × B × H)."""
    hs, X, params, act = cache["hs"], cache["X"], cache["params"], cache["act"]
    W_h = params["W_h"]
    dW_y, dL_dh = readout_backward(cache["readout"], hs, params["W_y"])
    da = np.empty_like(dL_dh)
    dh_next = np.zeros_like(hs[0])
    for t in range(len(X) - 1, -1, -1):
        dL_dh[t] += dh_next
        da[t], dh_next = elman_step_backward(dL_dh[t], hs[t + 1], W_h, act)
    return {**unroll_grads(X, hs, da), "W_y": dW_y}, dL_dh


# --- forward mode, by hand: tangents pushed from the parameters on ---------------------------
#
# Move every parameter along its tangent: θ(ε) = θ + ε·θ̇. Each value moves by its tangent
# ẋ = dx/dε, pushed forward step by step; the product rule gives (h W)˙ = ḣ W + h Ẇ, and an
# activation's tangent is its derivative times its input's, read from its output exactly
# as its backward does (the same function: both multiply by φ' elementwise). A scalar
# loss's tangent is its gradient dotted with its input's tangent.


def mlp_jvp(
    params: Arrays,
    tangents: Arrays,
    X: np.ndarray,
    target: np.ndarray,
    act: str = "tanh",
    objective: str = "mse",
) -> tuple[float, float, list[np.ndarray]]:
    """ż_l = ḣ_{l−1} W_l + h_{l−1} Ẇ_l + ḃ_l;  ḣ_l = φ'(z_l) ⊙ ż_l (l < L);  ḣ_0 = 0;
    L̇ = ⟨∂L/∂z_L, ż_L⟩. Returns (L, L̇, [ḣ_0 … ḣ_{L−1}]): the tangents of the layers'
    inputs, where the tape taps them."""
    depth = sum(1 for k in params if k.startswith("W"))
    phi, dphi = ACTIVATIONS[act]
    h, dh, dhs = X, np.zeros_like(X, dtype=params["W1"].dtype), []
    for layer in range(1, depth + 1):
        dhs.append(dh)
        W, b = params[f"W{layer}"], params[f"b{layer}"]
        z = linear_forward(h, W, b)
        dz = dh @ W + h @ tangents[f"W{layer}"] + tangents[f"b{layer}"]
        h = phi(z) if layer < depth else z
        dh = dphi(dz, h) if layer < depth else dz
    forward, backward = LOSSES[objective]
    loss, cache = forward(h, target)
    return loss, float(np.sum(backward(cache) * dh)), dhs


def elman_jvp(
    params: Arrays,
    tangents: Arrays,
    X: np.ndarray,
    Y: np.ndarray,
    h0: np.ndarray,
    act: str = "tanh",
    objective: str = "last",
) -> tuple[float, float, np.ndarray]:
    """ȧ_t = x_t Ẇ_x + ḃ + ḣ_{t−1} W_h + h_{t−1} Ẇ_h;  ḣ_t = φ'(a_t) ⊙ ȧ_t;  ḣ_0 = 0;
    L̇ = (1/B) Σ_t ⟨r_t, ḣ_t W_y + h_t Ẇ_y⟩ over the read steps (r_t = h_t W_y − y_t).
    Returns (L, L̇, ḣ: T × B × H)."""
    phi, dphi = ACTIVATIONS[act]
    W_h, dW_h = params["W_h"], tangents["W_h"]
    a_in = X @ params["W_x"] + params["b"]
    da_in = X @ tangents["W_x"] + tangents["b"]
    hs = np.empty((len(X) + 1, *h0.shape), dtype=a_in.dtype)
    dhs = np.zeros_like(hs)
    hs[0] = h0
    for t in range(len(X)):
        hs[t + 1] = phi(a_in[t] + hs[t] @ W_h)
        dhs[t + 1] = dphi(da_in[t] + dhs[t] @ W_h + hs[t] @ dW_h, hs[t + 1])
    loss, readout = readout_forward(hs, params["W_y"], Y, objective)
    steps, residual = readout["steps"], readout["residual"]
    moved = dhs[1:][steps] @ params["W_y"] + hs[1:][steps] @ tangents["W_y"]
    return loss, float(np.sum(residual * moved)) / hs.shape[1], dhs[1:]


# --- LSTM --------------------------------------------------------------------------------


def lstm_cell_backward(
    dh: np.ndarray,
    dc_next: np.ndarray,
    i: np.ndarray,
    f: np.ndarray,
    o: np.ndarray,
    g: np.ndarray,
    c_prev: np.ndarray,
    c: np.ndarray,
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """One LSTM cell, c = f ⊙ c_prev + i ⊙ g, h = o ⊙ tanh(c), with i, f, o = σ(a_i, a_f,
    a_o), g = tanh(a_g); dh = total dL/dh, dc_next = dL/dc through the next step's c:

        dc   = dc_next + dh ⊙ o ⊙ (1 − tanh² c)          (total: through h and the next c)
        da_i = dc ⊙ g ⊙ i(1 − i),        da_f = dc ⊙ c_prev ⊙ f(1 − f),
        da_o = dh ⊙ tanh c ⊙ o(1 − o),   da_g = dc ⊙ i ⊙ (1 − g²);
        and dc_prev (through this cell) = dc ⊙ f.

    Returns ((da_i, da_f, da_o, da_g), dc)."""
    tanh_c = np.tanh(c)
    dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
    da = (
        sigmoid_backward(dc * g, i),
        sigmoid_backward(dc * c_prev, f),
        sigmoid_backward(dh * tanh_c, o),
        tanh_backward(dc * i, g),
    )
    return da, dc


def lstm_forward(
    params: Arrays,
    X: np.ndarray,
    Y: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    objective: str = "last",
) -> tuple[float, Cache]:
    """[i, f, o, g] = x_t W_x + h_{t−1} W_h + b (H-wide blocks); i, f, o = σ, g = tanh;
    c_t = f ⊙ c_{t−1} + i ⊙ g;  h_t = o ⊙ tanh(c_t);  readout loss on h_t.
    Cache: the gate values (T × B × 4H), hs and cs (T+1 × B × H), X."""
    W_h, H = params["W_h"], h0.shape[-1]
    gates = X @ params["W_x"] + params["b"]  # input part; overwritten by the gate values
    hs = np.empty((len(X) + 1, *h0.shape), dtype=gates.dtype)
    cs = np.empty_like(hs)
    hs[0], cs[0] = h0, c0
    for t in range(len(X)):
        a = gates[t] + hs[t] @ W_h
        gates[t, :, : 3 * H] = sigmoid(a[:, : 3 * H])
        gates[t, :, 3 * H :] = np.tanh(a[:, 3 * H :])
        i, f, o, g = blocks(gates[t], 4)
        cs[t + 1] = f * cs[t] + i * g
        hs[t + 1] = o * np.tanh(cs[t + 1])
    loss, readout = readout_forward(hs, params["W_y"], Y, objective)
    return loss, {"gates": gates, "hs": hs, "cs": cs, "X": X, "params": params, "readout": readout}


def lstm_step_backward(
    dh: np.ndarray,
    dc_next: np.ndarray,
    gates: np.ndarray,
    c_prev: np.ndarray,
    c: np.ndarray,
    W_h: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step back (the cell's formulas in ``lstm_cell_backward``), then through
    a_t = x_t W_x + h_{t−1} W_h + b:  da_t = [da_i, da_f, da_o, da_g],
    dh_{t−1} (through step t) = da_t W_hᵀ,  dc_{t−1} (through step t) = dc_t ⊙ f.
    Returns (da_t, dh_{t−1}, dc_t total, dc_{t−1})."""
    i, f, o, g = blocks(gates, 4)
    da, dc = lstm_cell_backward(dh, dc_next, i, f, o, g, c_prev, c)
    da_t = np.concatenate(da, axis=-1)
    return da_t, da_t @ W_h.T, dc, dc * f


def lstm_backward(cache: Cache) -> tuple[Arrays, np.ndarray, np.ndarray]:
    """BPTT with two running gradients: for t = T..1, dL/dh_t = ∂ℓ_t/∂h_t + dh_next and
    dL/dc_t = dc_next + (through h_t), then one step back. Returns (grads, dL/dh, dL/dc),
    the last two T × B × H, each the total derivative at every step."""
    gates, hs, cs, X, params = (cache[k] for k in ("gates", "hs", "cs", "X", "params"))
    W_h = params["W_h"]
    dW_y, dL_dh = readout_backward(cache["readout"], hs, params["W_y"])
    dL_dc, da = np.empty_like(dL_dh), np.empty_like(gates)
    dh_next, dc_next = np.zeros_like(hs[0]), np.zeros_like(cs[0])
    for t in range(len(X) - 1, -1, -1):
        dL_dh[t] += dh_next
        da[t], dh_next, dL_dc[t], dc_next = lstm_step_backward(
            dL_dh[t], dc_next, gates[t], cs[t], cs[t + 1], W_h
        )
    return {**unroll_grads(X, hs, da), "W_y": dW_y}, dL_dh, dL_dc


# --- GRU ---------------------------------------------------------------------------------


def gru_forward(
    params: Arrays, X: np.ndarray, Y: np.ndarray, h0: np.ndarray, objective: str = "last"
) -> tuple[float, Cache]:
    """[z, r] = σ(x_t W_x[:, :2H] + h_{t−1} W_h[:, :2H] + b[:2H]);
    n = tanh(x_t W_x[:, 2H:] + (r ⊙ h_{t−1}) W_h[:, 2H:] + b[2H:]);
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1};  readout loss on h_t.
    Cache: the gate values [z, r, n] (T × B × 3H), hs (T+1 × B × H), X."""
    W_h, H = params["W_h"], h0.shape[-1]
    gates = X @ params["W_x"] + params["b"]  # input part; overwritten by [z, r, n]
    hs = np.empty((len(X) + 1, *h0.shape), dtype=gates.dtype)
    hs[0] = h0
    for t in range(len(X)):
        h = hs[t]
        zr = sigmoid(gates[t, :, : 2 * H] + h @ W_h[:, : 2 * H])
        z, r = zr[:, :H], zr[:, H:]
        n = np.tanh(gates[t, :, 2 * H :] + (r * h) @ W_h[:, 2 * H :])
        gates[t, :, : 2 * H], gates[t, :, 2 * H :] = zr, n
        hs[t + 1] = (1 - z) * n + z * h
    loss, readout = readout_forward(hs, params["W_y"], Y, objective)
    return loss, {"gates": gates, "hs": hs, "X": X, "params": params, "readout": readout}


def gru_step_backward(
    dh: np.ndarray, gates: np.ndarray, h_prev: np.ndarray, W_h: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """h = (1 − z) ⊙ n + z ⊙ h_prev, with dh = the total dL/dh_t:

        dn = dh ⊙ (1 − z),   dz = dh ⊙ (h_prev − n),   da_n = dn ⊙ (1 − n²),
        d(r ⊙ h_prev) = da_n W_h[:, 2H:]ᵀ,   dr = d(r ⊙ h_prev) ⊙ h_prev,
        da_z = dz ⊙ z(1 − z),   da_r = dr ⊙ r(1 − r),
        dh_prev = dh ⊙ z + d(r ⊙ h_prev) ⊙ r + [da_z, da_r] W_h[:, :2H]ᵀ.

    Returns (da_t = [da_z, da_r, da_n], dh_{t−1} through step t)."""
    z, r, n = blocks(gates, 3)
    H = z.shape[-1]
    da_n = tanh_backward(dh * (1 - z), n)
    d_rh = da_n @ W_h[:, 2 * H :].T
    da_zr = np.concatenate(
        [sigmoid_backward(dh * (h_prev - n), z), sigmoid_backward(d_rh * h_prev, r)], axis=-1
    )
    dh_prev = dh * z + d_rh * r + da_zr @ W_h[:, : 2 * H].T
    return np.concatenate([da_zr, da_n], axis=-1), dh_prev


def gru_backward(cache: Cache) -> tuple[Arrays, np.ndarray]:
    """BPTT as for the Elman RNN. The weight gradients: dW_x, db as there;
    dW_h[:, :2H] = Σ_t h_{t−1}ᵀ [da_z, da_r]_t,   dW_h[:, 2H:] = Σ_t (r_t ⊙ h_{t−1})ᵀ da_n,t.
    Returns (grads, dL/dh: T × B × H)."""
    gates, hs, X, params = (cache[k] for k in ("gates", "hs", "X", "params"))
    W_h, H = params["W_h"], hs.shape[-1]
    dW_y, dL_dh = readout_backward(cache["readout"], hs, params["W_y"])
    da = np.empty_like(gates)
    dh_next = np.zeros_like(hs[0])
    for t in range(len(X) - 1, -1, -1):
        dL_dh[t] += dh_next
        da[t], dh_next = gru_step_backward(dL_dh[t], gates[t], hs[t], W_h)
    grads = unroll_grads(X, hs, da)
    r_h = gates[..., H : 2 * H] * hs[:-1]
    grads["W_h"][:, 2 * H :] = sum_outer(r_h, da[..., 2 * H :])
    return {**grads, "W_y": dW_y}, dL_dh


# --- ADBench's LSTM: diagonal weights, stacked layers, its own normaliser -----------------------


def adbench_cell(
    x: np.ndarray, h: np.ndarray, c: np.ndarray, w: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[f, i, o, g] = [x, h, x, h] ⊙ w + β  (b-wide blocks; ADBench's order);
    f, i, o = σ, g = tanh;  c' = c ⊙ f + i ⊙ g;  h' = o ⊙ tanh(c').  Returns (gates, c', h')."""
    b = len(x)
    gates = np.concatenate([x, h, x, h]) * w + beta
    gates[: 3 * b] = sigmoid(gates[: 3 * b])
    gates[3 * b :] = np.tanh(gates[3 * b :])
    f, i, o, g = blocks(gates, 4)
    c = c * f + i * g
    return gates, c, o * np.tanh(c)


def adbench_cell_backward(
    gates: np.ndarray, c_prev: np.ndarray, c: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """One cell back: c = c_prev ⊙ f + i ⊙ g, h = o ⊙ tanh c (``adbench_cell``), then
    through a = [x, h_prev, x, h_prev] ⊙ w + β; dh = the total dL/dh, dc_next = dL/dc
    through the next step (``lstm_cell_backward``'s formulas in ADBench's gate order):

        dc      = dc_next + dh ⊙ o(1 − tanh² c)     (total: through h and the next c)
        da      = [dc, dc, dh, dc] ⊙ q,
        q       = [c_prev f(1−f), g i(1−i), tanh c ⊙ o(1−o), i(1−g²)]
        dx      = da_f ⊙ w_f + da_o ⊙ w_o = dc ⊙ q_f w_f + dh ⊙ q_o w_o
        dh_prev = da_i ⊙ w_i + da_g ⊙ w_g = dc ⊙ (q_i w_i + q_g w_g)
        dc_prev = dc ⊙ f

    Every factor after dh and dc is a value of the forward: with diagonal weights a step
    back is an elementwise linear map of (dh, dc_next). So this returns those factors, not
    gradients, for arrays with any leading axes (every step and layer in one call), and the
    backward loop is left with only the recurrence (at b = 14 each numpy call costs more
    than its arithmetic). Returns (q, (o(1 − tanh² c), q_f w_f, q_o w_o, q_i w_i + q_g w_g,
    f)), each b-wide but q."""
    f, i, o, g = blocks(gates, 4)
    tanh_c = np.tanh(c)
    q = np.concatenate(
        [c_prev * f * (1 - f), g * i * (1 - i), tanh_c * o * (1 - o), i * (1 - g * g)], axis=-1
    )
    qw_f, qw_i, qw_o, qw_g = blocks(q * w, 4)
    return q, (o * (1 - tanh_c * tanh_c), qw_f, qw_o, qw_i + qw_g, f)


def adbench_lstm_forward(
    main: np.ndarray, extra: np.ndarray, state: np.ndarray, sequence: np.ndarray
) -> tuple[float, Cache]:
    """For t = 0..c−2: x = s_t ⊙ e_0, through the layers k (weights w = main[2k],
    β = main[2k+1], state h = state[2k], c = state[2k+1] carried), x ← h of each layer;
    ŷ = x ⊙ e_1 + e_2;  ŷnorm = ŷ − log(2 + Σ_j exp ŷ_j);
    L = −(1/((c−1) b)) Σ_t Σ_j s_{t+1,j} ŷnorm_{t,j}.
    Cache: gates (T × l × 4b), hs and cs (T+1 × l × b) with T = c−1, and the
    normaliser's weights exp ŷ / (2 + Σ exp ŷ)."""
    T, layers, b = len(sequence) - 1, len(state) // 2, sequence.shape[1]
    dtype = np.result_type(main, extra, state, sequence)
    hs, cs = np.empty((T + 1, layers, b), dtype), np.empty((T + 1, layers, b), dtype)
    gates = np.empty((T, layers, 4 * b), dtype)
    hs[0], cs[0] = state[0::2], state[1::2]
    x0 = sequence[:-1] * extra[0]
    for t in range(T):
        x = x0[t]
        for k in range(layers):
            gates[t, k], cs[t + 1, k], hs[t + 1, k] = adbench_cell(
                x, hs[t, k], cs[t, k], main[2 * k], main[2 * k + 1]
            )
            x = hs[t + 1, k]
    y_hat = hs[1:, -1] * extra[1] + extra[2]
    exp_y = np.exp(y_hat)
    normaliser = 2 + exp_y.sum(axis=1, keepdims=True)
    loss = -np.sum(sequence[1:] * (y_hat - np.log(normaliser))) / sequence[1:].size
    return loss, {
        "gates": gates,
        "hs": hs,
        "cs": cs,
        "weights": exp_y / normaliser,
        "main": main,
        "extra": extra,
        "sequence": sequence,
    }


def adbench_lstm_backward(cache: Cache) -> tuple[Arrays, np.ndarray]:
    """dŷnorm_t = −s_{t+1} / ((c−1) b);
    dŷ_t = dŷnorm_t − (Σ_j dŷnorm_t,j) · exp ŷ_t / (2 + Σ_j exp ŷ_t,j);
    de_1 = Σ_t dŷ_t ⊙ h_t(top), de_2 = Σ_t dŷ_t; the top layer's h gets dŷ_t ⊙ e_1.
    BPTT over steps, and inside each step down the layers (each layer's dx is the dh
    from above of the layer below), with the coefficients of ``adbench_cell_backward``
    computed for all cells first; then da = [dc, dc, dh, dc] ⊙ q for all cells at once,
    de_0 = Σ_t dx_t(layer 0) ⊙ s_t,  dw_k = Σ_t da_t,k ⊙ [x, h_prev, x, h_prev],
    dβ_k = Σ_t da_t,k.
    Returns ({"main", "extra"}, dL/dh of the top layer: T × b, total at every step)."""
    gates, hs, cs, main, extra, seq = (
        cache[k] for k in ("gates", "hs", "cs", "main", "extra", "sequence")
    )
    T, layers = gates.shape[:2]
    dy_norm = -seq[1:] / seq[1:].size
    dy_hat = dy_norm - dy_norm.sum(axis=1, keepdims=True) * cache["weights"]
    q, (dc_dh, dx_dc, dx_dh, dh_prev_dc, f) = adbench_cell_backward(
        gates, cs[:-1], cs[1:], main[0::2]
    )
    dh_top = dy_hat * extra[1]  # into the top layer's h through the readout
    dhs, dcs, dx0 = np.empty_like(hs[1:]), np.empty_like(cs[1:]), np.empty_like(dy_hat)
    dh_next, dc_next = list(np.zeros_like(hs[0])), list(np.zeros_like(cs[0]))  # a row a layer
    for t in range(T - 1, -1, -1):
        dx = dh_top[t]
        for k in range(layers - 1, -1, -1):
            dhs[t, k] = dh = dx + dh_next[k]  # total dL/dh of layer k at step t
            dcs[t, k] = dc = dc_next[k] + dh * dc_dh[t, k]  # total dL/dc
            dx = dc * dx_dc[t, k] + dh * dx_dh[t, k]  # the dh from above of layer k − 1
            dh_next[k] = dc * dh_prev_dc[t, k]
            dc_next[k] = dc * f[t, k]
        dx0[t] = dx
    da = np.concatenate([dcs, dcs, dhs, dcs], axis=-1) * q
    d_main = np.empty_like(main)
    for k in range(layers):
        x = seq[:-1] * extra[0] if k == 0 else hs[1:, k - 1]
        d_main[2 * k] = np.sum(da[:, k] * np.concatenate([x, hs[:-1, k]] * 2, axis=1), axis=0)
        d_main[2 * k + 1] = da[:, k].sum(axis=0)
    d_extra = np.stack([(dx0 * seq[:-1]).sum(0), (dy_hat * hs[1:, -1]).sum(0), dy_hat.sum(0)])
    return {"main": d_main, "extra": d_extra}, dhs[:, -1].copy()
