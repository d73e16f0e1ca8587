"""The plug-in forms are one table (``harness.validation.forms.FORMS``): the CLI's ``--as``,
the pytest option, the README's form table, the detection of a form and the zoo all read
it, so a form added there is offered everywhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.cli import parser
from harness.pytest_plugin import pytest_addoption
from harness.target import load, parse_target
from harness.validation.forms import FORMS, Form, detect_form
from harness.zoo import ZOO, Entry

ROOT = Path(__file__).resolve().parents[1]

# The runnable example of each form; a new form brings one.
EXAMPLES = {
    "model": "examples/model_mlp.py:grads",
    "engine": "examples/engine_tiny.py:TinyEngine",
    "functional": "examples/functional_autograd.py:Autograd",
    "stage": "examples/stages.py:Linear",
    "torch-function": "examples/custom_vjp.py:TorchTanhLayer",
    "jax-custom-vjp": "examples/custom_vjp.py:jax_tanh_layer",
}


def cli_choices() -> tuple[str, ...]:
    validate = parser()._subparsers._group_actions[0].choices["validate"]  # type: ignore[union-attr]
    (action,) = [a for a in validate._actions if a.dest == "form"]
    return tuple(action.choices)


class _Group:
    def __init__(self) -> None:
        self.options: dict[str, dict[str, Any]] = {}

    def addoption(self, name: str, **kwargs: Any) -> None:
        self.options[name] = kwargs


class _Parser:
    def __init__(self) -> None:
        self.group = _Group()

    def getgroup(self, *args: Any) -> _Group:
        return self.group


def pytest_choices() -> tuple[str, ...]:
    fake = _Parser()
    pytest_addoption(fake)  # type: ignore[arg-type]
    return tuple(fake.group.options["--gradparity-as"]["choices"])


def readme_forms() -> list[str]:
    """The first column of the README's table of forms."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| form | what you write | checked against |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)


def test_every_registered_form_is_a_cli_choice_and_a_pytest_option_choice():
    assert cli_choices() == tuple(FORMS)
    assert pytest_choices() == tuple(FORMS)
    assert len(FORMS) == 6


def test_the_readme_form_table_lists_exactly_the_registered_forms():
    listed = readme_forms()
    assert sorted(listed) == sorted(FORMS) and len(listed) == len(set(listed))


def test_every_registered_form_has_an_example():
    assert set(EXAMPLES) == set(FORMS)


@pytest.mark.parametrize("form", list(FORMS))
def test_detect_form_picks_each_form_on_its_example(form):
    obj = load(parse_target(str(ROOT / EXAMPLES[form])))
    assert detect_form(obj) == form
    assert FORMS[form].detects(obj)


def test_the_zoo_takes_only_registered_forms_and_has_an_entry_of_each_it_checks():
    assert {entry.form for entry in ZOO} <= set(FORMS)
    with pytest.raises(ValueError, match="no form"):
        Entry("mistyped", "harness.zoo.stages:Linear", "stages")


class Dummy(Form):
    """A form added by a test: an object with ``dummy_grads``."""

    name = "dummy"
    described = "a dummy (dummy_grads)"
    needs = ("dummy_grads",)

    def detects(self, obj: Any) -> bool:
        return hasattr(obj, "dummy_grads")


def test_a_registered_form_is_offered_and_detected_everywhere(monkeypatch):
    monkeypatch.setitem(FORMS, "dummy", Dummy())
    assert "dummy" in cli_choices()
    assert parser().parse_args(["validate", "x.py:f", "--as", "dummy"]).form == "dummy"
    assert "dummy" in pytest_choices()
    instance = type("D", (), {"dummy_grads": None})()  # an instance: not callable, no model
    assert detect_form(instance) == "dummy"
    assert Entry("a dummy", "x.py:f", "dummy").form == "dummy"
    from harness.validation.forms import attributes, described

    assert "dummy_grads" in attributes() and "a dummy (dummy_grads)" in described()


def test_an_unregistered_form_is_refused_by_the_cli_and_validate():
    with pytest.raises(SystemExit):
        parser().parse_args(["validate", "x.py:f", "--as", "dummy"])
    from harness import validate

    with pytest.raises(ValueError, match="form must be one of"):
        validate("x.py:f", form="dummy")


def test_only_the_model_form_supplies_forward_mode_and_hvp_and_the_stages_their_own_forward():
    assert {n for n, f in FORMS.items() if "fwd" in f.modes} == {"model"}
    assert {n for n, f in FORMS.items() if f.own_forward} == {
        "stage",
        "torch-function",
        "jax-custom-vjp",
    }
    assert {n for n, f in FORMS.items() if f.peer is None} == {"functional"}
