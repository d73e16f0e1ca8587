"""The bug zoo as the self-test: every broken implementation flagged, every correct one
passed, in float64 and float32 — and each flagged for the reason its bug predicts."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.zoo import ZOO
from harness.zoo.selftest import check, row

# What each broken entry must be flagged *for* (a fault kind, a tensor, or a sentence).
REASONS = {
    "linear: dW transposed": "wrong shape (W)",
    "linear: bias not summed": "wrong shape (b)",
    "relu mask at 0": "x disagrees",
    "relu backward in place": "mutated inputs (dy)",
    "MLP: bias not summed": "wrong shape",
    "MLP: dW transposed": "wrong shape",
    "MLP: wrong names": "extra tensor",
    "MLP: dropout left on": "non-deterministic",
    "MLP: mutates its inputs": "mutated inputs",
    "Elman: BPTT missing dh_next": "agrees for t ≥ 5",
    "Elman: BPTT truncated": "agrees for t ≥ 3",
    "LSTM: missing cell-state path": "dL/dc_t agrees for t ≥ 5",
    "engine: no unbroadcast": "wrong shape",
    "engine: matmul transpose": "exception",
    "engine: grads not reset": "state across calls",
    "engine: quotient rule": "agrees for k ≥ 8",
    "torch Function: bias not summed": "wrong shape (b)",
    "torch Function: None for W": "wrong type (W)",
    "torch Function: derivative missing": "disagrees with own forward",
    "jax custom_vjp: dW transposed": "wrong shape (W)",
    "jax custom_vjp: sign of dx": "disagrees with own forward (x)",
}


def test_the_zoo_has_twenty_bugs_across_the_three_forms_and_correct_implementations():
    broken = [e for e in ZOO if e.broken]
    assert len(broken) >= 20
    assert {e.form for e in broken} == {
        "stage",
        "model",
        "engine",
        "torch-function",
        "jax-custom-vjp",
    }
    assert sum(e.form in ("torch-function", "jax-custom-vjp") for e in broken) >= 6
    correct = {e.target for e in ZOO if not e.broken}
    assert {
        "harness.zoo.models:manual",
        "harness.zoo.tiny_engine:TinyEngine",
    } <= correct
    assert sum(e.form == "stage" for e in ZOO if not e.broken) >= 8
    assert len({e.name for e in ZOO}) == len(ZOO)


@pytest.mark.parametrize("entry", ZOO, ids=[e.name for e in ZOO])
def test_every_entry_is_judged_as_expected(entry, worker):
    for dtype in ("float64", "float32"):
        v = check(entry, dtype, worker)
        r = row(entry, dtype, v)
        assert r["verdict"] == "ok", f"{dtype}: {r}\n{v.text()}"
        if entry.name in REASONS and dtype == "float64":
            assert REASONS[entry.name] in r["how"], r["how"]


def test_selftest_command_prints_the_detection_table(capsys):
    code = main(["selftest", "--only", "relu", "--only", "tiny engine", "--reference", "reference"])
    out = capsys.readouterr().out
    assert code == 0, out
    header = out.splitlines()[0].split()
    assert header == [
        "implementation",
        "form",
        "mode",
        "dtype",
        "expected",
        "detected",
        "how",
        "verdict",
    ]
    assert "relu mask at 0" in out and "tiny engine" in out and "float32" in out
    assert "every broken one flagged, every correct one passed" in out
