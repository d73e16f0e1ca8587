"""The bug zoo: implementations of backprop as people write them, broken and correct.

Each entry names a TARGET, its form, the small cases it runs on and, for a broken one,
the bug. ``gradparity selftest`` validates every entry (``harness.zoo.selftest``): a
broken one must be flagged, a correct one must pass, in float64 and in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.cases import CATALOG, Case


def small(name: str, **options) -> Callable[[], Case]:
    return lambda: CATALOG[name](**options)


MLP = small("mlp", depth=3, width=5, D=4, C=3, N=6)
MLP_SIGMOID = small("mlp_sigmoid_xent", depth=3, width=5, D=4, C=3, N=6)
MLP_RELU = small("mlp_relu_xent", depth=3, width=5, D=4, C=3, N=6, x_scale=2.0)
ELMAN = small("elman", T=6, H=4, D=3, B=2)
LSTM = small("lstm", T=6, H=3, D=2, B=2)
GRU = small("gru", T=6, H=3, D=2, B=2)
STAGED = {
    n: small(n)
    for n in (
        "card_affine_square",
        "card_sigmoid_unit",
        "fan_out_fan_in",
        "bias_broadcast",
        "softmax_xent",
        "every_primitive",
    )
}
STAGED["deep_chain"] = small("deep_chain", K=8, n=4)


@dataclass(frozen=True)
class Entry:
    name: str
    target: str
    form: str
    bug: str = ""  # "" for a correct implementation
    cases: tuple[Callable[[], Case], ...] = field(default=())
    modes: tuple[str, ...] = ("rev",)  # which derivatives it supplies (harness.modes)

    def __post_init__(self) -> None:
        from harness.validation.forms import FORMS

        if self.form not in FORMS:
            raise ValueError(
                f"zoo entry {self.name!r}: {self.form!r} is no form of "
                f"harness.validation.forms ({', '.join(FORMS)})"
            )

    @property
    def broken(self) -> bool:
        return bool(self.bug)

    def make_cases(self) -> list[Case]:
        return [make() for make in self.cases]


def _stage(name: str, cls: str, bug: str = "") -> Entry:
    return Entry(name, f"harness.zoo.stages:{cls}", "stage", bug)


def _model(name: str, attr: str, bug: str, *cases) -> Entry:
    return Entry(name, f"harness.zoo.models:{attr}", "model", bug, cases)


def _second(name: str, attr: str, mode: str, bug: str, *cases) -> Entry:
    """A forward-mode (``jvp``) or second-order (``hvp``) implementation."""
    return Entry(name, f"harness.zoo.second:{attr}", "model", bug, cases, (mode,))


def _framework(name: str, attr: str, form: str, bug: str = "") -> Entry:
    return Entry(name, f"harness.zoo.frameworks:{attr}", form, bug)


def _engine(name: str, cls: str, bug: str, *cases) -> Entry:
    module = "tiny_engine" if not bug else "engines"
    return Entry(name, f"harness.zoo.{module}:{cls}", "engine", bug, cases)


ZOO: list[Entry] = [
    # --- correct
    _model("manual backprop", "manual", "", MLP, ELMAN, LSTM, GRU),
    _model("MLP backprop", "mlp", "", MLP, MLP_SIGMOID, MLP_RELU),
    _engine(
        "tiny engine",
        "TinyEngine",
        "",
        STAGED["every_primitive"],
        STAGED["deep_chain"],
        STAGED["fan_out_fan_in"],
        LSTM,
    ),
    *(
        _stage(f"{s} stage", cls)
        for s, cls in [
            ("linear", "Linear"),
            ("tanh", "Tanh"),
            ("sigmoid", "Sigmoid"),
            ("relu", "Relu"),
            ("softmax_xent", "SoftmaxXent"),
            ("elman_step", "ElmanStep"),
            ("lstm_step", "LSTMStep"),
            ("gru_step", "GRUStep"),
            ("custom swish", "Swish"),
        ]
    ),
    _second("MLP forward mode", "forward_mlp", "fwd", "", MLP, MLP_SIGMOID, MLP_RELU),
    _second("Elman forward mode", "forward_elman", "fwd", "", ELMAN),
    _second("MLP Hessian-vector product", "hessian_mlp", "hvp", "", MLP),
    _framework("torch Function", "TorchTanh", "torch-function"),
    _framework("jax custom_vjp", "jax_tanh", "jax-custom-vjp"),
    # --- broken: stages
    _stage(
        "linear: dW transposed",
        "LinearWeightTransposed",
        "dW = dzᵀ x instead of xᵀ dz (non-square)",
    ),
    _stage("linear: bias not summed", "LinearBiasNotSummed", "db = dz, not summed over the batch"),
    _stage(
        "sigmoid from pre-activation",
        "SigmoidFromPreactivation",
        "σ' computed as x(1 − x) from the input",
    ),
    _stage("relu mask at 0", "ReluMaskAtZero", "mask x ≥ 0: relu'(0) = 1 instead of 0"),
    _stage("relu backward in place", "ReluInPlace", "writes into the upstream gradient d_out"),
    _stage(
        "softmax-xent missing 1/N", "SoftmaxXentMissingMean", "dz = softmax − onehot, without /N"
    ),
    _stage(
        "lstm step: forget gate uses new c",
        "LSTMStepForgetUsesNewC",
        "∂c/∂f taken as c instead of c_prev",
    ),
    _stage("gru step: update gate sign", "GRUStepUpdateSign", "dz = dh (n − h_prev): sign swapped"),
    _stage("custom: product rule", "SwishMissingProductRule", "d(x σ(x)) = σ(x) only"),
    # --- broken: custom VJPs inside a framework
    _framework(
        "torch Function: bias not summed",
        "TorchTanhBiasNotSummed",
        "torch-function",
        "db = dz, not summed over the batch (autograd would sum it silently)",
    ),
    _framework(
        "torch Function: derivative missing",
        "TorchTanhMissingDerivative",
        "torch-function",
        "dz = dy, tanh's 1 − y² left out",
    ),
    _framework(
        "torch Function: None for W",
        "TorchTanhNoWeightGradient",
        "torch-function",
        "no gradient for W, which needs one",
    ),
    _framework(
        "jax custom_vjp: dW transposed", "jax_tanh_transposed", "jax-custom-vjp", "dW = dzᵀ x"
    ),
    _framework("jax custom_vjp: sign of dx", "jax_tanh_sign", "jax-custom-vjp", "dx = −dz Wᵀ"),
    _framework(
        "jax custom_vjp: derivative from the input",
        "jax_tanh_from_input",
        "jax-custom-vjp",
        "1 − z² for 1 − tanh(z)²",
    ),
    # --- broken: models
    _model("MLP: bias mean", "bias_mean", "db = mean over the batch instead of the sum", MLP),
    _model("MLP: bias not summed", "bias_not_summed", "db = dz (N × O)", MLP),
    _model("MLP: dW transposed", "weight_transposed", "dW = dzᵀ h (O × I)", MLP),
    _model(
        "MLP: sigmoid from pre-activation",
        "sigmoid_from_preactivation",
        "σ'(z) = z(1 − z)",
        MLP_SIGMOID,
    ),
    _model("MLP: softmax-xent missing 1/N", "xent_missing_mean", "dz without /N", MLP_RELU),
    _model(
        "MLP: cached value overwritten",
        "cached_overwritten",
        "tanh(z, out=z) over the cached z",
        MLP,
    ),
    _model(
        "MLP: relu mask of the wrong layer",
        "relu_mask_wrong_layer",
        "the cache read from the wrong end",
        MLP_RELU,
    ),
    _model("MLP: gradients not reset", "grads_not_reset", "buffers added into across calls", MLP),
    _model("MLP: wrong names", "wrong_names", "returns dW1 … instead of W1 …", MLP),
    _model(
        "MLP: dropout left on", "dropout_left_on", "unseeded dropout in the gradient check", MLP
    ),
    _model("MLP: mutates its inputs", "mutates_inputs", "centres X in place", MLP),
    _model(
        "Elman: BPTT missing dh_next",
        "elman_missing_dh_next",
        "dL/dh_t lacks the next step's term",
        ELMAN,
    ),
    _model("Elman: BPTT truncated", "elman_truncated", "stops 3 steps back", ELMAN),
    _model("Elman: BPTT off by one", "elman_off_by_one", "dW_h uses h_t for h_{t−1}", ELMAN),
    _model(
        "LSTM: missing cell-state path",
        "lstm_missing_cell_path",
        "dc_{t−1} = dc_t ⊙ f dropped",
        LSTM,
    ),
    _model("GRU: update gate sign", "gru_update_sign_swapped", "dz = dh (n − h_prev)", GRU),
    # --- broken: forward mode and second order
    _second(
        "MLP JVP: tanh from the pre-activation",
        "tanh_jvp_from_preactivation",
        "fwd",
        "ḣ = (1 − z²) ż, not (1 − tanh(z)²) ż",
        MLP,
    ),
    _second(
        "Elman JVP: fan-out path dropped",
        "elman_jvp_missing_fan_out",
        "fwd",
        "ḣ_{t−1} W_h left out: h_{t−1}'s tangent reaches its readout only",
        ELMAN,
    ),
    _second(
        "MLP H·v: Gauss–Newton",
        "gauss_newton_mlp",
        "hvp",
        "tanh's curvature −2 h ḣ dropped: a Gauss–Newton product, not H·v",
        MLP,
    ),
    # --- broken: engines
    _engine(
        "engine: overwrite, not add",
        "OverwriteNotAdd",
        "grad = g where a value fans out",
        STAGED["fan_out_fan_in"],
    ),
    _engine(
        "engine: matmul transpose",
        "MatmulWrongTranspose",
        "dA = g B instead of g Bᵀ",
        STAGED["bias_broadcast"],
    ),
    _engine(
        "engine: no unbroadcast",
        "NoUnbroadcast",
        "a broadcast bias's gradient not summed back",
        STAGED["bias_broadcast"],
    ),
    _engine(
        "engine: mean missing 1/n",
        "MeanMissingCount",
        "mean's backward without 1/count",
        STAGED["bias_broadcast"],
    ),
    _engine(
        "engine: quotient rule",
        "DivQuotientRule",
        "d(a/b)/db = −a/b, not −a/b²",
        STAGED["deep_chain"],
    ),
    _engine(
        "engine: sigmoid from input",
        "SigmoidFromInput",
        "σ' from the input x",
        STAGED["card_sigmoid_unit"],
    ),
    _engine(
        "engine: grads not reset",
        "GradsNotReset",
        "leaves reused across calls, .grad kept",
        STAGED["card_affine_square"],
    ),
]

__all__ = ["ZOO", "Entry"]
