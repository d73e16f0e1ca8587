"""User cases that claim a catalog family without the options its theory reads: the
report has no theory row for them, and no traceback."""

from harness.cases import Case


class FakeMLP(Case):
    """Three tanh layers, claiming the family 'mlp' without the MLP's options."""

    name, family = "fake_mlp", "mlp"
    options = {"n": 3}

    def setup(self, rng):
        return {"W": rng.standard_normal((3, 3))}, {"x": rng.standard_normal(3)}

    def loss(self, xp, p, inputs):
        h = inputs["x"]
        for layer in range(3):
            h = xp.tap(f"h[{layer}]", xp.tanh(p["W"] @ h))
        return xp.sum(h**2)


class FakeElman(Case):
    """A scan claiming the family 'elman' with act tanh but no sigma."""

    name, family = "fake_elman", "elman"
    options = {"act": "tanh", "T": 4}

    def setup(self, rng):
        return {"W": rng.standard_normal((3, 3)) * 0.5}, {"x": rng.standard_normal((self.T, 3))}

    def loss(self, xp, p, inputs):
        def step(h, x_t):
            h = xp.tap("h", xp.tanh(h @ p["W"] + x_t))
            return h, h

        h, _ = xp.scan(step, inputs["x"][0, ...] * 0, inputs["x"])
        return xp.sum(h**2)


class StrSigma(FakeElman):
    """sigma is a word."""

    name = "str_sigma"
    options = {"act": "tanh", "T": 4, "sigma": "=cmd|' /C calc'!A0"}
