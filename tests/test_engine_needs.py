"""Unsupported says what the case asked for and what was nearly there, and the README
lists what an engine must have for each catalog case (a recording namespace finds it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import validate
from harness.cases import CATALOG
from harness.validation.forms.engine_needs import needs, table
from harness.zoo.tiny_engine import TinyEngine

README = Path(__file__).resolve().parents[1] / "README.md"


def without(*names: str, **aliases: str) -> type:
    """TinyEngine lacking ``names``, and with each alias -> name its own function under
    another name (numpy's)."""

    class Partial(TinyEngine):
        def __getattribute__(self, name):
            if name in names:
                raise AttributeError(name)
            return super().__getattribute__(aliases.get(name, name))

    return Partial


def test_the_readme_lists_what_each_catalog_case_calls():
    text = README.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- engine-functions:[^>]*-->\n(.*?)\n<!-- /engine-functions -->", text, re.S
    )
    assert found is not None and found[1] == table()
    assert {line.split("|")[1].strip(" `") for line in found[1].splitlines()[2:]} == set(CATALOG)


def test_the_recording_namespace_finds_functions_extras_and_their_building_blocks():
    every = needs(CATALOG["every_primitive"]())
    assert {"concat", "permute_dims", "tanh"} <= set(every.functions)
    lstm = needs(CATALOG["lstm"]())
    assert ("sigmoid",) == lstm.extras and "exp" in lstm.building_blocks
    assert "exp" not in lstm.functions and "stack" in lstm.functions  # the scan's ys


def test_an_extra_built_from_a_missing_function_is_named_as_the_case_asked_for_it():
    engine = without("sigmoid", "exp")
    v = validate(
        engine, form="engine", cases=["card_sigmoid_unit"], references=["reference"], isolate=False
    )
    (fault,) = v.faults
    assert (fault.fault, fault.severity) == ("unsupported", "note")
    assert fault.facts == {"asked": "sigmoid", "missing": "exp"}
    (finding,) = [f for f in v.findings if f.topic == "unsupported"]
    assert finding.facts["asked"] == "sigmoid" and "'sigmoid'" in v.unsupported["card_sigmoid_unit"]


@pytest.mark.parametrize(
    ("standard", "numpy_name"), [("concat", "concatenate"), ("permute_dims", "transpose")]
)
def test_a_function_under_numpys_name_is_a_did_you_mean_fault(standard, numpy_name):
    engine = without(standard, **{numpy_name: standard})
    v = validate(
        engine, form="engine", cases=["every_primitive"], references=["reference"], isolate=False
    )
    (fault,) = v.faults
    assert (fault.fault, fault.severity) == ("misnamed function", "fatal")
    assert fault.facts == {"missing": standard, "has": numpy_name}
    assert not v.ok and not v.unsupported and v.verdict == "faults"  # exit 1, not a silent 0
    assert f"the standard's name is `{standard}`" in fault.message
