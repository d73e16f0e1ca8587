"""What a plug-in withholds (a tap, the loss it does not report) and what it got wrong
before any comparison (a missing, mistyped, misshapen or non-finite tensor) are facts on
its Result (``Result.withheld``, ``Result.uncompared``): the comparison gives their rows
their verdict directly, in the mode they belong to."""

from __future__ import annotations

import csv
import math

import numpy as np

import reference.manual
from harness import validate
from harness.cases import CATALOG
from harness.cli import main
from harness.compare.tables import agreement
from harness.result import Result

MLP = dict(depth=2, width=5, D=4, C=3, N=6)


def mlp():
    return CATALOG["mlp"](**MLP)


def _right(params, inputs, case):
    loss, cache = reference.manual.mlp_forward(
        params, inputs["X"], inputs["Y"], case.act, case.objective
    )
    return loss, reference.manual.mlp_backward(cache)[0]


def no_taps(params, inputs, case):
    loss, grads = _right(params, inputs, case)
    return {"grads": grads, "loss": loss}


def no_loss(params, inputs, case):
    return _right(params, inputs, case)[1]


def nan_loss(params, inputs, case):
    return {"grads": _right(params, inputs, case)[1], "loss": math.nan}


def vector_loss(params, inputs, case):
    loss, grads = _right(params, inputs, case)
    return {"grads": grads, "loss": np.array([loss, loss])}


def tap_none(params, inputs, case):
    loss, grads = _right(params, inputs, case)
    return {"grads": grads, "loss": loss, "taps": {"h[0]": None}}


def missing_b1(params, inputs, case):
    loss, grads = _right(params, inputs, case)
    grads.pop("b1")
    return {"grads": grads, "loss": loss}


class JvpWithoutLoss:
    """Right gradients; a JVP that forgets its loss tangent."""

    grads = staticmethod(no_taps)

    @staticmethod
    def jvp(params, inputs, tangent, case):
        return {"taps": {}}


def _mine(target, modes=("rev",)):
    v = validate(
        f"{__name__}:{target}",
        cases=[mlp()],
        references=["reference"],
        modes=list(modes),
        isolate=False,
    )
    return v, v.mine.set_index(["mode", "kind", "tensor"])


def test_what_a_plugin_does_not_report_has_no_row():
    v, mine = _mine("no_taps")
    assert "tap" not in set(mine.index.get_level_values("kind"))
    assert set(mine["verdict"]) == {"agree"} and v.ok
    v, mine = _mine("no_loss")
    assert "loss" not in set(mine.index.get_level_values("kind"))
    assert set(mine["verdict"]) == {"agree"} and v.ok


def test_a_nan_loss_is_a_failed_row_not_a_loss_left_unreported():
    v, mine = _mine("nan_loss")
    row = mine.loc[("rev", "loss", "loss")]
    assert row["verdict"] == "failed" and row["error"].startswith("not finite: ")
    assert not v.ok


def test_a_loss_of_the_wrong_shape_is_a_failed_row():
    v, mine = _mine("vector_loss")
    row = mine.loc[("rev", "loss", "loss")]
    assert row["verdict"] == "failed" and row["error"].startswith("wrong shape: ")


def test_a_tap_that_is_not_an_array_is_a_failed_row():
    v, mine = _mine("tap_none")
    row = mine.loc[("rev", "tap", "h[0]")]
    assert row["verdict"] == "failed" and row["error"].startswith("wrong type: ")
    assert ("rev", "tap", "h[1]") not in mine.index  # not reported: no row


def test_a_missing_gradient_is_a_failed_row_carrying_its_fault():
    v, mine = _mine("missing_b1")
    row = mine.loc[("rev", "param", "b1")]
    assert row["verdict"] == "failed" and row["error"].startswith("missing tensor: no gradient")
    assert set(mine.drop(("rev", "param", "b1"))["verdict"]) == {"agree"}


def test_a_fault_in_forward_mode_leaves_the_reverse_mode_rows_alone():
    v, mine = _mine("JvpWithoutLoss", ("rev", "fwd"))
    assert mine.loc[("rev", "loss", "loss"), "verdict"] == "agree"
    assert set(mine.loc["rev"]["verdict"]) == {"agree"}
    assert mine.loc[("fwd", "loss", "loss"), "verdict"] == "failed"
    assert not v.ok


def test_the_comparison_reads_withheld_and_uncompared_from_the_result():
    base = Result("c", "ref", "float64", loss=1.0, grads={"w": np.ones(2)}, taps={"t": np.ones(2)})
    other = Result(
        "c",
        "mine",
        "float64",
        loss=math.nan,
        grads={"w": np.full(2, np.nan)},
        withheld={("loss", "loss"), ("tap", "t")},
        uncompared={("param", "w"): "not finite: param 'w' is NaN at (0,)"},
    )
    table = agreement([base, other], "ref").set_index(["kind", "tensor"])
    assert list(table.index) == [("param", "w")]
    assert table.loc[("param", "w"), "verdict"] == "failed"
    assert table.loc[("param", "w"), "error"] == "not finite: param 'w' is NaN at (0,)"


def test_the_plugins_agreement_csv_counts_are_integers(tmp_path, capsys):
    for target in ("no_taps", "missing_b1"):
        out = tmp_path / target
        main(
            [
                "validate",
                f"{__name__}:{target}",
                "--case",
                "mlp",
                "--reference",
                "reference",
                *sum([["--set", f"{k}={v}"] for k, v in MLP.items()], []),
                "--out",
                str(out),
            ]
        )
        capsys.readouterr()
        rows = list(csv.DictReader((out / "agreement.csv").open(encoding="utf-8")))
        counted = [r for r in rows if r["verdict"] != "failed"]
        assert counted, target
        for r in counted:
            for column in ("n_bad", "n_unresolved", "n_elements"):
                assert r[column].isdigit(), (target, column, r[column])
        for r in rows:
            if r["verdict"] == "failed":
                assert r["n_bad"] == "" and r["n_elements"] == ""
