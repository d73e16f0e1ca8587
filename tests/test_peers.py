"""The peers' adapter (``harness.bench.peers``): one Pair per implementation, wrapped for
torch's gradcheck and jax's check_grads — each peer's verdict on one correct and one
broken implementation per form is what it should be."""

from __future__ import annotations

import pytest

from harness.bench.peers import check_grads, gradcheck, pair_of
from harness.cases import CATALOG

STAGES = "harness.zoo.stages"
MODELS = "harness.zoo.models"
MLP = dict(depth=3, width=5, D=4, C=3, N=6)
PEERS = [lambda p: gradcheck(p), lambda p: gradcheck(p, fast_mode=True), check_grads]


def mlp():
    return [CATALOG["mlp"](**MLP)]


@pytest.mark.parametrize(
    "target, form, cases",
    [
        (f"{STAGES}:Sigmoid", "stage", None),
        (f"{MODELS}:mlp", "model", mlp()),
    ],
)
def test_every_peer_passes_a_correct_implementation_in_float64(target, form, cases):
    pair = pair_of(target, form, cases, "float64")
    for peer in PEERS:
        v = peer(pair)
        assert v.verdict == "pass", (v.checker, v.message[:300])


@pytest.mark.parametrize(
    "target, form, cases",
    [
        (f"{STAGES}:SigmoidFromPreactivation", "stage", None),
        (f"{MODELS}:bias_mean", "model", mlp()),
    ],
)
def test_every_peer_fails_a_wrong_derivative(target, form, cases):
    pair = pair_of(target, form, cases, "float64")
    for peer in PEERS:
        v = peer(pair)
        assert v.verdict == "fail" and v.message, (v.checker, v.verdict, v.message[:300])


def test_the_adapter_never_fixes_a_shape_so_a_wrong_one_is_the_peers_to_catch():
    # dW transposed (3×4 for 4×3): torch refuses the gradient, jax's callback the shape
    pair = pair_of(f"{STAGES}:LinearWeightTransposed", "stage", None, "float64")
    verdicts = {v.checker: v for v in (gradcheck(pair), check_grads(pair))}
    assert verdicts["gradcheck"].verdict == "error"
    assert "invalid gradient at index 1" in verdicts["gradcheck"].message
    assert verdicts["check_grads"].verdict == "error"


def test_a_bias_not_summed_passes_gradcheck_where_autograd_sums_it_silently():
    # db of shape (5, 3) for b of shape (3,): torch reduces a broadcastable gradient to the
    # input's shape, so gradcheck sees the right numbers; gradparity's raw-output check
    # does not (tests/test_zoo.py: "linear: bias not summed" is flagged, wrong shape)
    pair = pair_of(f"{STAGES}:LinearBiasNotSummed", "stage", None, "float64")
    assert gradcheck(pair).verdict == "pass"
    assert check_grads(pair).verdict == "error"  # jax checks the VJP's shapes


def test_gradcheck_in_float32_cries_wolf_on_a_correct_stage_at_its_default_tolerances():
    pair = pair_of(f"{STAGES}:Sigmoid", "stage", None, "float32")
    v = gradcheck(pair)
    assert v.verdict == "fail" and "Jacobian mismatch" in v.message
    assert check_grads(pair).verdict == "pass"  # check_grads scales its tolerance to float32


def test_the_side_by_side_table_counts_what_each_checker_caught(tmp_path):
    from harness.bench.peers import peers_table, summary, write

    table = peers_table(dtypes=("float64",), only=["sigmoid", "bias not summed", "tiny engine"])
    assert set(table["checker"]) == {
        "gradparity validate",
        "gradcheck",
        "gradcheck (fast_mode)",
        "check_grads",
    }
    mine = table[table["checker"] == "gradparity validate"]
    assert mine["caught"].tolist() == (mine["expected"] == "broken").tolist()
    gc = table[(table["checker"] == "gradcheck")].set_index("implementation")
    assert gc.loc["linear: bias not summed", "verdict"] == "pass"  # the blind spot, measured
    assert gc.loc["tiny engine", "verdict"] == "pass"  # on each of its four cases
    rows = summary(table).set_index("checker")
    n_broken = int((mine["expected"] == "broken").sum())
    assert rows.loc["gradparity validate", "caught"] == f"{n_broken}/{n_broken}"
    csv, md = write(tmp_path, table, {"machine": "test"}, "gradparity bench --peers")
    text = md.read_text()
    assert "## Summary" in text and "✗ missed" in text and "tiny engine" in text
    assert csv.read_text().splitlines()[0].startswith("implementation,form,dtype,expected,checker")


def test_peers_takes_no_case_or_quick_plan(capsys):
    from harness.cli import main

    assert main(["bench", "--peers", "--quick"]) == 2
    assert "--peers runs the bug zoo on the CPU" in capsys.readouterr().err


FRAMEWORKS = "harness.zoo.frameworks"


@pytest.mark.parametrize(
    "correct, broken, form",
    [
        ("TorchTanh", "TorchTanhMissingDerivative", "torch-function"),
        ("jax_tanh", "jax_tanh_sign", "jax-custom-vjp"),
    ],
)
def test_custom_vjps_of_either_framework_go_through_the_same_adapter(correct, broken, form):
    good = pair_of(f"{FRAMEWORKS}:{correct}", form, None, "float64")
    bad = pair_of(f"{FRAMEWORKS}:{broken}", form, None, "float64")
    assert good.names == bad.names == ("x", "W", "b")
    for peer in PEERS:
        assert peer(good).verdict == "pass"
        assert peer(bad).verdict == "fail"


def test_a_gradient_left_out_is_zero_to_both_peers_as_their_frameworks_take_it():
    pair = pair_of(f"{FRAMEWORKS}:TorchTanhNoWeightGradient", "torch-function", None, "float64")
    assert gradcheck(pair).verdict == "fail" and "input 1" in gradcheck(pair).message
    assert check_grads(pair).verdict == "fail"


def test_an_engine_is_checked_through_its_own_forward_and_backward():
    cases = [CATALOG["fan_out_fan_in"]()]
    good = pair_of("harness.zoo.tiny_engine:TinyEngine", "engine", cases, "float64")
    bad = pair_of("harness.zoo.engines:OverwriteNotAdd", "engine", cases, "float64")
    for peer in PEERS:
        assert peer(good).verdict == "pass"
        assert peer(bad).verdict == "fail"


def test_one_verdict_over_many_cases_is_the_worst_of_them():
    from harness.bench.peers import Verdict, worst

    got = worst([Verdict("gradcheck", "pass", "", 1.0), Verdict("gradcheck", "fail", "off", 2.0)])
    assert (got.verdict, got.message, got.seconds) == ("fail", "off", 3.0)


def test_what_each_message_names_is_read_from_the_messages():
    from harness.bench.peers import peers_table, render

    table = peers_table(dtypes=("float64",), only=["MLP: bias mean", "Elman: BPTT truncated"])
    md = render(table, {"machine": "test"}, "gradparity bench --peers")
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in md.splitlines()
        if line.startswith("| gradparity validate |")
        or line.startswith("| gradcheck")
        or line.startswith("| check_grads |")
    }
    assert "by name | its index and both values | yes" in rows["gradparity validate"]
    assert "by position (input k) | whole Jacobians printed | no" in rows["gradcheck"]
    assert "one projected number" in rows["gradcheck (fast_mode)"]
    assert "| no | a count of mismatched elements | no" in rows["check_grads"]


SECOND = "harness.zoo.second"


@pytest.mark.parametrize("correct, broken, mode, case", [
    ("forward_mlp", "tanh_jvp_from_preactivation", "fwd", "mlp"),
    ("forward_elman", "elman_jvp_missing_fan_out", "fwd", "elman"),
    ("hessian_mlp", "gauss_newton_mlp", "hvp", "mlp"),
])  # fmt: skip
def test_forward_mode_and_second_order_go_through_the_same_adapter(correct, broken, mode, case):
    cases = [CATALOG[case]()]
    good = pair_of(f"{SECOND}:{correct}", "model", cases, "float64", mode)
    bad = pair_of(f"{SECOND}:{broken}", "model", cases, "float64", mode)
    assert (good.jvp is not None) == (mode == "fwd")  # a JVP, or (hvp) the gradient's VJP
    for peer in PEERS:
        assert peer(good).verdict == "pass", (peer(good).checker, peer(good).message[:300])
        assert peer(bad).verdict == "fail"


def test_a_jvp_is_checked_as_a_jvp_not_by_a_backward_it_does_not_have():
    pair = pair_of(
        f"{SECOND}:tanh_jvp_from_preactivation", "model", [CATALOG["mlp"]()], "float64", "fwd"
    )
    assert "forward mode" in gradcheck(pair).message  # "Jacobian computed with forward mode"
    assert "JVP" in check_grads(pair).message


@pytest.mark.slow
def test_a_checker_past_its_limit_is_stopped_and_said_so_with_how_far_it_got(tmp_path):
    from harness.bench.peers import CHECKERS, big_model, peers_table, render

    options = dict(depth=4, width=64, D=64, C=10, N=64)  # 13k parameters: 26k forwards
    big = big_model(options, limit_s=6.0).set_index("checker")
    assert list(big.index) == list(CHECKERS)
    late = big.loc["gradcheck"]
    assert late["verdict"] == "did not finish" and not late["finished"]
    assert 0 < late["forward_calls"] < 2 * late["parameters"]
    for checker in ("gradparity validate", "gradcheck (fast_mode)", "check_grads"):
        assert big.loc[checker, "verdict"] == "pass" and big.loc[checker, "finished"]
    assert big.loc["check_grads", "forward_calls"] < 20  # directional: a handful
    table = peers_table(dtypes=("float64",), only=["sigmoid stage"])
    md = render(table, {"machine": "test"}, "gradparity bench --peers", big.reset_index())
    assert "gradcheck did not finish within 6 s" in md


def test_peers_md_keeps_a_checkers_message_inside_its_code_block():
    """peers.md is written through the report's blocks: a message holding a fence of its
    own (a peer's or a plug-in's text) stays inside its code block, never a heading."""
    import pandas as pd

    from harness.bench.peers import EXAMPLE, render

    row = {
        "implementation": EXAMPLE,
        "form": "model",
        "dtype": "float64",
        "expected": "broken",
        "checker": "gradcheck",
        "verdict": "fail",
        "caught": True,
        "seconds": 0.1,
        "message": "```\n# forged heading\n| a | b |",
    }
    text = render(pd.DataFrame([row]), {"platform": "x"}, "gradparity bench --peers")
    assert "\n# forged heading" in text  # inside the block, verbatim
    fence = text.split("\n# forged heading")[0].rsplit("\n", 2)[-2]
    assert set(fence) == {"`"} and len(fence) > 3  # a longer fence than the message's
    closing = text.split("| a | b |\n", 1)[1].split("\n", 1)[0]
    assert closing == fence
