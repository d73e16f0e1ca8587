"""A dtype problem is one finding, and the values are still judged: answers in another
dtype than the run's are one ``wrong dtype`` fault (which tensors, what came back, the
likely cause), their values are compared cast to the run's dtype, and what is said about
them follows what those values show."""

from __future__ import annotations

import pytest

from harness import validate
from harness.cases import CATALOG
from harness.cli import main
from harness.compare import AGREEING
from harness.validation.findings import Topic

PLUGINS = """
import numpy as np

from harness.backends import get_backend
from harness.zoo.models import manual


def promoted(p, x, case):  # right values; NumPy 2 promotes float32 through a float64 scalar
    out = manual(p, x, case)
    one = np.sqrt(np.float64(1.0))
    return {"grads": {k: v * one for k, v in out["grads"].items()},
            "taps": {k: v * one for k, v in out["taps"].items()}}


def promoted_and_wrong(p, x, case):  # the same, and b2's gradient half again too large
    out = promoted(p, x, case)
    out["grads"]["b2"] = out["grads"]["b2"] * 1.5
    return out


def in_float32(p, x, case):  # the tape's answer in float32, returned as float32
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    x32 = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in x.items()}
    r = get_backend("reference").gradient(case, p32, x32, "float32")
    return {"grads": r.grads, "taps": r.taps, "loss": np.float32(r.loss)}
"""

MLP = CATALOG["mlp"](depth=2, width=4, D=3, C=2, N=5)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    path = tmp_path_factory.mktemp("dtypes") / "plugins.py"
    path.write_text(PLUGINS)
    return path


def check(plugins, attr, case=MLP, dtype="float32"):
    return validate(
        f"{plugins}:{attr}",
        form="model",
        cases=[case],
        dtype=dtype,
        references=["reference", "torch"],
        isolate=False,
    )


def test_a_dtype_problem_is_one_fault_and_the_values_are_still_judged(plugins):
    v = check(plugins, "promoted")
    (fault,) = [f for f in v.faults if f.severity != "note"]
    names = list(v.mine.loc[v.mine["kind"] != "loss", "tensor"])
    assert fault.fault == "wrong dtype" and sorted(fault.facts["tensors"]) == sorted(names)
    assert (fault.facts["got"], fault.facts["run"], fault.facts["cause"]) == (
        ["float64"],
        "float32",
        "numpy promotion",
    )
    assert v.mine["verdict"].isin(AGREEING).all()  # every value judged, and right
    (finding,) = [f for f in v.findings if f.bad]
    assert finding.topic == "wrong dtype" and finding.facts["tensors"] == fault.facts["tensors"]
    assert not v.ok and v.verdict == "faults"  # still a failure of the run: exit 1


def test_a_dtype_problem_does_not_hide_the_real_bug(plugins):
    v = check(plugins, "promoted_and_wrong")
    bad = v.mine[~v.mine["verdict"].isin(AGREEING)]
    assert list(bad["tensor"]) == ["b2"] and list(bad["verdict"]) == ["disagree"]
    topics = [f.topic for f in v.findings if f.bad]
    assert topics.count("wrong dtype") == 1 and Topic.DISAGREES in topics
    assert next(f for f in v.findings if f.topic == Topic.PATTERN).factor == pytest.approx(1.5)
    (between,) = [f for f in v.findings if f.topic == Topic.LOCALISED and f.bad]
    assert between.facts["params"] == ["b2"]  # the taps agree: the stage after them is wrong


def test_a_dtype_problem_exits_1_with_the_values_shown(plugins, capsys):
    code = main(
        [
            "validate",
            f"{plugins}:promoted",
            "--case",
            "mlp",
            "--dtype",
            "float32",
            "--reference",
            "reference",
            "--no-isolation",
        ]
    )
    out = capsys.readouterr().out
    cells = [line for line in out.splitlines() if "param:" in line or "tap:" in line]
    assert code == 1 and out.count("wrong dtype") == 1
    assert cells and not any("failed" in line for line in cells)


def test_float32_answers_in_a_deep_chain_are_rounding_not_a_place(plugins):
    """Every tap of deep_chain differs by float32's rounding: one dtype fault, the
    pattern says float32, and nothing claims the forward or a stage is wrong."""
    v = check(plugins, "in_float32", CATALOG["deep_chain"](), dtype="float64")
    (fault,) = [f for f in v.faults if f.severity != "note"]
    assert (fault.fault, fault.facts["got"], fault.facts["cause"]) == (
        "wrong dtype",
        ["float32"],
        "float32 arithmetic",
    )
    topics = {f.topic for f in v.findings}
    assert Topic.FORWARD not in topics and Topic.LOCALISED not in topics
    assert next(f for f in v.findings if f.topic == Topic.PATTERN).short == "float32-sized"
    # the odd one out names every tensor it is, in the table's order
    odd = next(f for f in v.findings if f.topic == Topic.ODD_ONE_OUT)
    mine = v.mine[v.mine["odd_one_out"] == v.plugin]
    assert odd.facts["tensors"] == list(dict.fromkeys(mine["tensor"])) and len(mine) == 29


ODD_DTYPES = """
import numpy as np

from harness.zoo.models import manual


def _as(p, x, case, dtype):
    out = manual(p, x, case)
    return {"grads": {k: v.astype(dtype) for k, v in out["grads"].items()},
            "taps": {k: v.astype(dtype) for k, v in out["taps"].items()},
            "loss": np.asarray(1.0).astype(dtype)}


def as_complex(p, x, case):
    return _as(p, x, case, complex)


def as_object(p, x, case):
    return _as(p, x, case, object)


def as_str(p, x, case):
    return _as(p, x, case, str)
"""


@pytest.mark.parametrize(
    "attr, dtype", [("as_complex", "complex128"), ("as_object", "object"), ("as_str", "<U")]
)
def test_an_answer_of_complex_object_or_str_dtype_is_one_wrong_type_fault_a_call(
    tmp_path, worker, attr, dtype
):
    (tmp_path / "odd_dtypes.py").write_text(ODD_DTYPES)
    v = validate(
        f"{tmp_path / 'odd_dtypes.py'}:{attr}",
        form="model",
        cases=["mlp"],
        references=["reference"],
        channel=worker,
    )
    assert not v.ok and v.verdict == "faults"
    faults = v.fault_table
    (row,) = faults.itertuples()  # one, for every tensor of the call
    assert row.fault == "wrong type" and row.case == "mlp"
    assert dtype in row.message and "W1" in row.message and row.tensor.endswith("loss")
    assert "float64" in row.message and "float32" in row.message  # what is allowed


ODD_NAMES = """
import numpy as np


class Named:  # a key that is shown as "x" but is no str
    def __str__(self):
        return "x"


class Lying(str):  # a str whose str() is another name
    def __str__(self):
        return "x"


def right(p):
    return 6 * (3 * p["x"] + 1)


def no_str_first(p, x):
    return {Named(): np.zeros(5), "x": right(p)}


def no_str_last(p, x):
    return {"x": right(p), Named(): np.zeros(5)}


def lying_str(p, x):
    return {"x": right(p), Lying("y"): np.zeros(5)}


def tap_no_str(p, x):
    return {"grads": {"x": right(p)}, "taps": {Named(): np.zeros(5)}}
"""


def on_card(tmp_path, worker, source: str, attr: str):
    """Validate ``attr`` of a plug-in file holding ``source`` on card_affine_square against
    the tape, in the module's worker."""
    (tmp_path / "plugin.py").write_text(source)
    return validate(
        f"{tmp_path / 'plugin.py'}:{attr}",
        form="model",
        cases=["card_affine_square"],
        references=["reference"],
        channel=worker,
    )


@pytest.mark.parametrize("attr", ["no_str_first", "no_str_last", "tap_no_str"])
def test_a_name_that_is_no_str_is_a_wrong_type_never_one_tensor_in_place_of_another(
    tmp_path, worker, attr
):
    """str() of a key could name a tensor twice (the last one winning): a name is a str."""
    v = on_card(tmp_path, worker, ODD_NAMES, attr)
    assert not v.ok and v.verdict == "faults", v.text()
    (row,) = v.fault_table.itertuples()
    assert row.fault == "wrong type" and "Named" in row.message and "str" in row.message


def test_a_str_subclass_is_named_by_its_value_not_by_its_str(tmp_path, worker):
    v = on_card(tmp_path, worker, ODD_NAMES, "lying_str")
    (row,) = v.fault_table.itertuples()  # "y", no tensor of the case: not taken for "x"
    assert row.fault == "extra tensor" and "'y'" in row.message
    (x,) = v.mine.itertuples()
    assert x.tensor == "x" and x.ok


HUGE = """
def huge_int(p, x):
    return {"x": 10**400}


def huge_list(p, x):
    return {"x": [10**400] * 5}
"""


@pytest.mark.parametrize("attr", ["huge_int", "huge_list"])
def test_a_number_too_large_for_the_run_s_dtype_is_a_wrong_type_naming_the_tensor(
    tmp_path, worker, attr
):
    """Not an OverflowError raised from gradparity's own conversion."""
    v = on_card(tmp_path, worker, HUGE, attr)
    assert not v.ok
    (row,) = v.fault_table.itertuples()
    assert row.fault == "wrong type" and row.tensor == "x", row
    assert "float64" in row.message and "Traceback" not in row.message
