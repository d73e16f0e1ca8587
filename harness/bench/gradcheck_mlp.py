"""A plain ``torch.autograd.gradcheck`` script: what a user would write instead of
``gradparity validate examples/model_mlp.py:grads --case mlp`` (``harness.bench.cold``
times the two, cold, side by side).

The model is the case ``mlp`` at its defaults: D=8 → 16 → 16 → 16 → C=4, tanh between
layers, the output linear, L = (1/2N) Σ_n ‖z_L,n − Y_n‖² on N=16 rows, weights
U(±1/√fan_in), biases 0, float64. It imports numpy and torch only, as such a script
would: it is run by path, never imported, so nothing of gradparity loads with it.
"""

import numpy as np
import torch

rng = np.random.default_rng(0)
widths = [8, 16, 16, 16, 4]
params = []
for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
    bound = 1 / np.sqrt(fan_in)
    params.append(torch.tensor(rng.uniform(-bound, bound, (fan_in, fan_out)), requires_grad=True))
    params.append(torch.zeros(fan_out, dtype=torch.float64, requires_grad=True))
X = torch.tensor(rng.standard_normal((16, widths[0])))
Y = torch.tensor(rng.standard_normal((16, widths[-1])))


def loss(*tensors):
    h = X
    for layer in range(0, len(tensors), 2):
        h = h @ tensors[layer] + tensors[layer + 1]
        if layer + 2 < len(tensors):
            h = torch.tanh(h)
    return ((h - Y) ** 2).sum() / (2 * len(X))


print("gradcheck:", torch.autograd.gradcheck(loss, params))
